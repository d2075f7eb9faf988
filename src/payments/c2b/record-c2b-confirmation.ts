import { createHash } from 'node:crypto';
import type { Logger } from '../../lib/logger';
import { logOpsAlerts, raiseOpsAlert } from '../../notifications/ops-alerts';
import { storable } from '../../lib/storable-text';
import { c2bPayloadSchema, TRANS_ID } from './c2b-payload';
import { confirmC2b, type C2bDeps, type C2bOutcome } from './confirm-c2b';

export type C2bRecorded = C2bOutcome | { outcome: 'unparsed' };

/** A body's identity when nothing else in it can be trusted: sha256 of its JSON, hex. */
export function bodyDigest(body: unknown): string {
  return createHash('sha256').update(JSON.stringify(body) ?? 'undefined').digest('hex');
}

/** The TransID as sent, if it is a string at all (for logs and alerts; not checked). */
export function rawTransId(body: unknown): string | null {
  const id = (body as { TransID?: unknown } | null)?.TransID;
  return typeof id === 'string' ? id.slice(0, 40) : null;
}

/**
 * Whatever Safaricom posts to the confirmation URL is recorded: the money has already left the payer,
 * and a confirmation is not reliably sent again. A body we can read is confirmed (credited, review or
 * duplicate); one we cannot (a field missing or of an unexpected shape) is kept as it came in
 * `mpesa_callbacks` (kind `c2b_confirmation`, outcome `unparsed`) with a `c2b_unparsed` alert, one per
 * distinct body, so that an operator finds the payment in the M-Pesa statement and settles it by hand.
 * Throws only when nothing could be recorded (the database is down): the caller spools it.
 */
export async function recordC2bConfirmation(deps: C2bDeps & { log: Logger }, body: unknown): Promise<C2bRecorded> {
  const raw = storable(body);
  const parsed = c2bPayloadSchema.safeParse(raw);
  if (parsed.success) return confirmC2b(deps, parsed.data, raw);

  const fields = parsed.error.issues.map((i) => i.path.join('.')).filter(Boolean);
  const digest = bodyDigest(raw).slice(0, 32);
  const transId = rawTransId(raw);
  const alert = await deps.db.transaction(async (trx) => {
    await trx('mpesa_callbacks').insert({ kind: 'c2b_confirmation', outcome: 'unparsed', payload: JSON.stringify(raw ?? null) });
    // A readable TransID is taken by this payment, for review: a later readable copy of it is then a
    // duplicate, never credited beside a hand refund of this one.
    if (transId && TRANS_ID.test(transId)) {
      await trx('c2b_payments')
        .insert({ trans_id: transId, bill_ref_number: '', amount_cents: 0, business_shortcode: '', status: 'review', review_reason: 'unparsed', payload: JSON.stringify(raw ?? null) })
        .onConflict('trans_id')
        .ignore();
    }
    return raiseOpsAlert(trx, {
      kind: 'c2b_unparsed',
      severity: 'error',
      orderId: null,
      message: `a Paybill confirmation could not be read (${fields.join(', ') || 'not an object'}): the payer's money has arrived; find it in the M-Pesa statement (the raw body is in mpesa_callbacks) and credit or refund by hand`,
      details: { transId, fields, body: digest },
      dedupeKey: `c2b-unparsed-${digest}`,
    });
  });
  logOpsAlerts(deps.log, [alert]);
  return { outcome: 'unparsed' };
}
