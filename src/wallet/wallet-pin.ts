import type { Db } from '../db/knex';
import { catalogFor } from '../i18n';
import type { Outbox } from '../infra/outbox';
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
 * Checks a wallet PIN so that it cannot be raced. The attempt is CLAIMED before the slow hash, in one
 * conditional UPDATE that also reads the lock: it counts the attempt, and the attempt that reaches
 * PIN_ATTEMPTS sets the lock at once. So N concurrent checks count N, at most PIN_ATTEMPTS are ever
 * judged before the lock, and any check that finds the wallet locked is refused without hashing.
 * A right PIN then takes back its claim and clears the count (and a lock only if it set that lock
 * itself); a wrong one leaves its count, and the one that locked queues the SMS warning.
 */
export async function verifyWalletPin(deps: PinDeps, customerId: number, pin: string, lockSeconds: number, now = new Date()): Promise<PinCheck> {
  const lockUntil = new Date(now.getTime() + lockSeconds * 1000);
  const { rows } = await deps.db.raw(
    `UPDATE customers
        SET pin_failed_attempts = CASE WHEN pin_failed_attempts + 1 >= :max THEN 0 ELSE pin_failed_attempts + 1 END,
            pin_locked_until = CASE WHEN pin_failed_attempts + 1 >= :max THEN :lockUntil::timestamptz ELSE NULL END
      WHERE id = :id AND pin_hash IS NOT NULL AND (pin_locked_until IS NULL OR pin_locked_until <= :now::timestamptz)
      RETURNING pin_hash, pin_failed_attempts, pin_locked_until`,
    { id: customerId, max: PIN_ATTEMPTS, lockUntil: lockUntil.toISOString(), now: now.toISOString() },
  );
  const claim = rows[0] as { pin_hash: string; pin_failed_attempts: number; pin_locked_until: Date | null } | undefined;
  if (!claim) {
    const row = await deps.db('customers').where({ id: customerId }).first('pin_hash', 'pin_locked_until');
    if (!row?.pin_hash) return { result: 'no_pin' };
    return { result: 'locked', until: new Date(row.pin_locked_until) };
  }
  const lockedByThisAttempt = claim.pin_locked_until !== null;

  if (await pinMatches(pin, claim.pin_hash)) {
    // Clears the count; lifts a lock only if this very attempt set it (a concurrent wrong one's lock stands).
    await deps.db('customers')
      .where({ id: customerId })
      .where((q) => (lockedByThisAttempt ? q.where('pin_locked_until', lockUntil) : q.whereNull('pin_locked_until')))
      .update({ pin_failed_attempts: 0, pin_locked_until: null });
    return { result: 'ok' };
  }
  if (!lockedByThisAttempt) return { result: 'wrong', attemptsLeft: PIN_ATTEMPTS - claim.pin_failed_attempts };
  // This wrong attempt was the one that locked the wallet: the count starts again once the lock ends.
  await deps.outbox.transaction(async (trx) => {
    const c = await trx('customers').where({ id: customerId }).first('msisdn', 'language');
    const t = catalogFor(c.language);
    return queueSms(trx, deps.outbox, {
      customerId,
      msisdn: c.msisdn,
      body: t.sms.pinLocked({ attempts: String(PIN_ATTEMPTS), until: eatTime(lockUntil) }),
      purpose: 'pin_locked',
      dedupeKey: `pin-locked-${customerId}-${lockUntil.getTime()}`,
    });
  });
  return { result: 'locked', until: lockUntil };
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
