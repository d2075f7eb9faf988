import nock from 'nock';
import { resolvePendingTransfer } from '../../src/ledger/ledger';
import { b2cTestEnv, B2C_RESULT_PATH, B2C_STATUS_PATH } from '../support/b2c-env';
import { expectBooksBalanced, fundPoolGrams, startTestService, withRedis, type TestService } from '../support/harness';
import { postCallback } from '../support/http';
import { OPS_TOKEN, ops, pushedBuy } from '../support/ops';
import {
  b2cSuccess,
  customerAccount,
  mockB2c,
  newReceipt,
  orderOf,
  payoutOf,
  placeSale,
  SALE_UG,
  saleTransfers,
  statusAnswer,
  waitForOrderStatus,
} from '../support/sales';
import { mockAtSmsAccepted, mockDarajaToken, stkCallbackBody } from '../support/vendors';

/**
 * An operator resolves a sale in review through POST /ops/orders/:id/resolve: `paid_out` (the payout
 * went out: the held gold is posted to the pool, the order `paid`) or `not_paid` (it did not: the gold
 * goes back, the order `closed` for good). Same audit trail as buys; the wrong kind's action is 422.
 */
const B2C_ENV = b2cTestEnv();
const UG_PER_GRAM = 1_000_000;

describe('ops: resolving a sale in review', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ ...B2C_ENV, OPS_API_TOKEN: OPS_TOKEN, JOB_BACKOFF_MS: '30', PAYOUT_RESULT_WAIT_SECONDS: '3600', RECONCILE_INTERVAL_MS: '3600000' });
    await fundPoolGrams(svc.db, 10);
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
    await withRedis((r) => r.del(`${svc.config.queuePrefix}:daraja:token`));
  });
  afterAll(() => svc.close());

  /** A sale Daraja accepted whose Result paid another amount: nothing posted, held in review with an open alert. */
  async function saleInReview() {
    mockDarajaToken();
    mockB2c('accepted');
    const sale = await placeSale(svc);
    await waitForOrderStatus(svc, sale.orderId, ['payout_sent'], 'Daraja to accept the payout');
    expect((await postCallback(svc.url, b2cSuccess({ payoutId: sale.payoutId, receipt: newReceipt(), amount: 10_000 }), B2C_RESULT_PATH)).status).toBe(200);
    expect(await orderOf(svc, sale.orderId)).toMatchObject({ status: 'review', failure_code: 'payout_mismatch' });
    await svc.db('ops_alerts').insert({ kind: 'payout_unconfirmed', severity: 'error', order_id: sale.orderId, message: 'test alert', dedupe_key: `t-${sale.orderId}` });
    return sale;
  }
  const resolve = (orderId: string, body: Record<string, unknown>) => ops(svc, `/ops/orders/${orderId}/resolve`, { body });
  const resolutions = (orderId: string) =>
    svc.db('order_resolutions').where({ order_id: orderId }).select('action', 'operator', 'note', 'from_status', 'to_status', 'transfer_id');

  test('when an operator resolves a sale as paid_out, then the held gold is posted to the pool, the order is paid, the audit row written and its alerts closed', async () => {
    const sale = await saleInReview();
    const res = await resolve(sale.orderId, { action: 'paid_out', note: 'M-Pesa statement shows the KES 1,000 payout', operator: 'alice' });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ ok: true, orderId: sale.orderId, action: 'paid_out', fromStatus: 'review', toStatus: 'paid', transferId: `sell-${sale.orderId}/posted` });
    expect((await orderOf(svc, sale.orderId)).status).toBe('paid');
    expect(await payoutOf(svc, sale.payoutId)).toMatchObject({ status: 'paid' });
    expect(await saleTransfers(svc, sale.orderId)).toEqual([{ status: 'posted' }]);
    expect(await customerAccount(svc, sale.customer.id)).toMatchObject({ debits_pending: 0, debits_posted: SALE_UG, credits_posted: UG_PER_GRAM });
    expect(await resolutions(sale.orderId)).toEqual([
      { action: 'paid_out', operator: 'alice', note: 'M-Pesa statement shows the KES 1,000 payout', from_status: 'review', to_status: 'paid', transfer_id: `sell-${sale.orderId}/posted` },
    ]);
    expect(await svc.db('ops_alerts').where({ order_id: sale.orderId }).first('resolution')).toEqual({ resolution: 'paid_out by alice' });

    // Final: a second resolution is refused, and a late Result moves nothing.
    expect((await resolve(sale.orderId, { action: 'not_paid', note: 'again', operator: 'bob' })).json).toEqual({ ok: false, error: 'not_in_review', status: 'paid' });
    await postCallback(svc.url, b2cSuccess({ payoutId: sale.payoutId, receipt: newReceipt() }), B2C_RESULT_PATH);
    expect(await saleTransfers(svc, sale.orderId)).toEqual([{ status: 'posted' }]);
    expect(await resolutions(sale.orderId)).toHaveLength(1);

    // M-Pesa then says the payout failed, twice (a Result and a status answer): the operator's decision
    // stands (nothing moves), and one alert asks a person to check: the seller may have neither.
    const failure = { Result: { ResultType: 0, ResultCode: 2001, ResultDesc: 'The initiator information is invalid.', OriginatorConversationID: sale.payoutId, ConversationID: 'AG_failed_late', TransactionID: 'UAB0000000' } };
    expect((await postCallback(svc.url, failure, B2C_RESULT_PATH)).status).toBe(200);
    await svc.db('payout_status_queries').insert({ payout_id: sale.payoutId, check_no: 9, query_originator_conversation_id: `q-paid-${sale.payoutId}`, query_conversation_id: `AG_paid_${sale.payoutId}` });
    const query = { payoutId: sale.payoutId, queryId: `q-paid-${sale.payoutId}`, queryConversationId: `AG_paid_${sale.payoutId}` };
    expect((await postCallback(svc.url, statusAnswer(query, { status: 'Failed' }), B2C_STATUS_PATH)).status).toBe(200);
    expect((await orderOf(svc, sale.orderId)).status).toBe('paid');
    expect(await saleTransfers(svc, sale.orderId)).toEqual([{ status: 'posted' }]);
    const raised = await svc.db('ops_alerts').where({ order_id: sale.orderId, kind: 'payout_failed_after_paid' });
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({ severity: 'error', resolved_at: null, details: { payoutId: sale.payoutId, resultCode: '2001', decidedBy: 'operator' } });
    expect(raised[0].message).toContain('alice');
    expect(await svc.db('mpesa_callbacks').where({ originator_conversation_id: sale.payoutId }).whereIn('kind', ['b2c_result', 'b2c_status']).orderBy('id').pluck('outcome')).toEqual(['mismatch', 'duplicate', 'conflict', 'conflict']);
  });

  test('when an operator resolves a sale as not_paid, then the gold goes back to the seller and the order is closed; a later "paid" Result or status answer raises payout_paid_after_failure and moves nothing', async () => {
    const sale = await saleInReview();
    const res = await resolve(sale.orderId, { action: 'not_paid', note: 'not on the M-Pesa statement', operator: 'carol' });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ ok: true, orderId: sale.orderId, action: 'not_paid', fromStatus: 'review', toStatus: 'closed', transferId: `sell-${sale.orderId}/voided` });
    expect(await orderOf(svc, sale.orderId)).toMatchObject({ status: 'closed', failure_code: 'not_paid_by_operator', failure_reason: 'not on the M-Pesa statement' });
    expect(await payoutOf(svc, sale.payoutId)).toMatchObject({ status: 'failed' });
    expect(await saleTransfers(svc, sale.orderId)).toEqual([{ status: 'voided' }]);
    expect(await customerAccount(svc, sale.customer.id)).toMatchObject({ debits_pending: 0, debits_posted: 0, credits_posted: UG_PER_GRAM });
    expect(await resolutions(sale.orderId)).toEqual([
      { action: 'not_paid', operator: 'carol', note: 'not on the M-Pesa statement', from_status: 'review', to_status: 'closed', transfer_id: `sell-${sale.orderId}/voided` },
    ]);

    // M-Pesa says paid after all, twice (a Result and a status answer): one alert, no gold moves, still closed.
    const receipt = newReceipt();
    expect((await postCallback(svc.url, b2cSuccess({ payoutId: sale.payoutId, receipt }), B2C_RESULT_PATH)).status).toBe(200);
    await svc.db('payout_status_queries').insert({ payout_id: sale.payoutId, check_no: 9, query_originator_conversation_id: `q-closed-${sale.payoutId}`, query_conversation_id: `AG_closed_${sale.payoutId}` });
    const query = { payoutId: sale.payoutId, queryId: `q-closed-${sale.payoutId}`, queryConversationId: `AG_closed_${sale.payoutId}` };
    expect((await postCallback(svc.url, statusAnswer(query, { status: 'Completed', receipt }), B2C_STATUS_PATH)).status).toBe(200);
    expect((await orderOf(svc, sale.orderId)).status).toBe('closed');
    expect(await saleTransfers(svc, sale.orderId)).toEqual([{ status: 'voided' }]);
    expect(await customerAccount(svc, sale.customer.id)).toMatchObject({ debits_pending: 0, debits_posted: 0, credits_posted: UG_PER_GRAM });
    expect(await svc.db('ops_alerts').where({ order_id: sale.orderId }).whereNull('resolved_at').select('kind', 'severity')).toEqual([{ kind: 'payout_paid_after_failure', severity: 'error' }]);
    expect(await svc.db('mpesa_callbacks').where({ originator_conversation_id: sale.payoutId }).orderBy('id').pluck('outcome')).toEqual(['mismatch', 'conflict', 'conflict']);
  });

  test('when the action is for the other kind of order, then 422 and nothing changes', async () => {
    const sale = await saleInReview();
    const credit = await resolve(sale.orderId, { action: 'credit', note: 'x', operator: 'a' });
    expect(credit.status).toBe(422);
    expect(credit.json).toEqual({ ok: false, error: 'not_a_buy', kind: 'sell' });
    for (const action of ['refund_note', 'close']) expect((await resolve(sale.orderId, { action, note: 'x', operator: 'a' })).status).toBe(422);
    expect((await orderOf(svc, sale.orderId)).status).toBe('review');

    // A buy in review, resolved with a sell action.
    mockAtSmsAccepted([]);
    const phone = '254712499001';
    const { orderId, checkoutRequestId } = await pushedBuy(svc, phone);
    await postCallback(svc.url, stkCallbackBody({ checkoutRequestId, resultCode: 0, amount: 5, receipt: 'RVWSELL001', phone }));
    expect((await orderOf(svc, orderId)).status).toBe('review');
    for (const action of ['paid_out', 'not_paid']) {
      const res = await resolve(orderId, { action, note: 'x', operator: 'a' });
      expect(res.status).toBe(422);
      expect(res.json).toEqual({ ok: false, error: 'not_a_sell', kind: 'buy' });
    }
    expect((await orderOf(svc, orderId)).status).toBe('review');
    expect(await svc.db('order_resolutions').whereIn('order_id', [sale.orderId, orderId]).count({ n: '*' }).first()).toEqual({ n: 0 });
    expect(await saleTransfers(svc, sale.orderId)).toEqual([]);
    // Tidy both up.
    await resolve(sale.orderId, { action: 'not_paid', note: 'tidy', operator: 'a' });
    await resolve(orderId, { action: 'close', note: 'tidy', operator: 'a' });
  });

  test('when two operators resolve the same sale at once, then exactly one resolution happens', async () => {
    const sale = await saleInReview();
    const results = await Promise.all([
      resolve(sale.orderId, { action: 'paid_out', note: 'first', operator: 'alice' }),
      resolve(sale.orderId, { action: 'not_paid', note: 'second', operator: 'bob' }),
      resolve(sale.orderId, { action: 'paid_out', note: 'third', operator: 'carol' }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409, 409]);
    expect(await resolutions(sale.orderId)).toHaveLength(1);
    const winner = results.find((r) => r.status === 200)!.json;
    expect(await saleTransfers(svc, sale.orderId)).toEqual([{ status: winner.action === 'paid_out' ? 'posted' : 'voided' }]);
  });

  test('when the sale\'s gold is no longer held, then the resolution is refused (409) and nothing is written', async () => {
    const sale = await saleInReview();
    await svc.db.transaction((trx) => resolvePendingTransfer(trx, `sell-${sale.orderId}`, 'voided'));
    const res = await resolve(sale.orderId, { action: 'paid_out', note: 'x', operator: 'a' });
    expect(res.status).toBe(409);
    expect(res.json).toEqual({ ok: false, error: 'sale_not_held', transfer: 'voided' });
    expect((await orderOf(svc, sale.orderId)).status).toBe('review');
    expect(await resolutions(sale.orderId)).toEqual([]);
    expect(await svc.db('ops_alerts').where({ order_id: sale.orderId }).whereNull('resolved_at').count({ n: '*' }).first()).toEqual({ n: 1 });
  });

  test('when the sell action is unknown or the sale is not in review, then 400 / 409 and nothing changes', async () => {
    const sale = await saleInReview();
    expect((await resolve(sale.orderId, { action: 'paid', note: 'x', operator: 'a' })).status).toBe(400);
    mockDarajaToken();
    mockB2c('accepted');
    const open = await placeSale(svc);
    await waitForOrderStatus(svc, open.orderId, ['payout_sent'], 'the payout');
    const res = await resolve(open.orderId, { action: 'not_paid', note: 'x', operator: 'a' });
    expect(res.status).toBe(409);
    expect(res.json).toEqual({ ok: false, error: 'not_in_review', status: 'payout_sent' });
    expect(await saleTransfers(svc, open.orderId)).toEqual([]);
    // Settle both for the books.
    mockAtSmsAccepted([]);
    await postCallback(svc.url, b2cSuccess({ payoutId: open.payoutId, receipt: newReceipt() }), B2C_RESULT_PATH);
    await resolve(sale.orderId, { action: 'not_paid', note: 'tidy', operator: 'a' });
  });
});
