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
import { newRev, type CachedProfile, type SessionStore, type Turn, type UssdSession } from './session-store';

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
 *
 * Redis round trips (docs/ARCHITECTURE.md, "USSD"): when this process answered the session's previous screen
 * and the new input only navigates (no effect, or only effects that read), the new state is computed from the
 * one remembered here and written by ONE script that also ticks the phone's limit and checks that the stored
 * session is still the one remembered (its `rev`). Otherwise, or if another process moved the session on
 * meanwhile: one script to tick and read, one to write.
 */
export async function handleUssd(deps: UssdDeps, req: UssdRequest): Promise<string> {
  const t = catalogFor('en');
  if (req.serviceCode !== deps.config.ussd.serviceCode) return formatReply({ end: true, text: t.ussd.wrongServiceCode });
  const msisdn = toMpesaMsisdn(req.phoneNumber);
  if (!msisdn) return formatReply({ end: true, text: t.ussd.notMpesaNumber });
  const valid = req.text.length <= MAX_USSD_TEXT_CHARS;
  const inputs = !valid || req.text === '' ? [] : req.text.split('*');
  const withinInputs = inputs.length <= MAX_USSD_INPUTS;
  const ctx = contextFor(deps.config, msisdn);
  const at = { msisdn, sessionId: req.sessionId };

  let turn: Turn | undefined;
  const known = valid && withinInputs ? deps.sessions.known(msisdn, req.sessionId) : undefined;
  if (known && !known.lastReply.end && inputs.length > known.consumed) {
    const run = await advance(deps, known, inputs, ctx, at, 'reads_only');
    if (run) {
      const next = nextSession(known, run, inputs.length);
      const saved = await deps.sessions.commitIfUnchanged(msisdn, req.sessionId, known.rev, next, snapshotOf(screens, run.result.state, run.result.reply!));
      if (saved === 'saved') return answered(deps, run.result);
      turn = saved;
    }
  }
  // Before anything is read or written: a limited request changes nothing. With Redis, the same script also
  // reads what this request needs (one round trip).
  turn ??= await deps.sessions.begin(msisdn, req.sessionId);
  if (!turn.allowed) {
    deps.log.info({ phone: maskMsisdn(msisdn), limit: 'ussd_requests_per_minute' }, 'ussd request limited');
    return formatReply({ end: true, text: t.ussd.tooManyRequests });
  }
  if (!valid || !withinInputs) return formatReply({ end: true, text: t.ussd.invalidRequest });
  let session = turn.session;
  if (session && (session.lastReply.end || inputs.length <= session.consumed)) return formatReply(session.lastReply);

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
    // `rev` first: the write script compares the stored session's first characters, `{"rev":N,`.
    session = { rev: 0, customerId: profile.customerId, msisdn, state: started.state, consumed: 0, lastReply: started.reply!, secretInputs: [] };
    if (inputs.length === 0 && !readProfile) {
      // A returning customer's main menu writes nothing: the next screen, if this process answers it, writes the
      // session with its own (one script); if another process does, it starts the session again from Redis.
      deps.sessions.remember(msisdn, req.sessionId, session);
      return answered(deps, { state: session.state, reply: session.lastReply });
    }
  }

  const run = (await advance(deps, session, inputs, ctx, at, 'all'))!;
  const next = nextSession(session, run, inputs.length);
  const resumePoint = inputs.length > session.consumed ? snapshotOf(screens, run.result.state, run.result.reply!) : undefined;
  // A profile read before a PIN or language effect of this same request is stale already: not cached. The effect is in
  // the database already, so the cached profile is dropped even when the session's write fails.
  try {
    await deps.sessions.commit(msisdn, req.sessionId, next, resumePoint, run.profileChanged ? undefined : readProfile);
  } finally {
    if (run.profileChanged) await deps.sessions.forgetProfile(msisdn);
  }
  return answered(deps, run.result);
}

function answered(deps: UssdDeps, result: StepResult): string {
  const reply = result.reply!;
  deps.metrics?.inc('ussd_screens_total', { screen: reply.end ? 'end' : result.state.screen });
  return formatReply(reply);
}

interface Advanced {
  result: StepResult;
  secretInputs: number[];
  profileChanged: boolean;
}

/**
 * Effects that only read: safe to run for a state that may turn out stale (the write then fails, nothing changed).
 * They run before the script that ticks the phone's limit; that costs a limited phone no Postgres in practice: the
 * quote is in memory or Redis, and the wallet and statement screens sit behind a PIN, so their loads run in the
 * request that checks the PIN, which never takes this path.
 */
const READ_EFFECTS: ReadonlySet<string> = new Set(['loadQuote', 'loadWallet', 'loadStatement']);

/**
 * Applies the inputs not yet applied, performing each effect the menu asks for. `reads_only`: gives up (null) at
 * the first effect that changes something (a PIN check, an order, an SMS, a language), before performing it.
 */
async function advance(deps: UssdDeps, session: UssdSession, inputs: string[], ctx: MenuContext, at: { msisdn: string; sessionId: string }, mode: 'all' | 'reads_only'): Promise<Advanced | null> {
  let result: StepResult = { state: session.state, reply: session.lastReply };
  const secretInputs = [...session.secretInputs];
  let pinChecks = 0;
  let profileChanged = false;
  for (let i = session.consumed; i < inputs.length; i++) {
    // The position of every input typed on a PIN screen, so recorders of `text` can scrub it.
    if (screens[result.state.screen].secret) secretInputs.push(i);
    result = step(screens, result.state, inputs[i]!, ctx);
    for (let n = 0; result.effect; n++) {
      if (mode === 'reads_only' && !READ_EFFECTS.has(result.effect.type)) return null;
      if (n === MAX_EFFECTS_PER_INPUT) throw new Error(`menu effects did not settle on ${result.state.screen}`);
      if (PIN_EFFECTS.has(result.effect.type) && ++pinChecks > 1) {
        deps.log.warn({ phone: maskMsisdn(at.msisdn) }, 'ussd request packed several PIN entries: session ended');
        result = { state: result.state, reply: { end: true, text: catalogFor(result.state.profile.language).ussd.invalidRequest } };
        break;
      }
      if (PROFILE_EFFECTS.has(result.effect.type)) profileChanged = true;
      const outcome = await performEffect(deps, { customerId: session.customerId, msisdn: at.msisdn, sessionId: at.sessionId }, result.effect, ctx);
      result = resume(screens, result.state, outcome, ctx);
    }
    if (result.reply!.end) break;
  }
  return { result, secretInputs, profileChanged };
}

function nextSession(session: UssdSession, run: Advanced, consumed: number): UssdSession {
  return { ...session, rev: newRev(), state: run.result.state, consumed, lastReply: run.result.reply!, secretInputs: run.secretInputs };
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
