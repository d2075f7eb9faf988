import type { Config } from '../config';
import type { Db } from '../db/knex';
import { catalogFor } from '../i18n';
import type { Outbox } from '../jobs/outbox';
import type { Logger } from '../lib/logger';
import { maskMsisdn, toMpesaMsisdn } from '../lib/msisdn';
import { findOrCreateCustomer } from '../payments/customers';
import { placeBuyOrder } from '../payments/place-buy-order';
import { formatReply, startMenu, step, type Effect, type MenuContext, type Reply, type StepResult } from './machine';
import { screens } from './screens';
import type { SessionStore, UssdSession } from './session-store';

export interface UssdRequest {
  sessionId: string;
  serviceCode: string;
  phoneNumber: string;
  text: string;
}

export interface UssdDeps {
  config: Config;
  db: Db;
  sessions: SessionStore;
  outbox: Outbox;
  log: Logger;
}

/**
 * One Africa's Talking request -> one `CON`/`END` answer. Africa's Talking repeats every input of the
 * session in `text`, joined by `*`; we apply only the inputs not yet applied, so a repeated request
 * gets the same answer and changes nothing.
 */
export async function handleUssd(deps: UssdDeps, req: UssdRequest): Promise<string> {
  const t = catalogFor('en');
  if (req.serviceCode !== deps.config.ussd.serviceCode) return formatReply({ end: true, text: t.ussd.wrongServiceCode });
  const msisdn = toMpesaMsisdn(req.phoneNumber);
  if (!msisdn) return formatReply({ end: true, text: t.ussd.notMpesaNumber });

  const inputs = req.text === '' ? [] : req.text.split('*');
  let session = await deps.sessions.get(req.sessionId);
  if (session && session.msisdn !== msisdn) session = null; // a session id is never shared between phones
  if (session && (session.lastReply.end || inputs.length <= session.consumed)) return formatReply(session.lastReply);

  if (!session) {
    const customer = await findOrCreateCustomer(deps.db, msisdn);
    const started = startMenu(screens, contextFor(deps.config, customer.language));
    session = { customerId: customer.id, msisdn, language: customer.language, state: started.state, consumed: 0, lastReply: started.reply };
  }
  const ctx = contextFor(deps.config, session.language);
  let result: StepResult = { state: session.state, reply: session.lastReply };
  for (const input of inputs.slice(session.consumed)) {
    result = step(screens, result.state, input, ctx);
    if (result.reply.end) break;
  }
  if (result.effect) result = { ...result, reply: await perform(deps, session, req.sessionId, result.effect, result.reply) };

  const next: UssdSession = { ...session, state: result.state, consumed: inputs.length, lastReply: result.reply };
  await deps.sessions.save(req.sessionId, next);
  return formatReply(result.reply);
}

function contextFor(config: Config, language: string): MenuContext {
  return {
    t: catalogFor(language),
    buyLimits: { minKes: config.buy.minKes, maxKes: config.buy.maxKes },
    priceCentsPerGram: config.gold.priceCentsPerGram,
  };
}

/** Carries out what the menu decided. Replies with the menu's own END unless the effect could not be done. */
async function perform(deps: UssdDeps, session: UssdSession, sessionId: string, effect: Effect, reply: Reply): Promise<Reply> {
  switch (effect.type) {
    case 'placeBuyOrder': {
      const order = await placeBuyOrder(deps, {
        customerId: session.customerId,
        msisdn: session.msisdn,
        amountKes: effect.amountKes,
        priceCentsPerGram: effect.priceCentsPerGram,
        gramsUg: effect.gramsUg,
        sourceKey: `ussd:${sessionId}`,
      });
      deps.log.info({ orderId: order.orderId, phone: maskMsisdn(session.msisdn), amountKes: effect.amountKes }, 'buy order placed');
      return reply;
    }
  }
}
