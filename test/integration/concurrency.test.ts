import nock from 'nock';
import { fundPool } from '../../src/ledger/fund-pool';
import { expectBooksBalanced, startTestService, waitFor, type TestService } from '../support/harness';
import { newSessionId, postCallback, ussd } from '../support/http';
import { poolAccount } from '../support/flows';
import { mockAtSmsAccepted, mockDarajaToken, mockStkPushAccepted, stkCallbackBody, type CapturedSms, type CapturedStk } from '../support/vendors';

/**
 * Money under contention, through HTTP against the real service: many savers buying from a pool too
 * small for all of them, and Daraja repeating every callback many times at once.
 */
jest.setTimeout(120_000);

const BUYERS = 200;
const FITS = 100;
const GRAMS_UG = 58_823; // KES 500 at KES 8,500/g, rounded down
const phoneOf = (i: number) => `+2547130${String(i).padStart(5, '0')}`;

describe('concurrent buys and callbacks', () => {
  let svc: TestService;
  const stk: CapturedStk[] = [];
  const sms: CapturedSms[] = [];

  beforeAll(async () => {
    svc = await startTestService();
    await fundPool(svc.db, FITS * GRAMS_UG, 'exactly 100 buys');
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
  });
  afterAll(async () => {
    nock.cleanAll();
    await svc.close();
  });

  test(`when ${BUYERS} savers confirm at once against a pool that fits ${FITS}, then exactly ${FITS} are reserved and pushed, the rest fail cleanly, and the pool never goes below zero`, async () => {
    mockDarajaToken('tok-concurrency', 5);
    mockStkPushAccepted(stk, FITS);
    mockAtSmsAccepted(sms, undefined, BUYERS - FITS);

    const replies = await Promise.all(Array.from({ length: BUYERS }, (_, i) => ussd(svc.url, { sessionId: newSessionId(), text: '1*500*1', phoneNumber: phoneOf(i) })));
    for (const r of replies) expect(r).toMatchObject({ status: 200, text: expect.stringMatching(/^END Request received/) });
    expect(Number((await svc.db('orders').count({ n: '*' }))[0]!.n)).toBe(BUYERS);

    await waitFor(
      async () => Number((await svc.db('orders').whereIn('status', ['stk_sent', 'failed']).count({ n: '*' }))[0]!.n) === BUYERS,
      'every buy job to finish',
      60_000,
    );
    const groups = (await svc.db.raw(`SELECT status, failure_code, count(*) AS n FROM orders GROUP BY 1, 2`)).rows as Array<{ status: string; failure_code: string | null; n: string }>;
    const byStatus = Object.fromEntries(groups.map((r) => [`${r.status}/${r.failure_code ?? ''}`, Number(r.n)]));
    expect(byStatus).toEqual({ 'stk_sent/': FITS, 'failed/pool_empty': BUYERS - FITS });
    expect(stk).toHaveLength(FITS);
    expect(new Set(stk.map((c) => c.body.PhoneNumber)).size).toBe(FITS);

    const pool = await poolAccount(svc);
    expect(pool).toMatchObject({ credits_posted: FITS * GRAMS_UG, debits_pending: FITS * GRAMS_UG, debits_posted: 0 });
    expect(pool.credits_posted - pool.debits_posted - pool.debits_pending).toBe(0);
    expect(Number((await svc.db('transfers').where({ status: 'pending' }).count({ n: '*' }))[0]!.n)).toBe(FITS);
    await waitFor(async () => sms.length === BUYERS - FITS, 'the sold-out SMS to every saver who missed out', 30_000);
  });

  test('when Daraja sends 10 copies of each of 50 success callbacks all at once, then exactly 50 credits are made, each once', async () => {
    const payments = await svc.db('stk_payments').join('orders', 'orders.id', 'stk_payments.order_id').where('orders.status', 'stk_sent').orderBy('stk_payments.id').limit(50).select('stk_payments.*', 'orders.customer_id');
    expect(payments).toHaveLength(50);
    sms.length = 0;
    mockAtSmsAccepted(sms, undefined, 50);

    const bodies = payments.map((p, i) =>
      stkCallbackBody({ checkoutRequestId: p.checkout_request_id, resultCode: 0, amount: 500, receipt: `CONC${String(i).padStart(6, '0')}`, phone: p.msisdn }),
    );
    const shots = bodies.flatMap((b) => Array.from({ length: 10 }, () => b));
    const acks = await Promise.all(shots.map((b) => postCallback(svc.url, b)));
    for (const ack of acks) expect(ack).toMatchObject({ status: 200, json: { ResultCode: 0 } });

    const ids = payments.map((p) => p.checkout_request_id as string);
    const outcomes = (await svc.db.raw(`SELECT outcome, count(*) AS n FROM mpesa_callbacks WHERE checkout_request_id = ANY(?) GROUP BY 1`, [ids])).rows as Array<{ outcome: string; n: string }>;
    expect(Object.fromEntries(outcomes.map((o) => [o.outcome, Number(o.n)]))).toEqual({ settled: 50, duplicate: 450 });
    expect(Number((await svc.db('transfers').where({ status: 'posted' }).where('id', 'like', 'buy-%').count({ n: '*' }))[0]!.n)).toBe(50);
    const credited = await svc.db('accounts').whereIn('customer_id', payments.map((p) => p.customer_id)).select('credits_posted', 'credits_pending');
    expect(credited).toHaveLength(50);
    for (const a of credited) expect(a).toEqual({ credits_posted: GRAMS_UG, credits_pending: 0 });
    const pool = await poolAccount(svc);
    expect(pool).toMatchObject({ debits_posted: 50 * GRAMS_UG, debits_pending: 50 * GRAMS_UG });
    await waitFor(async () => sms.length === 50, 'one receipt per paid order', 30_000);
    expect(new Set(sms.map((m) => m.form.get('to'))).size).toBe(50);
  });
});
