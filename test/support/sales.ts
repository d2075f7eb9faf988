import { randomBytes, randomUUID } from 'node:crypto';
import nock from 'nock';
import type { Queues } from '../../src/infra/backends';
import { Outbox } from '../../src/infra/outbox';
import { accountIdByCode, createPendingTransfer, ensureCustomerAccount, resolvePendingTransfer, SYSTEM_ACCOUNTS } from '../../src/ledger/ledger';
import { createLogger } from '../../src/lib/logger';
import type { Msisdn } from '../../src/lib/msisdn';
import { microgramsForPayout, UG_PER_GRAM } from '../../src/lib/units';
import { findOrCreateCustomer } from '../../src/orders/customers';
import { placeSellOrder } from '../../src/payments/sell/place-sell-order';
import { DARAJA_HOST, waitFor, type TestService } from './harness';

/**
 * Selling helpers for tests of the payout side (sweep, crash recovery, ops resolution): a customer with
 * gold, a sale placed with or without its job, and Daraja's B2C / Transaction Status at the nock edge.
 * Sales are KES 1,000 at KES 8,000/g: 125,000 ug.
 */
export const B2C_PATH = '/mpesa/b2c/v3/paymentrequest';
export const STATUS_PATH = '/mpesa/transactionstatus/v1/query';
export const SELL_PRICE = 800_000;
export const SALE_UG = 125_000;

let phoneCounter = 0;
export const salePhone = () => `2547${String(30_000_000 + (process.pid % 10_000) * 1000 + ++phoneCounter).slice(-8)}` as Msisdn;
export const newReceipt = () => `U${randomBytes(6).toString('hex').toUpperCase().slice(0, 9)}`;

/** A customer holding `micrograms` of posted gold, given from the pool. */
export async function customerWithGold(svc: Pick<TestService, 'db'>, msisdn: Msisdn, micrograms = UG_PER_GRAM) {
  const customer = await findOrCreateCustomer(svc.db, msisdn);
  await svc.db.transaction(async (trx) => {
    const id = `test-gift-${randomUUID()}`;
    await createPendingTransfer(trx, { id, debitAccountId: await accountIdByCode(trx, SYSTEM_ACCOUNTS.pool), creditAccountId: await ensureCustomerAccount(trx, customer.id), amount: micrograms, reference: 'test gift' });
    await resolvePendingTransfer(trx, id, 'posted');
  });
  return customer;
}

/** Queues that take nothing: the payout job is "lost". */
const lostQueues = new Proxy({}, { get: () => ({ add: async () => undefined, getWaitingCount: async () => 0, close: async () => undefined }) }) as unknown as Queues;

/**
 * An outbox whose rows are lost: each is written already marked relayed, in the same transaction, so
 * the running service's sweep can never hand it to a real queue between COMMIT and the fast relay
 * (that race ran a second payout beside the test's own runPayout, one run in many).
 */
class LostOutbox extends Outbox {
  override async write(...args: Parameters<Outbox['write']>): Promise<number> {
    const id = await super.write(...args);
    await args[0]('outbox').where({ id }).update({ relayed_at: args[0].fn.now() });
    return id;
  }
}

/**
 * A KES 1,000 sale. `job: 'lost'` places it with an outbox whose queue takes nothing: the order stays
 * `reserved` and no job ever runs (a queue that lost it), unless the test runs runPayout itself.
 */
export async function placeSale(svc: TestService, opts: { job?: 'runs' | 'lost'; msisdn?: Msisdn } = {}) {
  const msisdn = opts.msisdn ?? salePhone();
  const customer = await customerWithGold(svc, msisdn);
  const outbox = opts.job === 'lost' ? new LostOutbox(svc.db, lostQueues, createLogger('silent')) : svc.running.services.outbox;
  const placed = await placeSellOrder(
    { db: svc.db, outbox, config: svc.running.config },
    { customerId: customer.id, msisdn, amountKes: 1000, priceCentsPerGram: SELL_PRICE, gramsUg: microgramsForPayout(100_000, SELL_PRICE), sourceKey: `test:${randomUUID()}` },
  );
  if (!placed.ok) throw new Error(`sale refused: ${placed.reason}`);
  const payout = await svc.db('payouts').where({ order_id: placed.orderId }).first();
  return { msisdn, customer, orderId: placed.orderId, reference: placed.reference, payoutId: payout.id as string };
}

export interface CapturedB2c {
  originatorConversationId: string;
}

/** B2C answers at the nock edge: accepted (with a fresh ConversationID), or any status and body. */
export function mockB2c(answer: 'accepted' | [number, unknown], captured: CapturedB2c[] = [], times = 1) {
  return nock(DARAJA_HOST)
    .post(B2C_PATH)
    .times(times)
    .reply((_uri, body) => {
      captured.push({ originatorConversationId: String((body as Record<string, unknown>).OriginatorConversationID) });
      if (answer !== 'accepted') return answer as [number, unknown];
      return [200, { ConversationID: `AG_20261204_${randomBytes(8).toString('hex')}`, OriginatorConversationID: 'echo', ResponseCode: '0', ResponseDescription: 'Accept the service request successfully.' }];
    });
}

export interface CapturedStatusQuery {
  /** The payout asked about (OriginalConversationID). */
  payoutId: string;
  /** The ids Daraja gave the query: its answer names them. */
  queryId: string;
  queryConversationId: string;
}

/** Transaction Status acknowledgements at the nock edge, each with ids of its own. */
export function mockStatusQueries(captured: CapturedStatusQuery[] = [], times = 1) {
  return nock(DARAJA_HOST)
    .post(STATUS_PATH)
    .times(times)
    .reply((_uri, body) => {
      const n = randomBytes(6).toString('hex');
      const q = { payoutId: String((body as Record<string, unknown>).OriginalConversationID), queryId: `q-${n}`, queryConversationId: `AG_q_${n}` };
      captured.push(q);
      return [200, { OriginatorConversationID: q.queryId, ConversationID: q.queryConversationId, ResponseCode: '0', ResponseDescription: 'Accept the service request successfully.' }];
    });
}

export function b2cSuccess(p: { payoutId: string; receipt: string; amount?: number }) {
  return {
    Result: {
      ResultType: 0,
      ResultCode: 0,
      ResultDesc: 'The service request is processed successfully.',
      OriginatorConversationID: p.payoutId,
      ConversationID: 'AG_20261204_00004e48cf7e3533f581',
      TransactionID: p.receipt,
      ResultParameters: {
        ResultParameter: [
          { Key: 'TransactionAmount', Value: p.amount ?? 1000 },
          { Key: 'TransactionReceipt', Value: p.receipt },
          { Key: 'ReceiverPartyPublicName', Value: '254708374149 - John Doe' },
          { Key: 'TransactionCompletedDateTime', Value: '04.12.2026 10:48:52' },
        ],
      },
    },
  };
}

/** A Transaction Status Result for a query: the payout's state (Completed, Failed...) or "not found" (2032). */
export function statusAnswer(q: CapturedStatusQuery, state: { status: 'Completed' | 'Failed'; receipt?: string } | 'not_found') {
  const found = state !== 'not_found';
  return {
    Result: {
      ResultType: 0,
      ResultCode: found ? 0 : 2032,
      ResultDesc: found ? 'The service request is processed successfully.' : 'The transaction receipt number does not exist.',
      OriginatorConversationID: q.queryId,
      ConversationID: q.queryConversationId,
      TransactionID: 'UAB0000000',
      ...(found
        ? {
            ResultParameters: {
              ResultParameter: [
                { Key: 'CreditPartyName', Value: '254708374149 - John Doe' },
                { Key: 'Originator Conversation ID', Value: q.payoutId },
                { Key: 'TransactionStatus', Value: state.status },
                { Key: 'FinalisedTime', Value: 20261204104852 },
                { Key: 'Amount', Value: 1000 },
                { Key: 'ReceiptNo', Value: state.receipt ?? 'UAB0000000' },
              ],
            },
          }
        : {}),
    },
  };
}

export const orderOf = (svc: Pick<TestService, 'db'>, orderId: string) => svc.db('orders').where({ id: orderId }).first();
export const payoutOf = (svc: Pick<TestService, 'db'>, payoutId: string) => svc.db('payouts').where({ id: payoutId }).first();
export const saleTransfers = (svc: Pick<TestService, 'db'>, orderId: string) => svc.db('transfers').where({ pending_id: `sell-${orderId}` }).select('status');
export const customerAccount = (svc: Pick<TestService, 'db'>, customerId: number) => svc.db('accounts').where({ customer_id: customerId }).first();

export const waitForOrderStatus = (svc: Pick<TestService, 'db'>, orderId: string, statuses: string[], what: string) =>
  waitFor(async () => {
    const o = await orderOf(svc, orderId);
    return statuses.includes(o.status) && o;
  }, what);
