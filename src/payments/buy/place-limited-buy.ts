import type { Db } from '../../db/knex';
import type { Outbox } from '../../infra/outbox';
import type { PhoneLimits } from '../../orders/phone-limits';
import { placeBuyOrder, type PlaceBuyOrder } from './place-buy-order';

export type LimitedBuyResult =
  | { ok: true; orderId: string; reference: string; created: boolean }
  | { ok: false; reason: 'too_many_payments'; retryAfterMs: number }
  | { ok: false; reason: 'payment_pending' }
  | { ok: false; reason: 'daily_limit'; remainingKes: number };

/**
 * A buy from any channel (USSD confirm, the trade API, an operator's test push), with the per-phone
 * push limit: a point is taken before the order is placed and given back whenever no new push will
 * follow (refused, or the same request already placed its order). One place for that rule.
 */
export async function placeLimitedBuy(
  deps: { db: Db; outbox: Outbox; config: { buy: { dailyLimitKes: number } }; limits: PhoneLimits },
  input: PlaceBuyOrder,
): Promise<LimitedBuyResult> {
  const pushes = await deps.limits.stkPushes.consume(input.msisdn);
  if (!pushes.allowed) return { ok: false, reason: 'too_many_payments', retryAfterMs: pushes.retryAfterMs };
  let placed: Awaited<ReturnType<typeof placeBuyOrder>>;
  try {
    placed = await placeBuyOrder(deps, input);
  } catch (err) {
    await deps.limits.stkPushes.refund(input.msisdn);
    throw err;
  }
  if (!placed.ok || !placed.created) await deps.limits.stkPushes.refund(input.msisdn);
  return placed;
}
