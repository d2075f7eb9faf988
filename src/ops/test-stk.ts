import { randomUUID } from 'node:crypto';
import { placeChannelBuy, type ChannelBuyDeps, type ChannelBuyResult } from '../payments/buy/place-channel-buy';

/**
 * An operator's test push (POST /mpesa/test-stk): a real buy order through the normal job path, so it
 * proves the whole chain (outbox, worker, token, STK Push, callback, ledger, SMS). A paid test push
 * credits the gold it paid for, like any buy. Amounts from KES 1 are allowed (BUY_MAX_KES still
 * applies). Refused in production unless OPS_ALLOW_TEST_STK=true.
 */
export async function placeTestStk(
  deps: ChannelBuyDeps,
  req: { phoneNumber: string; amountKes: number },
): Promise<ChannelBuyResult | { ok: false; error: 'test_stk_disabled'; detail: string }> {
  if (!deps.config.ops.allowTestStk) {
    return { ok: false, error: 'test_stk_disabled', detail: 'test pushes are off in production (set OPS_ALLOW_TEST_STK=true to allow them)' };
  }
  return placeChannelBuy(deps, { ...req, sourceKey: `test-stk:${randomUUID()}`, channel: 'test_stk', minKes: 1 });
}
