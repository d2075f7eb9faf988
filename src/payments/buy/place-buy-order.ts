import { randomBytes, randomUUID } from 'node:crypto';
import type { Db } from '../../db/knex';
import type { Outbox } from '../../infra/outbox';
import { NOT_COUNTED_FOR_LIMITS, OPEN_BUY_STATUSES } from '../../orders/order-states';
import type { OrderRequest } from '../../orders/orders';

/** The partial unique index that allows one open buy per phone (migration 20261126_008_security). */
const ONE_OPEN_BUY_INDEX = 'orders_one_open_buy_per_msisdn';

export type PlaceBuyOrder = OrderRequest;

export type PlaceBuyOrderResult =
  | { ok: true; orderId: string; reference: string; created: boolean }
  /** Over BUY_DAILY_LIMIT_KES: nothing was recorded. `remainingKes`: what the customer may still buy today. */
  | { ok: false; reason: 'daily_limit'; remainingKes: number }
  /** Another buy of this phone may still be charged (M-Pesa prompts one payment at a time): nothing recorded. */
  | { ok: false; reason: 'payment_pending' };

const PAYMENT_PENDING = { ok: false, reason: 'payment_pending' } as const;

interface PlacedRow {
  o_result: 'created' | 'exists' | 'daily_limit' | 'payment_pending';
  o_order_id: string | null;
  o_reference: string | null;
  o_remaining_kes: number | null;
  o_outbox_id: number | null;
}

/**
 * Records the order, its payment and its buy job in ONE statement (place_buy_order, migration
 * 20261205_018: the daily limit, one open buy per phone, the idempotent insert), then hands the job to
 * the queue. No vendor is called here: this runs inside the USSD request.
 * Refused (`payment_pending`) while another buy of this phone may still be charged.
 */
export async function placeBuyOrder(
  deps: { db: Db; outbox: Outbox; config: { buy: { dailyLimitKes: number } } },
  input: PlaceBuyOrder,
): Promise<PlaceBuyOrderResult> {
  let row: PlacedRow;
  try {
    const { rows } = await deps.db.raw(`SELECT * FROM place_buy_order(?::uuid, ?, ?, ?, ?, ?, ?, ?, ?, ?::text[], ?::text[])`, [
      randomUUID(),
      newReference(),
      input.customerId,
      input.msisdn,
      input.amountKes,
      input.priceCentsPerGram,
      input.gramsUg,
      input.sourceKey,
      deps.config.buy.dailyLimitKes,
      [...NOT_COUNTED_FOR_LIMITS],
      [...OPEN_BUY_STATUSES],
    ]);
    row = rows[0];
  } catch (err) {
    // Two sessions of one phone raced past the open-buy check: the unique index decided.
    const e = err as { code?: string; constraint?: string };
    if (e?.code === '23505' && e.constraint === ONE_OPEN_BUY_INDEX) return PAYMENT_PENDING;
    throw err;
  }
  switch (row.o_result) {
    case 'daily_limit':
      return { ok: false, reason: 'daily_limit', remainingKes: Number(row.o_remaining_kes) };
    case 'payment_pending':
      return PAYMENT_PENDING;
    case 'exists':
      return { ok: true, orderId: row.o_order_id!, reference: row.o_reference!, created: false };
    case 'created':
      // After the commit (the statement was its own transaction), as outbox.transaction relays. The row is this
      // statement's own (a fresh order id), so its job is known: added, then the row marked, one statement.
      await deps.outbox.relayCommitted([{ id: Number(row.o_outbox_id), queue: 'buy', jobId: `buy-${row.o_order_id}`, payload: { orderId: row.o_order_id! } }]);
      return { ok: true, orderId: row.o_order_id!, reference: row.o_reference!, created: true };
  }
}

/** 12 characters (Daraja's AccountReference limit), unambiguous letters and digits; `SLD…` for a sale. */
export function newReference(prefix: 'GLD' | 'SLD' = 'GLD'): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  const bytes = randomBytes(9);
  let ref: string = prefix;
  for (const b of bytes) ref += alphabet[b % alphabet.length];
  return ref;
}
