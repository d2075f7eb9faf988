import type { Knex } from 'knex';
import { catalogFor } from '../../i18n';
import type { Outbox } from '../../infra/outbox';
import { release, transferIds } from '../../ledger/gold';
import { formatKes } from '../../lib/units';
import { queueSms } from '../../notifications/queue-sms';
import { transitionOrder, type Order } from '../../orders/orders';
import { type OrderStatus } from '../../orders/order-states';

export type FailureReason = 'cancelled' | 'insufficientFunds' | 'wrongPin' | 'timeout' | 'poolEmpty' | 'generic';

/** What we tell the customer for each STK ResultCode (REFERENCE.md). */
export function reasonForResultCode(code: number): FailureReason {
  switch (code) {
    case 1032:
      return 'cancelled';
    case 1:
      return 'insufficientFunds';
    case 2001:
      return 'wrongPin';
    case 1037:
    case 1019:
      return 'timeout';
    default:
      return 'generic';
  }
}

/**
 * Closes a buy as failed in the caller's transaction: the reservation (if any) goes back to the pool,
 * the order records why, and the customer's SMS is queued (relayed after commit by outbox.transaction).
 * False when the order had already left `from` (someone else settled it).
 */
export async function failBuyOrder(
  trx: Knex.Transaction,
  outbox: Outbox,
  order: Order,
  from: readonly OrderStatus[],
  failure: { code: string; description: string; reason: FailureReason },
): Promise<boolean> {
  const moved = await transitionOrder(trx, order.id, from, 'failed', {
    failure_code: failure.code,
    failure_reason: failure.description.slice(0, 300),
  });
  if (!moved) return false;
  // No reservation yet (the pool was short) needs nothing; one already posted refuses the failure.
  await release(trx, transferIds.buyReservation(order.id), 'voided');
  const t = catalogFor(order.language);
  await queueSms(trx, outbox, {
    customerId: order.customer_id,
    msisdn: order.msisdn,
    body: t.sms.buyFailed({ kes: formatKes(order.amount_cents), reason: t.sms.reasons[failure.reason] }),
    purpose: 'buy_failed',
    dedupeKey: `buy-failed-${order.id}`,
  });
  return true;
}
