import type { Db } from '../db/knex';
import { catalogFor } from '../i18n';
import type { Outbox } from '../jobs/outbox';
import { eatTime } from '../lib/eat-time';
import { queueSms } from '../notifications/queue-sms';
import { hashPin, pinMatches } from './pin-hash';

/** Wrong PINs in a row that lock the wallet (the rule; the lock's length is configuration). */
export const PIN_ATTEMPTS = 3;
/** A new PIN typed once must be repeated within this time. */
const STAGED_PIN_TTL_MS = 10 * 60 * 1000;

export type PinCheck =
  | { result: 'ok' }
  | { result: 'wrong'; attemptsLeft: number }
  | { result: 'locked'; until: Date }
  | { result: 'no_pin' };

export interface PinDeps {
  db: Db;
  outbox: Outbox;
}

/**
 * Checks a wallet PIN. A locked wallet is refused without looking at the PIN. The third wrong PIN in
 * a row locks the wallet for `lockSeconds` and queues an SMS warning, in the same transaction that
 * counts the attempt; the row lock makes concurrent attempts count one by one.
 */
export async function verifyWalletPin(deps: PinDeps, customerId: number, pin: string, lockSeconds: number, now = new Date()): Promise<PinCheck> {
  const row = await deps.db('customers').where({ id: customerId }).first('pin_hash', 'pin_locked_until', 'pin_failed_attempts');
  if (!row?.pin_hash) return { result: 'no_pin' };
  if (row.pin_locked_until && new Date(row.pin_locked_until) > now) return { result: 'locked', until: new Date(row.pin_locked_until) };
  // The slow hash runs outside the transaction: no row lock is held for its ~50 ms.
  const matches = await pinMatches(pin, row.pin_hash);
  // The common case, a right PIN with no wrong one before it, has nothing to reset: no write at all.
  if (matches && row.pin_failed_attempts === 0) return { result: 'ok' };

  const { check, relay } = await deps.db.transaction(async (trx) => {
    const c = await trx('customers').where({ id: customerId }).forUpdate().first('msisdn', 'language', 'pin_failed_attempts', 'pin_locked_until');
    if (c.pin_locked_until && new Date(c.pin_locked_until) > now) return { check: { result: 'locked', until: new Date(c.pin_locked_until) } as PinCheck, relay: [] };
    if (matches) {
      await trx('customers').where({ id: customerId }).update({ pin_failed_attempts: 0, pin_locked_until: null });
      return { check: { result: 'ok' } as PinCheck, relay: [] };
    }
    const failed = c.pin_failed_attempts + 1;
    if (failed < PIN_ATTEMPTS) {
      await trx('customers').where({ id: customerId }).update({ pin_failed_attempts: failed, pin_locked_until: null });
      return { check: { result: 'wrong', attemptsLeft: PIN_ATTEMPTS - failed } as PinCheck, relay: [] };
    }
    const until = new Date(now.getTime() + lockSeconds * 1000);
    // The count starts again once the lock ends: three fresh tries.
    await trx('customers').where({ id: customerId }).update({ pin_failed_attempts: 0, pin_locked_until: until });
    const t = catalogFor(c.language);
    const outboxId = await queueSms(trx, deps.outbox, {
      customerId,
      msisdn: c.msisdn,
      body: t.sms.pinLocked({ attempts: String(PIN_ATTEMPTS), until: eatTime(until) }),
      purpose: 'pin_locked',
      dedupeKey: `pin-locked-${customerId}-${until.getTime()}`,
    });
    return { check: { result: 'locked', until } as PinCheck, relay: [outboxId] };
  });
  await deps.outbox.relaySoon(relay);
  return check;
}

/** Holds the first entry of a new PIN, hashed like the real one, until the second entry arrives. */
export async function stageNewPin(db: Db, customerId: number, pin: string, now = new Date()): Promise<void> {
  const staged = await hashPin(pin);
  await db('customers').where({ id: customerId }).update({ pin_staged_hash: staged, pin_staged_at: now });
}

export type PinConfirmation = 'saved' | 'mismatch' | 'expired';

/**
 * The second entry of a new PIN. Matching: the staged hash becomes the wallet PIN (and any lock or
 * failed count is cleared). `firstPin`: only when the wallet has no PIN yet, so a race with another
 * session cannot replace a PIN without the old one having been checked.
 */
export async function confirmNewPin(db: Db, customerId: number, pin: string, opts: { firstPin: boolean }, now = new Date()): Promise<PinConfirmation> {
  const row = await db('customers').where({ id: customerId }).first('pin_staged_hash', 'pin_staged_at');
  if (!row?.pin_staged_hash || now.getTime() - new Date(row.pin_staged_at).getTime() > STAGED_PIN_TTL_MS) return 'expired';
  const staged: string = row.pin_staged_hash;
  const matches = await pinMatches(pin, staged);
  const clearStaged = { pin_staged_hash: null, pin_staged_at: null };
  if (!matches) {
    await db('customers').where({ id: customerId, pin_staged_hash: staged }).update(clearStaged);
    return 'mismatch';
  }
  const q = db('customers').where({ id: customerId, pin_staged_hash: staged });
  if (opts.firstPin) q.whereNull('pin_hash');
  const n = await q.update({ ...clearStaged, pin_hash: staged, pin_failed_attempts: 0, pin_locked_until: null, pin_changed_at: now });
  return n === 1 ? 'saved' : 'expired';
}
