import nock from 'nock';
import { resolvePendingTransfer } from '../../src/ledger/ledger';
import { expectBooksBalanced, fundPoolGrams, startTestService, type TestService } from '../support/harness';
import { postCallback } from '../support/http';
import { OPS_TOKEN, ops, pushedBuy } from '../support/ops';
import { stkCallbackBody } from '../support/vendors';

const GRAMS_500 = 58_823; // KES 500 at KES 8,500/g, rounded down
let phoneCounter = 0;
const nextPhone = () => `2547124000${String(++phoneCounter).padStart(2, '0')}`;


/** A success callback whose amount differs from the order: credited nothing, the order waits in review. */
async function orderInReview(svc: TestService) {
  const phone = nextPhone();
  const { orderId, checkoutRequestId } = await pushedBuy(svc, phone);
  const cb = await postCallback(svc.url, stkCallbackBody({ checkoutRequestId, resultCode: 0, amount: 5, receipt: `RVW${String(phoneCounter).padStart(7, '0')}`, phone }));
  expect(cb.status).toBe(200);
  expect(await svc.db('orders').where({ id: orderId }).first('status')).toEqual({ status: 'review' });
  return { orderId, phone, checkoutRequestId };
}

const pool = (svc: TestService) => svc.db('accounts').where({ code: 'pool' }).first();
const customerPosted = async (svc: TestService, phone: string) =>
  (await svc.db('accounts').join('customers', 'customers.id', 'accounts.customer_id').where('customers.msisdn', phone).first('accounts.credits_posted'))?.credits_posted ?? 0;

describe('ops: pool, orders, review resolution and the CSV export', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ OPS_API_TOKEN: OPS_TOKEN });
    await fundPoolGrams(svc.db, 10);
  });
  afterAll(() => svc.close());
  afterEach(async () => {
    nock.cleanAll();
    await expectBooksBalanced(svc.db);
  });

  test('when an order holds a reservation, then GET /ops/pool shows posted, pending and available gold, issuance and a clean books check', async () => {
    const before = (await ops(svc, '/ops/pool')).json;
    await pushedBuy(svc, nextPhone());
    const res = await ops(svc, '/ops/pool');
    expect(res.status).toBe(200);
    expect(res.json.pool.pendingUg).toBe(before.pool.pendingUg + GRAMS_500);
    expect(res.json.pool.availableUg).toBe(res.json.pool.postedUg - res.json.pool.pendingUg);
    expect(res.json.issued).toEqual({ postedUg: 10_000_000, posted: '10.0000' });
    expect(res.json.books).toEqual({ balanced: true, problems: [] });
    const p = await pool(svc);
    expect(res.json.pool.postedUg).toBe(p.credits_posted - p.debits_posted);
    expect(res.json.pool.pending).toBe((res.json.pool.pendingUg / 1_000_000).toFixed(6).slice(0, -2));
  });

  test('when orders are listed by status, then only those come back, newest first, phones masked; a bad query is 400', async () => {
    const a = await orderInReview(svc);
    const b = await orderInReview(svc);
    const res = await ops(svc, '/ops/orders?status=review&limit=2');
    expect(res.status).toBe(200);
    expect(res.json.orders.map((o: { id: string }) => o.id)).toEqual([b.orderId, a.orderId]);
    expect(res.json.orders[0]).toMatchObject({ status: 'review', phone: expect.stringMatching(/^2547\*{6}\d\d$/), failureCode: 'callback_mismatch', amountKes: '500' });
    const several = await ops(svc, '/ops/orders?status=review,stk_sent&limit=500');
    expect(new Set(several.json.orders.map((o: { status: string }) => o.status))).toEqual(new Set(['review', 'stk_sent']));
    expect((await ops(svc, '/ops/orders?status=REVIEW;drop')).status).toBe(400);
    expect((await ops(svc, '/ops/orders?limit=501')).status).toBe(400);
  });

  test('when an operator credits a review order whose reservation is held, then the reservation is posted, the order is paid and the audit row is written', async () => {
    const { orderId, phone } = await orderInReview(svc);
    const res = await ops(svc, `/ops/orders/${orderId}/resolve`, { body: { action: 'credit', note: 'Paid KES 500 per the M-Pesa statement, receipt RVW...', operator: 'alice' } });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ ok: true, orderId, action: 'credit', fromStatus: 'review', toStatus: 'paid', transferId: `buy-${orderId}/posted` });
    expect(await svc.db('orders').where({ id: orderId }).first('status')).toEqual({ status: 'paid' });
    expect(await customerPosted(svc, phone)).toBe(GRAMS_500);
    expect(await svc.db('order_resolutions').where({ order_id: orderId }).select('action', 'operator', 'note', 'from_status', 'to_status', 'transfer_id')).toEqual([
      { action: 'credit', operator: 'alice', note: 'Paid KES 500 per the M-Pesa statement, receipt RVW...', from_status: 'review', to_status: 'paid', transfer_id: `buy-${orderId}/posted` },
    ]);
    const record = await ops(svc, `/ops/orders/${orderId}`);
    expect(record.json).toMatchObject({ reservation: 'posted', resolutions: [{ action: 'credit', operator: 'alice', fromStatus: 'review', toStatus: 'paid' }] });

    const again = await ops(svc, `/ops/orders/${orderId}/resolve`, { body: { action: 'credit', note: 'again', operator: 'bob' } });
    expect(again.status).toBe(409);
    expect(again.json).toEqual({ ok: false, error: 'not_in_review', status: 'paid' });
    expect(await customerPosted(svc, phone)).toBe(GRAMS_500);
    expect(await svc.db('order_resolutions').where({ order_id: orderId }).count({ n: '*' }).first()).toEqual({ n: 1 });
  });

  test('when an order with open ops alerts is resolved, then its alerts are closed with the resolution and others stay open', async () => {
    const { orderId } = await orderInReview(svc);
    const other = await orderInReview(svc);
    const alert = (order: string, key: string) => ({ kind: 'late_payment_unallocated', severity: 'error', order_id: order, message: 'test alert', dedupe_key: key });
    await svc.db('ops_alerts').insert([alert(orderId, `t-${orderId}`), alert(other.orderId, `t-${other.orderId}`)]);

    const res = await ops(svc, `/ops/orders/${orderId}/resolve`, { body: { action: 'close', note: 'customer refunded at the shop', operator: 'carol' } });
    expect(res.status).toBe(200);
    const closed = await svc.db('ops_alerts').where({ order_id: orderId }).first('resolved_at', 'resolution');
    expect(closed.resolution).toBe('close by carol');
    expect(closed.resolved_at).not.toBeNull();
    expect(await svc.db('ops_alerts').where({ order_id: other.orderId }).first('resolved_at', 'resolution')).toEqual({ resolved_at: null, resolution: null });
    await ops(svc, `/ops/orders/${other.orderId}/resolve`, { body: { action: 'close', note: 'tidy up', operator: 'carol' } });
  });

  test('when two operators resolve the same order at once, then exactly one resolution happens', async () => {
    const { orderId, phone } = await orderInReview(svc);
    const results = await Promise.all([
      ops(svc, `/ops/orders/${orderId}/resolve`, { body: { action: 'credit', note: 'first', operator: 'alice' } }),
      ops(svc, `/ops/orders/${orderId}/resolve`, { body: { action: 'credit', note: 'second', operator: 'bob' } }),
      ops(svc, `/ops/orders/${orderId}/resolve`, { body: { action: 'close', note: 'third', operator: 'carol' } }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409, 409]);
    expect(await svc.db('order_resolutions').where({ order_id: orderId }).count({ n: '*' }).first()).toEqual({ n: 1 });
    const winner = results.find((r) => r.status === 200)!.json;
    expect(await customerPosted(svc, phone)).toBe(winner.action === 'credit' ? GRAMS_500 : 0);
  });

  test('when the held reservation was already released, then credit reserves again from the pool and posts', async () => {
    const { orderId, phone } = await orderInReview(svc);
    await svc.db.transaction((trx) => resolvePendingTransfer(trx, `buy-${orderId}`, 'voided'));
    const before = await pool(svc);
    const res = await ops(svc, `/ops/orders/${orderId}/resolve`, { body: { action: 'credit', note: 'paid after all', operator: 'alice' } });
    expect(res.status).toBe(200);
    expect(res.json.transferId).toBe(`review-credit-${orderId}/posted`);
    expect(await customerPosted(svc, phone)).toBe(GRAMS_500);
    const after = await pool(svc);
    expect(after.debits_posted - before.debits_posted).toBe(GRAMS_500);
    expect(after.debits_pending).toBe(before.debits_pending);
  });

  test('when the pool cannot cover a re-reservation, then credit is refused (409) and nothing changes', async () => {
    const { orderId, phone } = await orderInReview(svc);
    await svc.db.transaction((trx) => resolvePendingTransfer(trx, `buy-${orderId}`, 'voided'));
    // Everything left in the pool goes to someone else's reservation first.
    const p = await pool(svc);
    const available = p.credits_posted - p.debits_posted - p.debits_pending;
    const filler = await svc.db('transfers').insert({ id: 'test-filler', debit_account_id: p.id, credit_account_id: (await svc.db('accounts').where({ code: 'issuance' }).first()).id, amount: available, status: 'pending', reference: 'test' }).returning('id');
    await svc.db('accounts').where({ id: p.id }).increment('debits_pending', available);
    await svc.db('accounts').where({ code: 'issuance' }).increment('credits_pending', available);
    try {
      const res = await ops(svc, `/ops/orders/${orderId}/resolve`, { body: { action: 'credit', note: 'paid', operator: 'alice' } });
      expect(res.status).toBe(409);
      expect(res.json).toEqual({ ok: false, error: 'pool_insufficient' });
      expect(await svc.db('orders').where({ id: orderId }).first('status')).toEqual({ status: 'review' });
      expect(await customerPosted(svc, phone)).toBe(0);
      expect(await svc.db('order_resolutions').where({ order_id: orderId }).count({ n: '*' }).first()).toEqual({ n: 0 });
      expect(await svc.db('transfers').where({ id: `review-credit-${orderId}` }).first()).toBeUndefined();
    } finally {
      expect(filler).toHaveLength(1);
      await svc.db.transaction((trx) => resolvePendingTransfer(trx, 'test-filler', 'voided'));
    }
  });

  test.each([
    ['refund_note', 'Refunded KES 5 by M-Pesa reversal ref RV123', 'refunded_outside', 'refunded'],
    ['close', 'Customer never paid; duplicate ticket', 'closed_by_operator', 'closed'],
  ])('when an operator resolves a review order with %s, then the reservation goes back to the pool, the order is final with its reason, and the audit row is written', async (action, note, failureCode, status) => {
    const { orderId, phone } = await orderInReview(svc);
    const before = await pool(svc);
    const res = await ops(svc, `/ops/orders/${orderId}/resolve`, { body: { action, note, operator: 'ops-bot' } });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ toStatus: status, transferId: `buy-${orderId}/voided` });
    expect(await svc.db('orders').where({ id: orderId }).first('status', 'failure_code', 'failure_reason')).toEqual({ status, failure_code: failureCode, failure_reason: note });
    const after = await pool(svc);
    expect(before.debits_pending - after.debits_pending).toBe(GRAMS_500);
    expect(after.debits_posted).toBe(before.debits_posted);
    expect(await customerPosted(svc, phone)).toBe(0);
    expect(await svc.db('order_resolutions').where({ order_id: orderId }).first('action', 'operator', 'note')).toEqual({ action, operator: 'ops-bot', note });
  });

  test.each([
    ['an unknown action', { action: 'refund', note: 'x', operator: 'a' }],
    ['no note', { action: 'close', operator: 'a' }],
    ['a blank operator', { action: 'close', note: 'x', operator: '   ' }],
  ])('when the resolution has %s, then 400 and the order stays in review', async (_what, body) => {
    const { orderId } = await orderInReview(svc);
    const res = await ops(svc, `/ops/orders/${orderId}/resolve`, { body });
    expect(res.status).toBe(400);
    expect(await svc.db('orders').where({ id: orderId }).first('status')).toEqual({ status: 'review' });
  });

  test('when the order in review is a sell (a payout), then it is refused here (422) and left as it is', async () => {
    const [customer] = await svc.db('customers').insert({ msisdn: nextPhone() }).returning('id');
    const [sell] = await svc.db('orders')
      .insert({ id: '5f0c3a4e-1b2d-4c5e-8f9a-0b1c2d3e4f50', reference: 'GLDSELLTEST1', kind: 'sell', customer_id: customer.id, msisdn: '254712499999', amount_cents: 10_000, price_cents_per_gram: 824_500, grams_ug: 12_129, status: 'review', source_key: 'test:sell-review' })
      .returning('id');
    const res = await ops(svc, `/ops/orders/${sell.id}/resolve`, { body: { action: 'credit', note: 'x', operator: 'a' } });
    expect(res.status).toBe(422);
    expect(res.json).toEqual({ ok: false, error: 'not_a_buy', kind: 'sell' });
    expect(await svc.db('orders').where({ id: sell.id }).first('status')).toEqual({ status: 'review' });
    expect(await svc.db('order_resolutions').where({ order_id: sell.id }).count({ n: '*' }).first()).toEqual({ n: 0 });
  });

  test('when the order does not exist, then 404', async () => {
    expect((await ops(svc, '/ops/orders/7d4c0e4e-3c1b-4a57-9a8e-0b7c5e1b2f00/resolve', { body: { action: 'close', note: 'x', operator: 'a' } })).status).toBe(404);
    expect((await ops(svc, '/ops/orders/not-a-uuid/resolve', { body: { action: 'close', note: 'x', operator: 'a' } })).status).toBe(404);
    expect((await ops(svc, '/ops/orders/not-a-uuid')).status).toBe(404);
  });

  describe('GET /ops/transactions.csv', () => {
    const today = () => new Date(Date.now() + 3 * 3600_000).toISOString().slice(0, 10);

    test('when orders exist in and out of the range, then the export holds exactly those in range, with full phone numbers and formula-safe text', async () => {
      const phone = nextPhone();
      const paid = await pushedBuy(svc, phone, 200);
      await postCallback(svc.url, stkCallbackBody({ checkoutRequestId: paid.checkoutRequestId, resultCode: 0, amount: 200, receipt: 'CSV0000001', phone }));
      const failedPhone = nextPhone();
      const failed = await pushedBuy(svc, failedPhone, 100);
      await postCallback(svc.url, stkCallbackBody({ checkoutRequestId: failed.checkoutRequestId, resultCode: 1, resultDesc: '=HYPERLINK("http://evil","click"), "quoted"' }));
      const old = await pushedBuy(svc, nextPhone(), 50);
      await svc.db('orders').where({ id: old.orderId }).update({ created_at: svc.db.raw(`now() - interval '3 days'`) });

      const res = await fetch(`${svc.url}/ops/transactions.csv?from=${today()}&to=${today()}`, { headers: { authorization: `Bearer ${OPS_TOKEN}` } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
      expect(res.headers.get('content-disposition')).toBe(`attachment; filename="transactions-${today()}-${today()}.csv"`);
      const lines = (await res.text()).split('\r\n');
      expect(lines[0]).toBe(
        'created_at,order_id,reference,kind,status,msisdn,amount_cents,grams_ug,grams,price_cents_per_gram,mpesa_receipt,checkout_request_id,result_code,result_desc,transaction_date,failure_code,failure_reason,settled_at,resolution_action,resolution_operator',
      );
      expect(lines[lines.length - 1]).toBe('');
      const rows = lines.slice(1, -1);
      const expectedCount = await svc.db('orders').where('created_at', '>=', svc.db.raw(`date_trunc('day', now() AT TIME ZONE 'Africa/Nairobi') AT TIME ZONE 'Africa/Nairobi'`)).count({ n: '*' }).first();
      expect(rows).toHaveLength((expectedCount as { n: number }).n);
      expect(rows.some((r) => r.includes(old.orderId))).toBe(false);
      const paidRow = rows.find((r) => r.includes(paid.orderId))!;
      expect(paidRow).toMatch(new RegExp(`^${today()}T\\d\\d:\\d\\d:\\d\\d\\+03:00,${paid.orderId},GLD[A-Z2-9]{9},buy,paid,${phone},20000,23529,0\\.0235,850000,CSV0000001,${paid.checkoutRequestId},0,`));
      const failedRow = rows.find((r) => r.includes(failed.orderId))!;
      expect(failedRow).toContain(`,${failedPhone},10000,`);
      expect(failedRow).toContain(`,"'=HYPERLINK(""http://evil"",""click""), ""quoted""",`);
    });

    test('when an order was resolved, then its row names the action and the operator', async () => {
      const { orderId } = await orderInReview(svc);
      await ops(svc, `/ops/orders/${orderId}/resolve`, { body: { action: 'close', note: 'n', operator: 'dora' } });
      const res = await ops(svc, `/ops/transactions.csv?from=${today()}&to=${today()}`);
      const row = res.text.split('\r\n').find((r) => r.includes(orderId))!;
      expect(row.endsWith(',close,dora')).toBe(true);
    });

    test('when there are more orders than one page, then every one comes exactly once', async () => {
      const { transactionsCsv } = await import('../../src/ops/transactions-csv');
      const range = { fromIso: new Date(Date.now() - 86_400_000).toISOString(), toExclusiveIso: new Date(Date.now() + 86_400_000).toISOString() };
      let text = '';
      for await (const chunk of transactionsCsv(svc.db, range, 2)) text += chunk;
      const ids = text.split('\r\n').slice(1, -1).map((r) => r.split(',')[1]);
      const expected = await svc.db('orders').where('created_at', '>=', range.fromIso).orderBy([{ column: 'created_at' }, { column: 'id' }]).pluck('id');
      expect(ids).toEqual(expected);
      expect(ids.length).toBeGreaterThan(4);
    });

    test.each([
      ['no dates', ''],
      ['to before from', '?from=2026-11-10&to=2026-11-09'],
      ['an impossible date', '?from=2026-02-30&to=2026-03-01'],
      ['a date in another format', '?from=26-11-2026&to=2026-11-30'],
      ['more than 366 days', '?from=2025-01-01&to=2026-01-02'],
    ])('when the range has %s, then 400', async (_what, query) => {
      const res = await ops(svc, `/ops/transactions.csv${query}`);
      expect(res.status).toBe(400);
      expect(res.json.error).toBe('invalid_range');
    });
  });
});
