import type { RunConfig } from '../config';
import type { Db } from '../db/knex';
import { catalogFor, isLanguage } from '../i18n';
import type { Outbox } from '../infra/outbox';
import type { Logger } from '../lib/logger';
import { maskMsisdn, toMpesaMsisdn } from '../lib/msisdn';
import type { Metrics } from '../infra/metrics';
import { findOrCreateCustomer, type Customer } from '../orders/customers';
import type { PhoneLimits } from '../orders/phone-limits';
import { sellAvailable } from '../payments/sell/place-sell-order';
import type { PriceSource } from '../prices/price-quote';
import { formatReply, resume, snapshotOf, startMenu, step, type MenuContext, type Profile, type StepResult } from './machine';
import { performEffect } from './perform-effect';
import { screens } from './screens';
import type { CachedProfile, SessionStore, UssdSession } from './session-store';

export interface UssdRequest {
  sessionId: string;
  serviceCode: string;
  phoneNumber: string;
  text: string;
}

export interface UssdDeps {
  config: RunConfig;
  db: Db;
  sessions: SessionStore;
  outbox: Outbox;
  log: Logger;
  limits: PhoneLimits;
  prices: PriceSource;
  metrics?: Metrics;
}

/** A menu step needs a handful of effects at most (a PIN check, then a load); more means a loop. */
const MAX_EFFECTS_PER_INPUT = 4;

/**
 * Africa's Talking sends one new input per request, so `text` grows by one input a hop. The longest
 * real walk (first PIN set twice over with re-prompts, then a sale) stays well inside these; a `text`
 * beyond them is not a phone's, and ends the session before anything is read or hashed.
 */
export const MAX_USSD_INPUTS = 24;
export const MAX_USSD_TEXT_CHARS = 200;

/**
 * Effects that run the slow PIN hash (scrypt). One request may run one: a `text` that packs several
 * PIN entries into one request (a replay or a guessing script) ends the session instead of costing
 * a hash each, or trying several PINs in one go.
 */
const PIN_EFFECTS: ReadonlySet<string> = new Set(['verifyPin', 'placeSellOrder', 'stagePin', 'savePin']);

/** Effects that may change what the cached profile holds (PIN set, tries and lock; language). */
const PROFILE_EFFECTS: ReadonlySet<string> = new Set([...PIN_EFFECTS, 'setLanguage']);

/**
 * One Africa's Talking request -> one `CON`/`END` answer. Africa's Talking repeats every input of the
 * session in `text`, joined by `*`; we apply only the inputs not yet applied, so a repeated request
 * gets the same answer and changes nothing. Each effect the menu asks for is performed here and its
 * outcome fed back before the next input.
 */
export async function handleUssd(deps: UssdDeps, req: UssdRequest): Promise<string> {
  const t = catalogFor('en');
  if (req.serviceCode !== deps.config.ussd.serviceCode) return formatReply({ end: true, text: t.ussd.wrongServiceCode });
  const msisdn = toMpesaMsisdn(req.phoneNumber);
  if (!msisdn) return formatReply({ end: true, text: t.ussd.notMpesaNumber });
  // Before anything is read or written: a limited request changes nothing. With Redis, the same script also
  // reads what this request needs (one round trip).
  const turn = await deps.sessions.begin(msisdn, req.sessionId);
  if (!turn.allowed) {
    deps.log.info({ phone: maskMsisdn(msisdn), limit: 'ussd_requests_per_minute' }, 'ussd request limited');
    return formatReply({ end: true, text: t.ussd.tooManyRequests });
  }

  if (req.text.length > MAX_USSD_TEXT_CHARS) return formatReply({ end: true, text: t.ussd.invalidRequest });
  const inputs = req.text === '' ? [] : req.text.split('*');
  if (inputs.length > MAX_USSD_INPUTS) return formatReply({ end: true, text: t.ussd.invalidRequest });
  let session = turn.session;
  if (session && (session.lastReply.end || inputs.length <= session.consumed)) return formatReply(session.lastReply);

  const ctx = contextFor(deps.config, msisdn);
  let readProfile: CachedProfile | undefined;
  if (!session) {
    // A session's first screen: a returning customer's profile comes from the cache (no database); a new one,
    // or one not seen for a while, is read (or created) in one statement and cached with this request's writes.
    let profile = turn.profile;
    let created = false;
    if (!profile) {
      const customer = await findOrCreateCustomer(deps.db, msisdn);
      profile = readProfile = cachedProfileOf(customer);
      created = customer.created;
    }
    const started = startMenu(screens, ctx, profileOf(profile, created, ctx.now), turn.resume ?? undefined);
    session = { customerId: profile.customerId, msisdn, state: started.state, consumed: 0, lastReply: started.reply!, secretInputs: [] };
  }

  let result: StepResult = { state: session.state, reply: session.lastReply };
  const secretInputs = [...session.secretInputs];
  let pinChecks = 0;
  let profileChanged = false;
  for (let i = session.consumed; i < inputs.length; i++) {
    // The position of every input typed on a PIN screen, so recorders of `text` can scrub it.
    if (screens[result.state.screen].secret) secretInputs.push(i);
    result = step(screens, result.state, inputs[i]!, ctx);
    for (let n = 0; result.effect; n++) {
      if (n === MAX_EFFECTS_PER_INPUT) throw new Error(`menu effects did not settle on ${result.state.screen}`);
      if (PIN_EFFECTS.has(result.effect.type) && ++pinChecks > 1) {
        deps.log.warn({ phone: maskMsisdn(msisdn) }, 'ussd request packed several PIN entries: session ended');
        result = { state: result.state, reply: { end: true, text: catalogFor(result.state.profile.language).ussd.invalidRequest } };
        break;
      }
      if (PROFILE_EFFECTS.has(result.effect.type)) profileChanged = true;
      const outcome = await performEffect(deps, { customerId: session.customerId, msisdn, sessionId: req.sessionId }, result.effect, ctx);
      result = resume(screens, result.state, outcome, ctx);
    }
    if (result.reply!.end) break;
  }
  const reply = result.reply!;

  const next: UssdSession = { ...session, state: result.state, consumed: inputs.length, lastReply: reply, secretInputs };
  const resumePoint = inputs.length > session.consumed ? snapshotOf(screens, result.state, reply) : undefined;
  // A profile read before a PIN or language effect of this same request is stale already: not cached.
  await deps.sessions.commit(msisdn, req.sessionId, next, resumePoint, profileChanged ? undefined : readProfile);
  if (profileChanged) await deps.sessions.forgetProfile(msisdn);
  deps.metrics?.inc('ussd_screens_total', { screen: reply.end ? 'end' : result.state.screen });
  return formatReply(reply);
}

function contextFor(config: RunConfig, msisdn: string): MenuContext {
  return {
    now: Date.now(),
    msisdn,
    buyLimits: { minKes: config.buy.minKes, maxKes: config.buy.maxKes },
    sellLimits: { minKes: config.sell.minKes, maxKes: config.sell.maxKes },
    sellEnabled: sellAvailable(config),
    quoteTtlMs: config.prices.quoteTtlSeconds * 1000,
    paybill: config.c2b?.shortcode ?? null,
  };
}

function cachedProfileOf(c: Customer): CachedProfile {
  return { customerId: c.id, language: c.language, hasPin: c.hasPin, languageChosen: c.languageChosen, pinLockedUntil: c.pinLockedUntil?.getTime() ?? null };
}

/** `created`: this very request created the customer (their first dial), so the menu offers a language first. */
function profileOf(p: CachedProfile, created: boolean, now: number): Profile {
  return {
    language: isLanguage(p.language) ? p.language : 'en',
    offerLanguage: created && !p.languageChosen,
    hasPin: p.hasPin,
    lockedUntil: p.pinLockedUntil !== null && p.pinLockedUntil > now ? p.pinLockedUntil : null,
  };
}
