import type { Db } from '../db/knex';
import { formatGrams } from '../lib/units';

/** Kenya keeps UTC+3 all year: a day of the export is a Nairobi calendar day. */
const NAIROBI_OFFSET = '+03:00';
const NAIROBI_OFFSET_MS = 3 * 3600 * 1000;
const DAY_MS = 24 * 3600 * 1000;
export const MAX_EXPORT_DAYS = 366;

export const CSV_COLUMNS = [
  'created_at', 'order_id', 'reference', 'kind', 'status', 'msisdn', 'amount_cents', 'grams_ug', 'grams', 'price_cents_per_gram',
  'mpesa_receipt', 'checkout_request_id', 'result_code', 'result_desc', 'transaction_date', 'failure_code', 'failure_reason',
  'settled_at', 'resolution_action', 'resolution_operator',
] as const;

export type DateRange = { fromIso: string; toExclusiveIso: string };

/**
 * `from`/`to` (YYYY-MM-DD, inclusive, Nairobi days) -> the half-open instant range, or why not.
 */
export function parseExportRange(from: string, to: string): { ok: true; range: DateRange } | { ok: false; detail: string } {
  const start = dayStart(from);
  const end = dayStart(to);
  if (start === null || end === null) return { ok: false, detail: 'from and to must be real dates, YYYY-MM-DD' };
  if (end < start) return { ok: false, detail: 'to must not be before from' };
  const days = (end - start) / DAY_MS + 1;
  if (days > MAX_EXPORT_DAYS) return { ok: false, detail: `at most ${MAX_EXPORT_DAYS} days per export` };
  return { ok: true, range: { fromIso: new Date(start).toISOString(), toExclusiveIso: new Date(end + DAY_MS).toISOString() } };
}

function dayStart(day: string): number | null {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) return null;
  const t = Date.parse(`${day}T00:00:00${NAIROBI_OFFSET}`);
  // Date.parse rolls 2026-02-30 over to March: a real date formats back to itself.
  if (Number.isNaN(t) || new Date(t + NAIROBI_OFFSET_MS).toISOString().slice(0, 10) !== day) return null;
  return t;
}

/**
 * Every order created in the range, oldest first, as CSV lines (header first), read in pages by
 * (created_at, id) so a year of orders streams in constant memory. FULL phone numbers: this file is
 * what refunds and reconciliation with the M-Pesa statement are done from (see README, Ops).
 */
export async function* transactionsCsv(db: Db, range: DateRange, pageSize = 1000): AsyncGenerator<string> {
  yield CSV_COLUMNS.join(',') + '\r\n';
  // The cursor keeps created_at as Postgres text: a JS Date would drop the microseconds and repeat rows.
  let after: { createdAt: string; id: string } | null = null;
  for (;;) {
    const q = db('orders as o')
      .leftJoin('stk_payments as p', 'p.order_id', 'o.id')
      .joinRaw(
        `LEFT JOIN LATERAL (SELECT action, operator FROM order_resolutions r WHERE r.order_id = o.id ORDER BY r.id DESC LIMIT 1) res ON true`,
      )
      .where('o.created_at', '>=', range.fromIso)
      .where('o.created_at', '<', range.toExclusiveIso)
      .orderBy([{ column: 'o.created_at' }, { column: 'o.id' }])
      .limit(pageSize)
      .select(
        'o.created_at', 'o.id', 'o.reference', 'o.kind', 'o.status', 'o.msisdn', 'o.amount_cents', 'o.grams_ug', 'o.price_cents_per_gram',
        'p.mpesa_receipt', 'p.checkout_request_id', 'p.result_code', 'p.result_desc', 'p.transaction_date', 'o.failure_code',
        'o.failure_reason', 'p.settled_at', 'res.action as resolution_action', 'res.operator as resolution_operator',
        db.raw('o.created_at::text AS cursor_at'),
      );
    if (after) q.whereRaw('(o.created_at, o.id) > (?::timestamptz, ?)', [after.createdAt, after.id]);
    const rows = await q;
    if (rows.length === 0) return;
    let chunk = '';
    for (const r of rows) {
      chunk +=
        [
          nairobiTime(r.created_at), r.id, r.reference, r.kind, r.status, r.msisdn, r.amount_cents, r.grams_ug, formatGrams(r.grams_ug),
          r.price_cents_per_gram, r.mpesa_receipt, r.checkout_request_id, r.result_code, r.result_desc, r.transaction_date, r.failure_code,
          r.failure_reason, r.settled_at ? nairobiTime(r.settled_at) : null, r.resolution_action, r.resolution_operator,
        ]
          .map(cell)
          .join(',') + '\r\n';
    }
    yield chunk;
    const last = rows[rows.length - 1];
    after = { createdAt: last.cursor_at, id: last.id };
    if (rows.length < pageSize) return;
  }
}

/** 2026-11-26T13:21:15+03:00 */
function nairobiTime(d: Date): string {
  return new Date(d.getTime() + NAIROBI_OFFSET_MS).toISOString().slice(0, 19) + NAIROBI_OFFSET;
}

/**
 * RFC 4180 quoting. Text that a spreadsheet would run as a formula (=, +, -, @ first: a vendor's
 * ResultDesc, an operator's note) gets a leading apostrophe. Numbers are written as they are.
 */
function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return String(v);
  let s = String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
