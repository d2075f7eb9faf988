import type { TestService } from './harness';
import { waitFor } from './harness';
import { dial } from './http';
import { mockDarajaToken, mockStkPushAccepted, type CapturedStk } from './vendors';

/** Dials, buys and waits until the STK push was accepted: the order is then waiting for its callback. */
export async function buyUntilPushed(svc: TestService, opts: { phoneNumber?: string; amountKes?: number; captured?: CapturedStk[] } = {}) {
  const captured = opts.captured ?? [];
  mockDarajaToken();
  mockStkPushAccepted(captured);
  const { sessionId, last } = await dial(svc.url, ['1', String(opts.amountKes ?? 500), '1'], { phoneNumber: opts.phoneNumber ?? '+254712345678' });
  if (!last.startsWith('END Request received')) throw new Error(`unexpected confirm reply: ${last}`);
  const order = await svc.db('orders').where('source_key', 'like', `ussd:%:${sessionId}`).first();
  const payment = await waitFor(
    () => svc.db('stk_payments').where({ order_id: order.id }).whereNotNull('checkout_request_id').first(),
    'the STK push to be accepted',
  );
  return { order, payment, checkoutRequestId: payment.checkout_request_id as string };
}

export async function orderStatus(svc: TestService, orderId: string): Promise<string> {
  return (await svc.db('orders').where({ id: orderId }).first('status')).status;
}

export async function customerGold(svc: TestService, customerId: number) {
  return svc.db('accounts').where({ customer_id: customerId }).first('credits_posted', 'credits_pending', 'debits_posted', 'debits_pending');
}

export async function poolAccount(svc: TestService) {
  return svc.db('accounts').where({ code: 'pool' }).first();
}
