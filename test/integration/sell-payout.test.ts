import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import nock from 'nock';
import { decryptPkcs1v15 } from '../../src/emulators/daraja/initiator';
import type { Queues } from '../../src/infra/backends';
import { Outbox } from '../../src/infra/outbox';
import { QUEUE_NAMES } from '../../src/infra/queues';
import { accountIdByCode, createPendingTransfer, ensureCustomerAccount, resolvePendingTransfer, SYSTEM_ACCOUNTS } from '../../src/ledger/ledger';
import type { Msisdn } from '../../src/lib/msisdn';
import { microgramsForPayout, UG_PER_GRAM } from '../../src/lib/units';
import { findOrCreateCustomer } from '../../src/orders/customers';
import { placeBuyOrder } from '../../src/payments/buy/place-buy-order';
import { runPayoutStatusCheck } from '../../src/payments/sell/payout-status';
import { placeSellOrder } from '../../src/payments/sell/place-sell-order';
import { AT_SANDBOX_HOST, DARAJA_HOST, expectBooksBalanced, fundPoolGrams, startTestService, waitFor, withRedis, type TestService } from '../support/harness';
import { postCallback } from '../support/http';
import { mockAtSmsAccepted, mockDarajaToken, mockStkPushAccepted, stkCallbackBody, type CapturedSms } from '../support/vendors';

/**
 * Selling gold for an M-Pesa B2C payout, end to end through the real service (web + worker, Postgres,
 * Redis): placeSellOrder -> payout job -> Daraja (nock) -> Result / queue timeout / Transaction Status
 * callbacks over HTTP -> ledger, order, payout, SMS (nock at Africa's Talking). Then the daily limits,
 * and the same sale against the built-in Daraja emulator with its strict initiator check.
 */

const B2C_PATH = '/mpesa/b2c/v3/paymentrequest';
const STATUS_PATH = '/mpesa/transactionstatus/v1/query';
const RESULT_PATH = '/mpesa/b2c/result/b2c-Result-7f3a8b';
const TIMEOUT_PATH = '/mpesa/b2c/timeout/b2c-Timeout-9c1d2e';
const STATUS_RESULT_PATH = '/mpesa/b2c/status/b2c-Status-4e2b5c';
const INITIATOR_PASSWORD = 'Initiator-Pass!1';
const SELL_PRICE = 800_000; // KES 8,000 per gram, in cents
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const certDir = mkdtempSync(path.join(tmpdir(), 'gold-b2c-cert-'));
const CERT_PATH = path.join(certDir, 'safaricom-test.pem');
writeFileSync(CERT_PATH, publicKey.export({ type: 'spki', format: 'pem' }).toString());
afterAll(() => rmSync(certDir, { recursive: true, force: true }));

const B2C_ENV = {
  MPESA_B2C_SHORTCODE: '600996',
  MPESA_INITIATOR_NAME: 'goldwallet_api',
  MPESA_INITIATOR_PASSWORD: INITIATOR_PASSWORD,
  MPESA_B2C_CERT_PATH: CERT_PATH,
  MPESA_B2C_RESULT_URL: `https://wallet.example.com${RESULT_PATH}`,
  MPESA_B2C_TIMEOUT_URL: `https://wallet.example.com${TIMEOUT_PATH}`,
  MPESA_B2C_STATUS_RESULT_URL: `https://wallet.example.com${STATUS_RESULT_PATH}`,
};

let phoneCounter = 0;
const newPhone = () => `2547${String(20_000_000 + process.pid * 100 + ++phoneCounter).slice(-8)}` as Msisdn;
const newReceipt = () => `U${randomBytes(6).toString('hex').toUpperCase().slice(0, 9)}`;

interface Captured {
  body: Record<string, any>;
  authorization: string | undefined;
}

function mockB2c(status: number, answer: unknown, captured: Captured[] = [], times = 1) {
  nock(DARAJA_HOST)
    .post(B2C_PATH)
    .times(times)
    .reply(function (_uri, body) {
      captured.push({ body: body as Record<string, any>, authorization: this.req.headers.authorization as string | undefined });
      return [status, answer as any];
    });
  return captured;
}

const accepted = (conversationId = `AG_20261126_${randomBytes(8).toString('hex')}`) => ({
  ConversationID: conversationId,
  OriginatorConversationID: 'echoed-and-ignored',
  ResponseCode: '0',
  ResponseDescription: 'Accept the service request successfully.',
});

function b2cSuccess(p: { id: string; amount: number; receipt: string; conversationId?: string }) {
  return {
    Result: {
      ResultType: 0,
      ResultCode: 0,
      ResultDesc: 'The service request is processed successfully.',
      OriginatorConversationID: p.id,
      ConversationID: p.conversationId ?? 'AG_20261126_00004e48cf7e3533f581',
      TransactionID: p.receipt,
      ResultParameters: {
        ResultParameter: [
          { Key: 'TransactionAmount', Value: p.amount },
          { Key: 'TransactionReceipt', Value: p.receipt },
          { Key: 'B2CRecipientIsRegisteredCustomer', Value: 'Y' },
          { Key: 'B2CChargesPaidAccountAvailableFunds', Value: -4510.0 },
          { Key: 'ReceiverPartyPublicName', Value: '254708374149 - John Doe' },
          { Key: 'TransactionCompletedDateTime', Value: '26.11.2026 10:48:52' },
          { Key: 'B2CUtilityAccountAvailableFunds', Value: 10116.0 },
          { Key: 'B2CWorkingAccountAvailableFunds', Value: 900000.0 },
        ],
      },
      ReferenceData: { ReferenceItem: { Key: 'QueueTimeoutURL', Value: 'https://internalsandbox.safaricom.co.ke/mpesa/b2cresults/v1/submit' } },
    },
  };
}

function b2cFailure(id: string, code: number | string, desc: string) {
  return {
    Result: {
      ResultType: 0,
      ResultCode: code,
      ResultDesc: desc,
      OriginatorConversationID: id,
      ConversationID: 'AG_20261126_0000failure',
      TransactionID: 'UAB0000000',
      ReferenceData: { ReferenceItem: { Key: 'QueueTimeoutURL', Value: 'https://internalsandbox.safaricom.co.ke/mpesa/b2cresults/v1/submit' } },
    },
  };
}

const queueTimeout = (id: string) => ({
  Result: { ResultType: 1, ResultCode: '1', ResultDesc: 'The request timed out while awaiting processing in the queue.', OriginatorConversationID: id, ConversationID: 'AG_20261126_0000timeout' },
});

function statusResult(p: { queryId: string; queryConversationId: string; payoutId?: string; receipt?: string; amount?: number; status?: string; resultCode?: number; resultDesc?: string }) {
  const found = p.payoutId !== undefined;
  return {
    Result: {
      ResultType: 0,
      ResultCode: p.resultCode ?? (found ? 0 : 2032),
      ResultDesc: p.resultDesc ?? (found ? 'The service request is processed successfully.' : 'The transaction receipt number does not exist.'),
      OriginatorConversationID: p.queryId,
      ConversationID: p.queryConversationId,
      TransactionID: 'UAB0000000',
      ...(found
        ? {
            ResultParameters: {
              ResultParameter: [
                { Key: 'DebitPartyName', Value: '600996 - Gold Wallet' },
                { Key: 'CreditPartyName', Value: '254708374149 - John Doe' },
                { Key: 'Originator Conversation ID', Value: p.payoutId },
                { Key: 'InitiatedTime', Value: 20261126104850 },
                { Key: 'DebitAccountType', Value: 'Utility Account' },
                { Key: 'TransactionReason' },
                { Key: 'TransactionStatus', Value: p.status ?? 'Completed' },
                { Key: 'FinalisedTime', Value: 20261126104852 },
                { Key: 'Amount', Value: p.amount },
                { Key: 'Conversation ID', Value: 'AG_20261126_00004e48cf7e3533f581' },
                { Key: 'ReceiptNo', Value: p.receipt },
              ],
            },
          }
        : {}),
      ReferenceData: { ReferenceItem: { Key: 'Occasion', Value: '' } },
    },
  };
}

async function giveGold(svc: TestService, msisdn: Msisdn, micrograms: number) {
  const customer = await findOrCreateCustomer(svc.db, msisdn);
  if (micrograms > 0) {
    await svc.db.transaction(async (trx) => {
      const id = `test-gift-${randomUUID()}`;
      await createPendingTransfer(trx, {
        id,
        debitAccountId: await accountIdByCode(trx, SYSTEM_ACCOUNTS.pool),
        creditAccountId: await ensureCustomerAccount(trx, customer.id),
        amount: micrograms,
        reference: 'test gift',
      });
      await resolvePendingTransfer(trx, id, 'posted');
    });
  }
  return customer;
}

const customerAccount = (svc: TestService, customerId: number) => svc.db('accounts').where({ customer_id: customerId }).first();
const orderStatus = async (svc: TestService, id: string) => (await svc.db('orders').where({ id }).first('status')).status as string;
const waitForStatus = (svc: TestService, id: string, statuses: string[], what: string) =>
  waitFor(async () => {
    const s = await orderStatus(svc, id);
    return statuses.includes(s) && s;
  }, what);

function sellDeps(svc: TestService) {
  return { db: svc.db, outbox: svc.running.services.outbox, config: svc.running.config };
}

async function sell(svc: TestService, msisdn: Msisdn, customerId: number, amountKes: number, sourceKey = `test:${randomUUID()}`) {
  return placeSellOrder(sellDeps(svc), {
    customerId,
    msisdn,
    amountKes,
    priceCentsPerGram: SELL_PRICE,
    gramsUg: microgramsForPayout(amountKes * 100, SELL_PRICE),
    sourceKey,
  });
}

/** A customer with `grams` of gold whose sale of `amountKes` Daraja has accepted (order payout_sent). */
async function acceptedSale(svc: TestService, opts: { grams?: number; amountKes?: number; captured?: Captured[] } = {}) {
  const msisdn = newPhone();
  const customer = await giveGold(svc, msisdn, (opts.grams ?? 1) * UG_PER_GRAM);
  mockDarajaToken();
  mockB2c(200, accepted(), opts.captured);
  const placed = await sell(svc, msisdn, customer.id, opts.amountKes ?? 1000);
  if (!placed.ok) throw new Error(`sale refused: ${placed.reason}`);
  await waitForStatus(svc, placed.orderId, ['payout_sent'], 'Daraja to accept the payout');
  const order = await svc.db('orders').where({ id: placed.orderId }).first();
  const payout = await svc.db('payouts').where({ order_id: placed.orderId }).first();
  return { msisdn, customer, order, payout };
}

const callbacksFor = (svc: TestService, originatorConversationId: string) =>
  svc.db('mpesa_callbacks').where({ originator_conversation_id: originatorConversationId }).orderBy('id').select('kind', 'outcome');

describe('selling gold for an M-Pesa B2C payout', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ ...B2C_ENV, JOB_ATTEMPTS: '4', JOB_BACKOFF_MS: '30', MPESA_HTTP_TIMEOUT_MS: '500', SELL_DAILY_LIMIT_KES: '150000' });
    await fundPoolGrams(svc.db, 100);
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
    await withRedis((r) => r.del(`${svc.config.queuePrefix}:daraja:token`));
  });
  afterAll(() => svc.close());

  test('when a sale is placed, then one transaction reserves the gold and records the order, the payout and its job', async () => {
    const msisdn = newPhone();
    const customer = await giveGold(svc, msisdn, UG_PER_GRAM);
    // A queue that only records what it is handed: this test looks at what placeSellOrder wrote, not at the job.
    const handed: Array<{ queue: string; data: Record<string, unknown>; jobId: unknown }> = [];
    const queues = Object.fromEntries(
      Object.keys(QUEUE_NAMES).map((key) => [key, { name: key, add: async (queue: string, data: Record<string, unknown>, opts?: { jobId?: string }) => void handed.push({ queue, data, jobId: opts?.jobId }), getWaitingCount: async () => 0, close: async () => undefined }]),
    ) as unknown as Queues;
    const deps = { ...sellDeps(svc), outbox: new Outbox(svc.db, queues, svc.running.services.log) };
    const place = (sourceKey: string) =>
      placeSellOrder(deps, { customerId: customer.id, msisdn, amountKes: 1000, priceCentsPerGram: SELL_PRICE, gramsUg: microgramsForPayout(100_000, SELL_PRICE), sourceKey });
    const placed = await place('ussd:session-place-1');
    expect(placed).toMatchObject({ ok: true, created: true });
    if (!placed.ok) return;
    expect(placed.reference).toMatch(/^SLD[A-Z2-9]{9}$/);
    const order = await svc.db('orders').where({ id: placed.orderId }).first();
    expect(order).toMatchObject({ kind: 'sell', customer_id: customer.id, msisdn, amount_cents: 100_000, price_cents_per_gram: SELL_PRICE, grams_ug: 125_000, source_key: 'ussd:session-place-1' });
    const payout = await svc.db('payouts').where({ order_id: placed.orderId }).first();
    expect(payout).toMatchObject({ msisdn, amount_kes: 1000 });
    expect(payout.id).toMatch(/^GP[A-Z2-9]{16}$/);
    expect(await svc.db('transfers').where({ id: `sell-${placed.orderId}` }).first()).toMatchObject({ status: 'pending', amount: 125_000 });
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 125_000, credits_posted: UG_PER_GRAM });
    expect(await svc.db('outbox').where({ job_id: `payout-${payout.id}` }).first()).toMatchObject({ queue: 'payout', payload: { payoutId: payout.id }, run_at: null });
    expect(handed).toEqual([{ queue: 'payout', data: { payoutId: payout.id }, jobId: `payout-${payout.id}` }]);

    // The same source again (Africa's Talking repeating a request): the same order, nothing new.
    const again = await place('ussd:session-place-1');
    expect(again).toEqual({ ok: true, orderId: placed.orderId, reference: placed.reference, created: false });
    expect(await svc.db('orders').where({ customer_id: customer.id }).count<{ count: number }[]>('* as count')).toEqual([{ count: 1 }]);
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 125_000 });
    expect(handed).toHaveLength(1);
    // The sale stays reserved (its job never ran): the books hold it as pending.
  });

  test('when M-Pesa pays, then the B2C request is built field by field and the Result posts the gold, stores the receipt and texts it', async () => {
    const captured: Captured[] = [];
    const sms: CapturedSms[] = [];
    const { msisdn, customer, order, payout } = await acceptedSale(svc, { captured });

    expect(captured).toHaveLength(1);
    const { body, authorization } = captured[0]!;
    expect(authorization).toBe('Bearer test-access-token');
    expect(Object.keys(body).sort()).toEqual(
      ['Amount', 'CommandID', 'InitiatorName', 'Occassion', 'OriginatorConversationID', 'PartyA', 'PartyB', 'QueueTimeOutURL', 'Remarks', 'ResultURL', 'SecurityCredential'].sort(),
    );
    expect(body).toMatchObject({
      OriginatorConversationID: payout.id,
      InitiatorName: 'goldwallet_api',
      CommandID: 'BusinessPayment',
      Amount: 1000,
      PartyA: '600996',
      PartyB: msisdn,
      Remarks: `Gold sale ${order.reference}`,
      QueueTimeOutURL: `https://wallet.example.com${TIMEOUT_PATH}`,
      ResultURL: `https://wallet.example.com${RESULT_PATH}`,
      Occassion: order.reference,
    });
    expect(body.SecurityCredential).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    expect(decryptPkcs1v15(privateKey, Buffer.from(body.SecurityCredential, 'base64'))?.toString('utf8')).toBe(INITIATOR_PASSWORD);
    expect(await svc.db('payouts').where({ id: payout.id }).first()).toMatchObject({ status: 'accepted', attempts: 1, maybe_sent: false });
    expect(payout.conversation_id).toMatch(/^AG_20261126_/);

    mockAtSmsAccepted(sms, AT_SANDBOX_HOST, 1, msisdn);
    const receipt = newReceipt();
    const ack = await postCallback(svc.url, b2cSuccess({ id: payout.id, amount: 1000, receipt, conversationId: payout.conversation_id }), RESULT_PATH);
    expect(ack).toMatchObject({ status: 200, json: { ResultCode: 0, ResultDesc: 'Accepted' } });

    expect(await orderStatus(svc, order.id)).toBe('paid');
    const paid = await svc.db('payouts').where({ id: payout.id }).first();
    expect(paid).toMatchObject({ status: 'paid', transaction_id: receipt, receiver_name: '254708374149 - John Doe', result_code: '0' });
    expect(paid.completed_at.toISOString()).toBe('2026-11-26T07:48:52.000Z');
    expect(paid.result_payload.Result.TransactionID).toBe(receipt);
    expect(await svc.db('transfers').where({ pending_id: `sell-${order.id}` }).first()).toMatchObject({ status: 'posted', amount: 125_000 });
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 0, debits_posted: 125_000, credits_posted: UG_PER_GRAM });
    expect(await callbacksFor(svc, payout.id)).toEqual([{ kind: 'b2c_result', outcome: 'settled' }]);

    await waitFor(() => Promise.resolve(sms.length === 1), 'the receipt SMS');
    const text = sms[0]!.form.get('message')!;
    expect(text).toBe(`Gold sale paid. M-Pesa ref ${receipt}. Sold 0.1250 g for KES 1,000 at KES 8,000/g. Gold balance 0.8750 g.`);
    expect(sms[0]!.form.get('to')).toBe(`+${msisdn}`);
  });

  test.each([
    [2001, 'The initiator information is invalid.', /payouts are paused\. Try again later\./],
    [2040, "Credit Party customer type (Unregistered or Registered Customer) can't be supported by the service.", /this line cannot receive M-Pesa payments\./],
    ['SFC_IC0003', 'The operator does not exist.', /this line cannot receive M-Pesa payments\./],
    [17, 'System internal error.', /M-Pesa could not send the money\./],
  ])('when the B2C Result reports %s, then the gold goes back to the customer, the order fails and the SMS says why', async (code, desc, reason) => {
    const sms: CapturedSms[] = [];
    const { msisdn, customer, order, payout } = await acceptedSale(svc);
    mockAtSmsAccepted(sms, AT_SANDBOX_HOST, 1, msisdn);

    const ack = await postCallback(svc.url, b2cFailure(payout.id, code, desc), RESULT_PATH);
    expect(ack).toMatchObject({ status: 200, json: { ResultCode: 0 } });

    expect(await svc.db('orders').where({ id: order.id }).first()).toMatchObject({ status: 'failed', failure_code: `b2c_${code}`, failure_reason: desc });
    expect(await svc.db('payouts').where({ id: payout.id }).first()).toMatchObject({ status: 'failed', result_code: String(code), result_desc: desc, transaction_id: null });
    expect(await svc.db('transfers').where({ pending_id: `sell-${order.id}` }).first()).toMatchObject({ status: 'voided', amount: 125_000 });
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 0, debits_posted: 0, credits_posted: UG_PER_GRAM });
    await waitFor(() => Promise.resolve(sms.length === 1), 'the failure SMS');
    const text = sms[0]!.form.get('message')!;
    expect(text).toMatch(/^Your gold sale of KES 1,000 did not go through: /);
    expect(text).toMatch(reason);
    expect(text).toMatch(/Your 0\.1250 g of gold is back in your wallet\.$/);
    expect(text.length).toBeLessThanOrEqual(160);
  });

  test('when the queue times out, then nothing fails: Transaction Status is asked, and its answer settles the sale exactly once', async () => {
    const b2c: Captured[] = [];
    const status: Captured[] = [];
    const sms: CapturedSms[] = [];
    const { msisdn, customer, order, payout } = await acceptedSale(svc, { captured: b2c });
    nock(DARAJA_HOST)
      .post(STATUS_PATH)
      .reply(function (_uri, body) {
        status.push({ body: body as Record<string, any>, authorization: this.req.headers.authorization as string | undefined });
        return [200, { OriginatorConversationID: 'q-orig-77', ConversationID: 'AG_20261126_query77', ResponseCode: '0', ResponseDescription: 'Accept the service request successfully.' }];
      });
    mockAtSmsAccepted(sms, AT_SANDBOX_HOST, 3, msisdn);

    const ack = await postCallback(svc.url, queueTimeout(payout.id), TIMEOUT_PATH);
    expect(ack).toMatchObject({ status: 200, json: { ResultCode: 0, ResultDesc: 'Accepted' } });
    const query = await waitFor(() => svc.db('payout_status_queries').where({ payout_id: payout.id }).whereNotNull('query_originator_conversation_id').first(), 'the status query');
    // The check that asked then schedules the next link of its chain (after PAYOUT_RESULT_WAIT_SECONDS): wait for that,
    // so that what follows counts only what the copies do.
    const checksBefore = query.check_no + 1;
    await waitFor(async () => (await svc.db('payouts').where({ id: payout.id }).first()).status_checks === checksBefore, 'the next check of the chain scheduled');
    // Copies of the timeout ask nothing more: each check would count towards PAYOUT_STATUS_CHECKS.
    for (const _ of [1, 2, 3]) expect((await postCallback(svc.url, queueTimeout(payout.id), TIMEOUT_PATH)).status).toBe(200);
    expect((await svc.db('payouts').where({ id: payout.id }).first()).status_checks).toBe(checksBefore);
    expect(await svc.db('mpesa_callbacks').where({ kind: 'b2c_timeout', originator_conversation_id: payout.id }).pluck('outcome')).toEqual(['status_check', 'duplicate', 'duplicate', 'duplicate']);
    expect(await orderStatus(svc, order.id)).toBe('payout_sent');
    expect(await svc.db('transfers').where({ pending_id: `sell-${order.id}` }).first()).toBeUndefined();
    expect(status).toHaveLength(1);
    expect(status[0]!.body).toMatchObject({
      Initiator: 'goldwallet_api',
      CommandID: 'TransactionStatusQuery',
      OriginalConversationID: payout.id,
      PartyA: '600996',
      IdentifierType: '4',
      ResultURL: `https://wallet.example.com${STATUS_RESULT_PATH}`,
      QueueTimeOutURL: `https://wallet.example.com${TIMEOUT_PATH}`,
    });
    expect(decryptPkcs1v15(privateKey, Buffer.from(status[0]!.body.SecurityCredential, 'base64'))?.toString('utf8')).toBe(INITIATOR_PASSWORD);

    // "Not found yet" decides nothing.
    const notFound = await postCallback(svc.url, statusResult({ queryId: 'q-orig-77', queryConversationId: 'AG_20261126_query77', resultCode: 2032 }), STATUS_RESULT_PATH);
    expect(notFound.status).toBe(200);
    expect(await orderStatus(svc, order.id)).toBe('payout_sent');

    const receipt = newReceipt();
    const completed = statusResult({ queryId: 'q-orig-77', queryConversationId: 'AG_20261126_query77', payoutId: payout.id, receipt, amount: 1000 });
    expect((await postCallback(svc.url, completed, STATUS_RESULT_PATH)).status).toBe(200);
    expect(await orderStatus(svc, order.id)).toBe('paid');
    const paid = await svc.db('payouts').where({ id: payout.id }).first();
    expect(paid).toMatchObject({ status: 'paid', transaction_id: receipt, receiver_name: '254708374149 - John Doe' });
    expect(paid.completed_at.toISOString()).toBe('2026-11-26T07:48:52.000Z');

    // The same answer again, then the B2C Result arriving late: both find the sale settled.
    expect((await postCallback(svc.url, completed, STATUS_RESULT_PATH)).status).toBe(200);
    expect((await postCallback(svc.url, b2cSuccess({ id: payout.id, amount: 1000, receipt }), RESULT_PATH)).status).toBe(200);

    expect(b2c).toHaveLength(1); // never sent twice
    expect(await svc.db('transfers').where({ pending_id: `sell-${order.id}` }).select('status')).toEqual([{ status: 'posted' }]);
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 0, debits_posted: 125_000 });
    expect(await callbacksFor(svc, payout.id)).toEqual([
      { kind: 'b2c_timeout', outcome: 'status_check' },
      { kind: 'b2c_timeout', outcome: 'duplicate' },
      { kind: 'b2c_timeout', outcome: 'duplicate' },
      { kind: 'b2c_timeout', outcome: 'duplicate' },
      { kind: 'b2c_status', outcome: 'undecided' },
      { kind: 'b2c_status', outcome: 'settled' },
      { kind: 'b2c_status', outcome: 'duplicate' },
      { kind: 'b2c_result', outcome: 'duplicate' },
    ]);
    expect(await svc.db('payout_status_queries').where({ payout_id: payout.id }).first()).toMatchObject({ result_code: '0', transaction_status: 'Completed' });
    await waitFor(() => Promise.resolve(sms.length === 1), 'the receipt SMS');
    expect(await svc.db('sms_messages').where({ dedupe_key: `sell-receipt-${order.id}` }).count<{ count: number }[]>('* as count')).toEqual([{ count: 1 }]);
  });

  test('when Transaction Status says the payout failed, then the gold goes back exactly as for a failed Result', async () => {
    const { customer, order, payout } = await acceptedSale(svc);
    nock(DARAJA_HOST).post(STATUS_PATH).reply(200, { OriginatorConversationID: 'q-orig-88', ConversationID: 'AG_20261126_query88', ResponseCode: '0', ResponseDescription: 'ok' });
    mockAtSmsAccepted([]);
    await postCallback(svc.url, queueTimeout(payout.id), TIMEOUT_PATH);
    await waitFor(() => svc.db('payout_status_queries').where({ payout_id: payout.id }).whereNotNull('query_originator_conversation_id').first(), 'the status query');

    const declined = statusResult({ queryId: 'q-orig-88', queryConversationId: 'AG_20261126_query88', payoutId: payout.id, amount: 1000, receipt: 'UAB0000000', status: 'Declined' });
    expect((await postCallback(svc.url, declined, STATUS_RESULT_PATH)).status).toBe(200);
    expect(await svc.db('orders').where({ id: order.id }).first()).toMatchObject({ status: 'failed', failure_code: 'b2c_status_declined' });
    expect(await svc.db('transfers').where({ pending_id: `sell-${order.id}` }).first()).toMatchObject({ status: 'voided' });
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 0, debits_posted: 0 });
  });

  test('when 5 identical success Results arrive at once, then the gold leaves the customer once and one receipt is sent', async () => {
    const sms: CapturedSms[] = [];
    const { msisdn, customer, order, payout } = await acceptedSale(svc);
    mockAtSmsAccepted(sms, AT_SANDBOX_HOST, 5, msisdn);
    const body = b2cSuccess({ id: payout.id, amount: 1000, receipt: newReceipt() });

    const acks = await Promise.all(Array.from({ length: 5 }, () => postCallback(svc.url, body, RESULT_PATH)));
    for (const ack of acks) expect(ack).toMatchObject({ status: 200, json: { ResultCode: 0, ResultDesc: 'Accepted' } });

    expect(await orderStatus(svc, order.id)).toBe('paid');
    expect(await svc.db('transfers').where({ pending_id: `sell-${order.id}` }).select('status')).toEqual([{ status: 'posted' }]);
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 0, debits_posted: 125_000 });
    const outcomes = (await callbacksFor(svc, payout.id)).map((c) => c.outcome).sort();
    expect(outcomes).toEqual(['duplicate', 'duplicate', 'duplicate', 'duplicate', 'settled']);
    await waitFor(() => Promise.resolve(sms.length >= 1), 'the receipt SMS');
    expect(await svc.db('sms_messages').where({ dedupe_key: `sell-receipt-${order.id}` }).count<{ count: number }[]>('* as count')).toEqual([{ count: 1 }]);
  });

  test('when a failure Result arrives after the success, or a success after a failure, then it is a conflict that changes nothing and raises one alert', async () => {
    mockAtSmsAccepted([], AT_SANDBOX_HOST, 2);
    const first = await acceptedSale(svc);
    await postCallback(svc.url, b2cSuccess({ id: first.payout.id, amount: 1000, receipt: newReceipt() }), RESULT_PATH);
    await postCallback(svc.url, b2cFailure(first.payout.id, 2001, 'The initiator information is invalid.'), RESULT_PATH);
    expect(await orderStatus(svc, first.order.id)).toBe('paid');
    expect(await svc.db('transfers').where({ pending_id: `sell-${first.order.id}` }).select('status')).toEqual([{ status: 'posted' }]);
    expect(await svc.db('payouts').where({ id: first.payout.id }).first()).toMatchObject({ status: 'paid', result_code: '0' });
    expect(await callbacksFor(svc, first.payout.id)).toEqual([
      { kind: 'b2c_result', outcome: 'settled' },
      { kind: 'b2c_result', outcome: 'conflict' },
    ]);
    expect(await svc.db('ops_alerts').where({ order_id: first.order.id }).select('kind', 'severity')).toEqual([{ kind: 'payout_failed_after_paid', severity: 'error' }]);
    expect((await svc.db('ops_alerts').where({ order_id: first.order.id }).first()).details).toMatchObject({ decidedBy: 'mpesa', resultCode: '2001' });

    const second = await acceptedSale(svc);
    await postCallback(svc.url, b2cFailure(second.payout.id, 2001, 'The initiator information is invalid.'), RESULT_PATH);
    const late = await postCallback(svc.url, b2cSuccess({ id: second.payout.id, amount: 1000, receipt: newReceipt() }), RESULT_PATH);
    expect(late.status).toBe(200);
    expect(await orderStatus(svc, second.order.id)).toBe('failed');
    expect(await svc.db('transfers').where({ pending_id: `sell-${second.order.id}` }).select('status')).toEqual([{ status: 'voided' }]);
    expect(await callbacksFor(svc, second.payout.id)).toEqual([
      { kind: 'b2c_result', outcome: 'failed' },
      { kind: 'b2c_result', outcome: 'conflict' },
    ]);
    // Paid twice (money and gold): a person is asked to recover it.
    expect(await svc.db('ops_alerts').where({ order_id: second.order.id }).select('kind', 'severity')).toEqual([{ kind: 'payout_paid_after_failure', severity: 'error' }]);
  });

  test('when the Result pays another amount, then nothing is posted and the sale waits for review with the gold still reserved', async () => {
    const { customer, order, payout } = await acceptedSale(svc);
    const ack = await postCallback(svc.url, b2cSuccess({ id: payout.id, amount: 10000, receipt: newReceipt() }), RESULT_PATH);
    expect(ack.status).toBe(200);
    expect(await svc.db('orders').where({ id: order.id }).first()).toMatchObject({ status: 'review', failure_code: 'payout_mismatch', failure_reason: 'amount 10000 != 1000' });
    expect(await svc.db('payouts').where({ id: payout.id }).first()).toMatchObject({ status: 'review', transaction_id: null });
    expect(await svc.db('transfers').where({ pending_id: `sell-${order.id}` }).first()).toBeUndefined();
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 125_000, debits_posted: 0 });
    expect(await callbacksFor(svc, payout.id)).toEqual([{ kind: 'b2c_result', outcome: 'mismatch' }]);
  });

  test('when M-Pesa pays a sale whose gold the ledger had already returned to the seller, then the ledger\'s already_resolved is not ignored: the order is NOT paid but held for review with a payout_ledger_conflict alert', async () => {
    const { customer, order, payout } = await acceptedSale(svc);
    // The held gold went back (a hand-run script, a bug elsewhere): the ledger now answers already_resolved.
    await svc.db.transaction((trx) => resolvePendingTransfer(trx, `sell-${order.id}`, 'voided'));
    const receipt = newReceipt();
    const ack = await postCallback(svc.url, b2cSuccess({ id: payout.id, amount: 1000, receipt }), RESULT_PATH);
    expect(ack).toMatchObject({ status: 200, json: { ResultCode: 0 } });
    expect(await svc.db('orders').where({ id: order.id }).first()).toMatchObject({ status: 'review', failure_code: 'payout_ledger_conflict' });
    expect(await svc.db('payouts').where({ id: payout.id }).first()).toMatchObject({ status: 'review', settled_at: null, result_code: '0' });
    expect(await svc.db('transfers').where({ pending_id: `sell-${order.id}` }).select('status')).toEqual([{ status: 'voided' }]);
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 0, debits_posted: 0, credits_posted: UG_PER_GRAM });
    expect(await svc.db('ops_alerts').where({ order_id: order.id }).select('kind', 'severity')).toEqual([{ kind: 'payout_ledger_conflict', severity: 'error' }]);
    expect(await callbacksFor(svc, payout.id)).toEqual([{ kind: 'b2c_result', outcome: 'conflict' }]);
    expect(await svc.db('sms_messages').where({ dedupe_key: `sell-receipt-${order.id}` }).first()).toBeUndefined();
  });

  test('when the sale\'s gold had already been posted for this very sale, then already_resolved (posted) still completes it as paid, once', async () => {
    const { customer, order, payout } = await acceptedSale(svc);
    await svc.db.transaction((trx) => resolvePendingTransfer(trx, `sell-${order.id}`, 'posted'));
    mockAtSmsAccepted([]);
    await postCallback(svc.url, b2cSuccess({ id: payout.id, amount: 1000, receipt: newReceipt() }), RESULT_PATH);
    expect(await orderStatus(svc, order.id)).toBe('paid');
    expect(await svc.db('transfers').where({ pending_id: `sell-${order.id}` }).select('status')).toEqual([{ status: 'posted' }]);
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 0, debits_posted: 125_000 });
    expect(await svc.db('ops_alerts').where({ order_id: order.id }).count({ n: '*' }).first()).toEqual({ n: 0 });
  });

  test('when a failure Result comes for a sale whose gold the ledger had already posted, then already_resolved (posted) is not ignored: the sale is held for review with a payout_ledger_conflict alert, the seller is not told it failed', async () => {
    const { customer, order, payout } = await acceptedSale(svc);
    await svc.db.transaction((trx) => resolvePendingTransfer(trx, `sell-${order.id}`, 'posted'));
    const res = await postCallback(svc.url, b2cFailure(payout.id, 2001, 'The initiator information is invalid.'), RESULT_PATH);
    expect(res.status).toBe(200);
    expect(await svc.db('orders').where({ id: order.id }).first()).toMatchObject({ status: 'review', failure_code: 'payout_ledger_conflict' });
    expect(await svc.db('ops_alerts').where({ order_id: order.id }).select('kind', 'severity')).toEqual([{ kind: 'payout_ledger_conflict', severity: 'error' }]);
    expect(await svc.db('sms_messages').where({ dedupe_key: `sell-failed-${order.id}` }).first()).toBeUndefined();
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 0, debits_posted: 125_000 });
    expect(await svc.db('transfers').where({ pending_id: `sell-${order.id}` }).select('status')).toEqual([{ status: 'posted' }]);
  });

  test('when a Result, a timeout or a status answer names an unknown payout, then it is acknowledged and kept as an orphan, changing nothing', async () => {
    const before = await svc.db('transfers').count<{ count: number }[]>('* as count');
    const ids = ['GPUNKNOWN00000001', 'GPUNKNOWN00000002'];
    expect(await postCallback(svc.url, b2cSuccess({ id: ids[0]!, amount: 1000, receipt: newReceipt() }), RESULT_PATH)).toMatchObject({ status: 200, json: { ResultCode: 0, ResultDesc: 'Accepted' } });
    expect(await postCallback(svc.url, queueTimeout(ids[1]!), TIMEOUT_PATH)).toMatchObject({ status: 200, json: { ResultCode: 0 } });
    expect(await postCallback(svc.url, statusResult({ queryId: 'q-unknown', queryConversationId: 'AG_unknown' }), STATUS_RESULT_PATH)).toMatchObject({ status: 200 });
    expect(await callbacksFor(svc, ids[0]!)).toEqual([{ kind: 'b2c_result', outcome: 'orphan' }]);
    expect(await callbacksFor(svc, ids[1]!)).toEqual([{ kind: 'b2c_timeout', outcome: 'orphan' }]);
    expect(await callbacksFor(svc, 'q-unknown')).toEqual([{ kind: 'b2c_status', outcome: 'orphan' }]);
    expect(await svc.db('transfers').count<{ count: number }[]>('* as count')).toEqual(before);
  });

  test('when a callback has a wrong secret or is not Daraja\'s shape, then 404 / 400 and nothing is recorded', async () => {
    const count = async () => (await svc.db('mpesa_callbacks').count<{ count: number }[]>('* as count'))[0]!.count;
    const before = await count();
    expect((await postCallback(svc.url, b2cSuccess({ id: 'GPX', amount: 10, receipt: newReceipt() }), '/mpesa/b2c/result/wrong-secret')).status).toBe(404);
    expect((await postCallback(svc.url, { Result: { ResultCode: 0 } }, RESULT_PATH)).status).toBe(400);
    expect((await postCallback(svc.url, '{not json', TIMEOUT_PATH)).status).toBe(400);
    expect(await count()).toBe(before);
  });

  test('when the customer has less gold than the sale needs, then it is refused and nothing at all is written', async () => {
    const msisdn = newPhone();
    const customer = await giveGold(svc, msisdn, 100_000); // 0.1 g; KES 1,000 needs 0.125 g
    const noAccount = await findOrCreateCustomer(svc.db, newPhone());
    const counts = async () =>
      Promise.all(['orders', 'payouts', 'transfers', 'outbox', 'accounts'].map(async (t) => (await svc.db(t).count<{ count: number }[]>('* as count'))[0]!.count));
    const before = await counts();

    expect(await sell(svc, msisdn, customer.id, 1000)).toEqual({ ok: false, reason: 'insufficient_gold' });
    expect(await sell(svc, noAccount.msisdn, noAccount.id, 1000)).toEqual({ ok: false, reason: 'insufficient_gold' });
    expect(await counts()).toEqual(before);
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 0, credits_posted: 100_000 });

    // Exactly what it holds is fine: 0.1 g at KES 8,000/g is KES 800.
    mockDarajaToken();
    mockB2c(200, accepted());
    const placed = await sell(svc, msisdn, customer.id, 800);
    expect(placed).toMatchObject({ ok: true });
    if (placed.ok) await waitForStatus(svc, placed.orderId, ['payout_sent'], 'the payout');
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 100_000, credits_posted: 100_000 });
  });

  test('when the amount is outside the limits or the grams do not cover it, then the sale is refused before anything is written', async () => {
    const msisdn = newPhone();
    const customer = await giveGold(svc, msisdn, 2 * UG_PER_GRAM);
    expect(await sell(svc, msisdn, customer.id, 9)).toEqual({ ok: false, reason: 'below_minimum' });
    expect(await sell(svc, msisdn, customer.id, 150_001)).toEqual({ ok: false, reason: 'above_maximum' });
    await expect(
      placeSellOrder(sellDeps(svc), { customerId: customer.id, msisdn, amountKes: 1000, priceCentsPerGram: SELL_PRICE, gramsUg: 124_999, sourceKey: `test:${randomUUID()}` }),
    ).rejects.toThrow(/needs at least 125000 ug, got 124999/);
    expect(await svc.db('orders').where({ customer_id: customer.id }).first()).toBeUndefined();
  });

  test('when Daraja answers 5xx, spike arrest and a reset, then the payout is retried with the SAME OriginatorConversationID and accepted once', async () => {
    const msisdn = newPhone();
    const customer = await giveGold(svc, msisdn, UG_PER_GRAM);
    const captured: Captured[] = [];
    mockDarajaToken();
    mockB2c(503, '<html>Service Unavailable</html>', captured);
    mockB2c(500, { requestId: 'r', errorCode: '500.003.02', errorMessage: 'Spike arrest violation' }, captured);
    nock(DARAJA_HOST).post(B2C_PATH).replyWithError('socket hang up');
    mockB2c(200, accepted('AG_20261126_retried'), captured);
    const placed = await sell(svc, msisdn, customer.id, 1000);
    if (!placed.ok) throw new Error('refused');
    await waitForStatus(svc, placed.orderId, ['payout_sent'], 'the payout to be accepted');

    const payout = await svc.db('payouts').where({ order_id: placed.orderId }).first();
    expect(captured.map((c) => c.body.OriginatorConversationID)).toEqual([payout.id, payout.id, payout.id]);
    expect(payout).toMatchObject({ status: 'accepted', attempts: 4, conversation_id: 'AG_20261126_retried', last_error: null, maybe_sent: true });
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 125_000 });

    mockAtSmsAccepted([]);
    await postCallback(svc.url, b2cSuccess({ id: payout.id, amount: 1000, receipt: newReceipt() }), RESULT_PATH);
    expect(await orderStatus(svc, placed.orderId)).toBe('paid');
  });

  test('when a retry is answered "Duplicate OriginatorConversationID", then the payout counts as accepted, and its Result settles it', async () => {
    const msisdn = newPhone();
    const customer = await giveGold(svc, msisdn, UG_PER_GRAM);
    const captured: Captured[] = [];
    mockDarajaToken();
    // The first request reached Daraja but its answer was lost; the retry hears "duplicate".
    nock(DARAJA_HOST).post(B2C_PATH).replyWithError('socket hang up');
    mockB2c(500, { requestId: 'r', errorCode: '500.002.1001', errorMessage: 'Duplicate OriginatorConversationID' }, captured);
    const placed = await sell(svc, msisdn, customer.id, 1000);
    if (!placed.ok) throw new Error('refused');
    await waitForStatus(svc, placed.orderId, ['payout_sent'], 'the payout to count as accepted');
    const payout = await svc.db('payouts').where({ order_id: placed.orderId }).first();
    expect(payout).toMatchObject({ status: 'accepted', attempts: 2, conversation_id: null });
    expect(captured[0]!.body.OriginatorConversationID).toBe(payout.id);

    mockAtSmsAccepted([]);
    await postCallback(svc.url, b2cSuccess({ id: payout.id, amount: 1000, receipt: newReceipt(), conversationId: 'AG_20261126_fromresult' }), RESULT_PATH);
    expect(await orderStatus(svc, placed.orderId)).toBe('paid');
    expect(await svc.db('payouts').where({ id: payout.id }).first()).toMatchObject({ status: 'paid', conversation_id: 'AG_20261126_fromresult' });
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_posted: 125_000, debits_pending: 0 });
  });

  test('when Daraja refuses the request (400), then the gold goes back at once and the customer is told', async () => {
    const msisdn = newPhone();
    const customer = await giveGold(svc, msisdn, UG_PER_GRAM);
    const sms: CapturedSms[] = [];
    mockDarajaToken();
    const captured = mockB2c(400, { requestId: 'r', errorCode: '400.002.02', errorMessage: 'Bad Request - Invalid PartyB' });
    mockAtSmsAccepted(sms, AT_SANDBOX_HOST, 1, msisdn);
    const placed = await sell(svc, msisdn, customer.id, 1000);
    if (!placed.ok) throw new Error('refused');
    await waitForStatus(svc, placed.orderId, ['failed'], 'the sale to fail');
    expect(captured).toHaveLength(1);
    expect(await svc.db('orders').where({ id: placed.orderId }).first()).toMatchObject({ failure_code: 'request_400.002.02' });
    expect(await svc.db('payouts').where({ order_id: placed.orderId }).first()).toMatchObject({ status: 'failed', attempts: 1, maybe_sent: false });
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 0, debits_posted: 0, credits_posted: UG_PER_GRAM });
    await waitFor(() => Promise.resolve(sms.length === 1), 'the failure SMS');
    expect(sms[0]!.form.get('message')).toMatch(/payouts are paused/);
  });

  test('when every attempt fails with an answer from Daraja, then after the last one the gold goes back', async () => {
    const msisdn = newPhone();
    const customer = await giveGold(svc, msisdn, UG_PER_GRAM);
    mockDarajaToken();
    const captured = mockB2c(500, { requestId: 'r', errorCode: '500.003.02', errorMessage: 'Spike arrest violation' }, [], 4);
    mockAtSmsAccepted([]);
    const placed = await sell(svc, msisdn, customer.id, 1000);
    if (!placed.ok) throw new Error('refused');
    await waitForStatus(svc, placed.orderId, ['failed'], 'the sale to fail');
    expect(captured).toHaveLength(4);
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 0, debits_posted: 0 });
  });

  test.each([
    ['a reset', () => nock(DARAJA_HOST).post(B2C_PATH).times(4).replyWithError('socket hang up')],
    ['a gateway error page (500 with no Daraja envelope)', () => nock(DARAJA_HOST).post(B2C_PATH).times(4).reply(500, '<html>Internal Server Error</html>')],
    ['a redirect (never followed: whatever answered may have passed the request on)', () => nock(DARAJA_HOST).post(B2C_PATH).times(4).reply(303, '', { Location: 'https://elsewhere.example.com/' })],
  ])('when the last attempt fails without a Daraja answer (%s), then the gold is NOT returned: Transaction Status will decide', async (_what, failEveryAttempt) => {
    const msisdn = newPhone();
    const customer = await giveGold(svc, msisdn, UG_PER_GRAM);
    mockDarajaToken();
    failEveryAttempt();
    const placed = await sell(svc, msisdn, customer.id, 1000);
    if (!placed.ok) throw new Error('refused');
    const payout = await waitFor(() => svc.db('payouts').where({ order_id: placed.orderId, attempts: 4 }).first(), 'four attempts');
    const check = await waitFor(() => svc.db('outbox').where({ job_id: `payout-status-${payout.id}-1` }).first(), 'a status check to be scheduled');
    expect(check).toMatchObject({ queue: 'payout-status', payload: { payoutId: payout.id, check: 1 } });
    expect(new Date(check.run_at).getTime() - new Date(check.created_at).getTime()).toBeGreaterThanOrEqual(299_000);
    expect(await orderStatus(svc, placed.orderId)).toBe('payout_requested');
    expect(await svc.db('payouts').where({ id: payout.id }).first()).toMatchObject({ status: 'requested', maybe_sent: true });
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 125_000 });
    // Settle it so the books and later tests see a closed sale.
    mockAtSmsAccepted([]);
    await postCallback(svc.url, b2cSuccess({ id: payout.id, amount: 1000, receipt: newReceipt() }), RESULT_PATH);
    expect(await orderStatus(svc, placed.orderId)).toBe('paid');
  });
});

/**
 * A KES 1,000 sale whose two B2C attempts got no answer (a reset): the gold held, the payout maybe
 * sent. Daraja acknowledges `statusQueries` Transaction Status queries with ids `q-<tag>-<n>-<phone>`
 * (`statusIds` gives the n-th pair, for the answer the test posts).
 */
async function unansweredSale(svc: TestService, tag: string, statusQueries: number) {
  const msisdn = newPhone();
  const customer = await giveGold(svc, msisdn, UG_PER_GRAM);
  mockDarajaToken();
  nock(DARAJA_HOST).post(B2C_PATH).times(2).replyWithError('socket hang up');
  if (statusQueries > 0) {
    let n = 0;
    nock(DARAJA_HOST)
      .post(STATUS_PATH)
      .times(statusQueries)
      .reply(() => {
        const ids = statusIds(tag, ++n, msisdn);
        return [200, { OriginatorConversationID: ids.queryId, ConversationID: ids.queryConversationId, ResponseCode: '0', ResponseDescription: 'ok' }];
      });
  }
  const placed = await sell(svc, msisdn, customer.id, 1000);
  if (!placed.ok) throw new Error('refused');
  const payout = await waitFor(() => svc.db('payouts').where({ order_id: placed.orderId, attempts: 2 }).first(), 'both attempts');
  return { msisdn, customer, orderId: placed.orderId, payout };
}

const statusIds = (tag: string, n: number, msisdn: string) => ({ queryId: `q-${tag}-${n}-${msisdn}`, queryConversationId: `AG_${tag}_${n}_${msisdn}` });

describe('the Transaction Status chain', () => {
  let svc: TestService;
  beforeAll(async () => {
    // Checks 1 s apart, two of them: the whole chain runs within the test.
    svc = await startTestService({ ...B2C_ENV, JOB_ATTEMPTS: '2', JOB_BACKOFF_MS: '30', PAYOUT_RESULT_WAIT_SECONDS: '1', PAYOUT_STATUS_CHECKS: '2' });
    await fundPoolGrams(svc.db, 10);
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
    await withRedis((r) => r.del(`${svc.config.queuePrefix}:daraja:token`));
  });
  afterAll(() => svc.close());

  test('when no result ever comes and every check is answered "not found", then an accepted payout goes to review with the gold still reserved', async () => {
    const { customer, order, payout } = await acceptedSale(svc);
    let n = 0;
    nock(DARAJA_HOST)
      .post(STATUS_PATH)
      .times(2)
      .reply(() => {
        n += 1;
        return [200, { OriginatorConversationID: `q-chain-${payout.id}-${n}`, ConversationID: `AG_chain_${payout.id}_${n}`, ResponseCode: '0', ResponseDescription: 'ok' }];
      });
    for (const i of [1, 2]) {
      await waitFor(() => svc.db('payout_status_queries').where({ payout_id: payout.id, check_no: i }).whereNotNull('query_originator_conversation_id').first(), `status query ${i}`);
      await postCallback(svc.url, statusResult({ queryId: `q-chain-${payout.id}-${i}`, queryConversationId: `AG_chain_${payout.id}_${i}` }), STATUS_RESULT_PATH);
    }
    await waitForStatus(svc, order.id, ['review'], 'the sale to go to review');
    expect(await svc.db('orders').where({ id: order.id }).first()).toMatchObject({ failure_code: 'payout_unconfirmed' });
    expect(await svc.db('payouts').where({ id: payout.id }).first()).toMatchObject({ status: 'review', status_checks: 3 });
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 125_000, debits_posted: 0 });
    expect(await callbacksFor(svc, payout.id)).toEqual([
      { kind: 'b2c_status', outcome: 'undecided' },
      { kind: 'b2c_status', outcome: 'undecided' },
    ]);

    // M-Pesa's Result arrives at last: a sale held only for want of an answer takes it.
    mockAtSmsAccepted([]);
    const late = await postCallback(svc.url, b2cSuccess({ id: payout.id, amount: 1000, receipt: newReceipt() }), RESULT_PATH);
    expect(late.status).toBe(200);
    expect(await orderStatus(svc, order.id)).toBe('paid');
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 0, debits_posted: 125_000 });
  });

  test('when the request never got an answer and M-Pesa says "not found", then after the last check the gold goes back', async () => {
    const sms: CapturedSms[] = [];
    const { msisdn, customer, orderId, payout } = await unansweredSale(svc, 'lost', 2);
    mockAtSmsAccepted(sms, AT_SANDBOX_HOST, 1, msisdn);
    for (const i of [1, 2]) {
      await waitFor(() => svc.db('payout_status_queries').where({ payout_id: payout.id, check_no: i }).whereNotNull('query_originator_conversation_id').first(), `status query ${i}`);
      await postCallback(svc.url, statusResult(statusIds('lost', i, msisdn)), STATUS_RESULT_PATH);
    }
    await waitForStatus(svc, orderId, ['failed'], 'the sale to fail');
    expect(await svc.db('orders').where({ id: orderId }).first()).toMatchObject({ failure_code: 'payout_not_sent' });
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 0, debits_posted: 0 });
    await waitFor(() => Promise.resolve(sms.length === 1), 'the failure SMS');
  });


  test('when the request never got an answer but a queue timeout shows M-Pesa had it, then "not found" on every check holds the gold for review (never returned)', async () => {
    const { msisdn, customer, orderId, payout } = await unansweredSale(svc, 'qt', 3);
    expect((await postCallback(svc.url, queueTimeout(payout.id), TIMEOUT_PATH)).status).toBe(200);
    expect(await svc.db('payouts').where({ id: payout.id }).first()).toMatchObject({ status: 'accepted', maybe_sent: true });
    expect(await orderStatus(svc, orderId)).toBe('payout_sent');
    // Every query that goes out is answered "not found", until the chain decides.
    for (let i = 1; ; i++) {
      const next = await waitFor(async () => {
        const q = await svc.db('payout_status_queries').where({ payout_id: payout.id }).whereNull('answered_at').whereNotNull('query_originator_conversation_id').first();
        if (q) return q;
        return (await orderStatus(svc, orderId)) === 'payout_sent' ? undefined : 'decided';
      }, `status query ${i} or a decision`);
      if (next === 'decided') break;
      const k = Number(/^q-qt-(\d+)-/.exec(next.query_originator_conversation_id)![1]);
      await postCallback(svc.url, statusResult(statusIds('qt', k, msisdn)), STATUS_RESULT_PATH);
    }
    expect(await svc.db('orders').where({ id: orderId }).first()).toMatchObject({ status: 'review', failure_code: 'payout_unconfirmed' });
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 125_000, debits_posted: 0 });
    // Settle it so the books and later tests see a closed sale.
    mockAtSmsAccepted([]);
    await postCallback(svc.url, b2cSuccess({ id: payout.id, amount: 1000, receipt: newReceipt() }), RESULT_PATH);
    expect(await orderStatus(svc, orderId)).toBe('paid');
  });

  test('when a chain check past the last comes after the reconciliation sweep began on the payout, then it stands down: the sweep decides', async () => {
    const { customer, orderId, payout } = await unansweredSale(svc, 'sd', 0);
    await waitFor(() => svc.db('outbox').where({ job_id: `payout-status-${payout.id}-1` }).first(), 'the first status check to be scheduled');
    // As if the sweep had asked twice (its checks share the counter) and a late queue timeout scheduled one more.
    await svc.db('payouts').where({ id: payout.id }).update({ sweep_checks: 2, status_checks: 3 });
    await runPayoutStatusCheck(svc.running.services, payout.id, 3, false);
    expect(await orderStatus(svc, orderId)).toBe('payout_requested');
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 125_000 });
    mockAtSmsAccepted([]);
    await postCallback(svc.url, b2cSuccess({ id: payout.id, amount: 1000, receipt: newReceipt() }), RESULT_PATH);
    expect(await orderStatus(svc, orderId)).toBe('paid');
  });

  test('when M-Pesa first says "not found" but the last check is answered with anything else, then the gold stays held for review', async () => {
    const { msisdn, customer, orderId, payout } = await unansweredSale(svc, 'mixed', 2);
    const answers = [{}, { resultCode: 2001, resultDesc: 'The initiator information is invalid.' }];
    for (const i of [1, 2]) {
      await waitFor(() => svc.db('payout_status_queries').where({ payout_id: payout.id, check_no: i }).whereNotNull('query_originator_conversation_id').first(), `status query ${i}`);
      await postCallback(svc.url, statusResult({ ...statusIds('mixed', i, msisdn), ...answers[i - 1] }), STATUS_RESULT_PATH);
    }
    await waitForStatus(svc, orderId, ['review'], 'the sale to be held');
    expect(await svc.db('orders').where({ id: orderId }).first()).toMatchObject({ failure_code: 'payout_unconfirmed' });
    // The payout may still be queued at Daraja: the gold is neither returned nor taken.
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 125_000, debits_posted: 0 });
  });
});

describe('daily limits', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ ...B2C_ENV, SELL_DAILY_LIMIT_KES: '3000', BUY_DAILY_LIMIT_KES: '1000', STK_PUSHES_PER_HOUR: '100' });
    await fundPoolGrams(svc.db, 100);
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
    await withRedis((r) => r.del(`${svc.config.queuePrefix}:daraja:token`));
  });
  afterAll(() => svc.close());

  test('when a sale would take the day past SELL_DAILY_LIMIT_KES, then it is refused with what is left, and failed sales do not count', async () => {
    const msisdn = newPhone();
    const customer = await giveGold(svc, msisdn, UG_PER_GRAM);
    mockDarajaToken();
    mockB2c(200, accepted(), [], 1);
    mockB2c(400, { requestId: 'r', errorCode: '400.002.02', errorMessage: 'Bad Request - Invalid PartyB' });
    mockAtSmsAccepted([]);
    const first = await sell(svc, msisdn, customer.id, 2000);
    if (!first.ok) throw new Error('refused');
    await waitForStatus(svc, first.orderId, ['payout_sent'], 'the first payout');
    const second = await sell(svc, msisdn, customer.id, 1000);
    if (!second.ok) throw new Error('refused');
    await waitForStatus(svc, second.orderId, ['failed'], 'the second sale to fail');

    // 2,000 counts, the failed 1,000 does not: 1,000 is left.
    expect(await sell(svc, msisdn, customer.id, 1001)).toEqual({ ok: false, reason: 'daily_limit', remainingKes: 1000 });
    mockB2c(200, accepted());
    const third = await sell(svc, msisdn, customer.id, 1000);
    expect(third).toMatchObject({ ok: true, created: true });
    expect(await sell(svc, msisdn, customer.id, 10)).toEqual({ ok: false, reason: 'daily_limit', remainingKes: 0 });
    if (third.ok) await waitForStatus(svc, third.orderId, ['payout_sent'], 'the third payout');
  });

  test('when six sales of one customer race, then together they stay within the limit', async () => {
    const msisdn = newPhone();
    const customer = await giveGold(svc, msisdn, UG_PER_GRAM);
    mockDarajaToken();
    mockB2c(200, accepted(), [], 1);
    mockB2c(200, accepted(), [], 1);
    mockB2c(200, accepted(), [], 1);
    const results = await Promise.all(Array.from({ length: 6 }, () => sell(svc, msisdn, customer.id, 1000)));
    expect(results.filter((r) => r.ok)).toHaveLength(3);
    expect(results.filter((r) => !r.ok)).toEqual(Array.from({ length: 3 }, () => ({ ok: false, reason: 'daily_limit', remainingKes: 0 })));
    expect(await svc.db('orders').where({ customer_id: customer.id, kind: 'sell' }).sum<{ sum: string }[]>('amount_cents as sum')).toEqual([{ sum: '300000' }]);
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 3 * 125_000 });
    for (const r of results) if (r.ok) await waitForStatus(svc, r.orderId, ['payout_sent'], 'the payouts');
  });

  test('when a buy would take the day past BUY_DAILY_LIMIT_KES, then placeBuyOrder refuses it and records nothing', async () => {
    const msisdn = newPhone();
    const customer = await findOrCreateCustomer(svc.db, msisdn);
    const deps = { db: svc.db, outbox: svc.running.services.outbox, config: svc.running.config };
    const buy = (amountKes: number) =>
      placeBuyOrder(deps, { customerId: customer.id, msisdn, amountKes, priceCentsPerGram: 850_000, gramsUg: Math.floor((amountKes * 100 * UG_PER_GRAM) / 850_000), sourceKey: `test:${randomUUID()}` });
    mockDarajaToken();
    mockStkPushAccepted([]);
    const first = await buy(600);
    if (!first.ok) throw new Error('refused');
    const payment = await waitFor(() => svc.db('stk_payments').where({ order_id: first.orderId }).whereNotNull('checkout_request_id').first(), 'the STK push');
    mockAtSmsAccepted([]);
    await postCallback(svc.url, stkCallbackBody({ checkoutRequestId: payment.checkout_request_id, resultCode: 0, amount: 600, receipt: newReceipt(), phone: msisdn }));
    await waitForStatus(svc, first.orderId, ['paid'], 'the buy to be paid');

    const orders = await svc.db('orders').count<{ count: number }[]>('* as count');
    expect(await buy(500)).toEqual({ ok: false, reason: 'daily_limit', remainingKes: 400 });
    expect(await svc.db('orders').count<{ count: number }[]>('* as count')).toEqual(orders);

    mockStkPushAccepted([]);
    const last = await buy(400);
    expect(last).toMatchObject({ ok: true, created: true });
    if (last.ok) await waitFor(() => svc.db('stk_payments').where({ order_id: last.orderId }).whereNotNull('checkout_request_id').first(), 'the second push');
    // Buying and selling have separate limits.
    const seller = await giveGold(svc, newPhone(), UG_PER_GRAM);
    mockB2c(200, accepted());
    const sale = await sell(svc, seller.msisdn, seller.id, 3000);
    expect(sale).toMatchObject({ ok: true });
    if (sale.ok) await waitForStatus(svc, sale.orderId, ['payout_sent'], 'the payout');
  });
});

describe('selling against the built-in Daraja emulator', () => {
  let svc: TestService;
  beforeAll(async () => {
    // No B2C settings: emulator mode brings its own (a generated key pair, URLs pointing at itself).
    svc = await startTestService({ MPESA_ENVIRONMENT: 'emulator', JOB_BACKOFF_MS: '30' });
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
  });
  afterAll(() => svc.close());

  test.each([
    ['254708374149', 'one Result'],
    ['254700000103', 'a queue timeout, then Transaction Status'],
    ['254700000104', 'the Result posted twice'],
  ])('when %s sells (%s), then the sale is paid once and the emulator accepted the encrypted initiator credential', async (msisdn) => {
    const sms: CapturedSms[] = [];
    mockAtSmsAccepted(sms, AT_SANDBOX_HOST, 1, msisdn);
    // The emulator's own demo pool funding gives the pool gold; the customer gets some from it.
    const customer = await giveGold(svc, msisdn as Msisdn, UG_PER_GRAM);
    const placed = await sell(svc, msisdn as Msisdn, customer.id, 1000);
    if (!placed.ok) throw new Error(`refused: ${placed.reason}`);
    await waitForStatus(svc, placed.orderId, ['paid', 'failed', 'review'], 'the emulator to settle the sale');
    expect(await orderStatus(svc, placed.orderId)).toBe('paid');
    const payout = await svc.db('payouts').where({ order_id: placed.orderId }).first();
    expect(payout.transaction_id).toMatch(/^[A-Z0-9]{10}$/);
    expect(payout.receiver_name).toMatch(/JOHN DOE/);
    expect(await svc.db('transfers').where({ pending_id: `sell-${placed.orderId}` }).select('status')).toEqual([{ status: 'posted' }]);
    await waitFor(() => Promise.resolve(sms.length === 1), 'the receipt SMS');
    expect(sms[0]!.form.get('message')).toContain(`M-Pesa ref ${payout.transaction_id}`);
    // Clean the slate for the next number: sell the rest back is not needed, each test has its own customer.
  });

  test('when the emulator pays a number scripted to fail with 2001, then the gold goes back', async () => {
    mockAtSmsAccepted([]);
    const customer = await giveGold(svc, '254700000101' as Msisdn, UG_PER_GRAM);
    const placed = await sell(svc, '254700000101' as Msisdn, customer.id, 1000);
    if (!placed.ok) throw new Error('refused');
    await waitForStatus(svc, placed.orderId, ['paid', 'failed'], 'the emulator to settle the sale');
    expect(await svc.db('orders').where({ id: placed.orderId }).first()).toMatchObject({ status: 'failed', failure_code: 'b2c_2001' });
    expect(await customerAccount(svc, customer.id)).toMatchObject({ debits_pending: 0, debits_posted: 0 });
  });
});
