import type { Db } from '../db/knex';
import { maskMsisdn, maskPhoneNumbersIn } from '../lib/msisdn';

export interface AlertSummary {
  id: number;
  kind: string;
  severity: string;
  orderId: string | null;
  orderKind: string | null;
  orderStatus: string | null;
  /** The order's phone, masked; '' when the alert has no order. */
  phone: string;
  message: string;
  details: unknown;
  createdAt: string;
  resolvedAt: string | null;
  resolution: string | null;
}

/** Keys whose whole value is a phone number (or a C2B account number, which is one): masked outright. */
const PHONE_KEY = /msisdn|phone|account|billref/i;

/**
 * Ops alerts, newest first, optionally only the open ones. Phones are masked, as in every ops answer
 * but the CSV: in the order's number, and wherever one appears in the message, the resolution or the
 * details (an alert's text is written by code in many places, some quoting what a vendor sent).
 */
export async function listAlerts(db: Db, filter: { open: boolean; limit: number }): Promise<AlertSummary[]> {
  const q = db('ops_alerts as a')
    .leftJoin('orders as o', 'o.id', 'a.order_id')
    .orderBy([{ column: 'a.created_at', order: 'desc' }, { column: 'a.id', order: 'desc' }])
    .limit(filter.limit)
    .select('a.id', 'a.kind', 'a.severity', 'a.order_id', 'a.message', 'a.details', 'a.created_at', 'a.resolved_at', 'a.resolution',
      'o.kind as order_kind', 'o.status as order_status', 'o.msisdn');
  if (filter.open) q.whereNull('a.resolved_at');
  const rows = await q;
  return rows.map((r) => ({
    id: Number(r.id),
    kind: r.kind,
    severity: r.severity,
    orderId: r.order_id ?? null,
    orderKind: r.order_kind ?? null,
    orderStatus: r.order_status ?? null,
    phone: maskMsisdn(r.msisdn),
    message: maskPhoneNumbersIn(r.message),
    details: maskDetails(r.details ?? {}),
    createdAt: new Date(r.created_at).toISOString(),
    resolvedAt: r.resolved_at ? new Date(r.resolved_at).toISOString() : null,
    resolution: r.resolution === null || r.resolution === undefined ? null : maskPhoneNumbersIn(r.resolution),
  }));
}

function maskDetails(value: unknown, key = ''): unknown {
  if (typeof value === 'string') return PHONE_KEY.test(key) ? maskMsisdn(value) : maskPhoneNumbersIn(value);
  if (typeof value === 'number' && PHONE_KEY.test(key)) return maskMsisdn(String(value));
  if (Array.isArray(value)) return value.map((v) => maskDetails(v, key));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskDetails(v, k)]));
  return value;
}
