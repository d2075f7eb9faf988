import nock from 'nock';
import type { Db } from '../../src/db/knex';
import { DARAJA_HOST } from './harness';

/** What STK Query answers: a final result (ResultCode as a string, no receipt, no amount) or "being processed". */
export type QueryAnswer = { resultCode: number; resultDesc?: string } | 'pending' | 'error';

export interface CapturedQuery {
  checkoutRequestId: string;
}

/**
 * Answers STK Queries from a table keyed by CheckoutRequestID (unknown ids: "being processed"), and
 * records each one asked. `times` bounds how many it answers.
 */
export function mockStkQuery(answers: Map<string, QueryAnswer> | ((checkoutRequestId: string) => QueryAnswer), captured: CapturedQuery[] = [], times = 1, delayMs = 0) {
  const answerFor = typeof answers === 'function' ? answers : (id: string) => answers.get(id) ?? 'pending';
  return nock(DARAJA_HOST)
    .post('/mpesa/stkpushquery/v1/query')
    .times(times)
    .delay(delayMs)
    .reply((_uri, body) => {
      const id = String((body as Record<string, unknown>).CheckoutRequestID);
      captured.push({ checkoutRequestId: id });
      const answer = answerFor(id);
      if (answer === 'pending') return [500, { requestId: 'q', errorCode: '500.001.1001', errorMessage: 'The transaction is being processed' }];
      if (answer === 'error') return [503, '<html><body>Service Unavailable</body></html>'];
      return [200, {
        ResponseCode: '0',
        ResponseDescription: 'The service request has been accepted successsfully',
        MerchantRequestID: `mr-${id}`,
        CheckoutRequestID: id,
        ResultCode: String(answer.resultCode),
        ResultDesc: answer.resultDesc ?? (answer.resultCode === 0 ? 'The service request is processed successfully.' : 'Request cancelled by user'),
      }];
    });
}

/** Moves an order's clock back, as if it had been placed and pushed `seconds` ago. */
export async function backdate(db: Db, orderId: string, seconds: number) {
  const ago = db.raw(`now() - make_interval(secs => ?)`, [seconds]);
  await db('orders').where({ id: orderId }).update({ created_at: ago });
  await db('stk_payments').where({ order_id: orderId }).update({ created_at: ago });
  await db('stk_payments').where({ order_id: orderId }).whereNotNull('accepted_at').update({ accepted_at: ago });
  await db('stk_payments').where({ order_id: orderId }).whereNotNull('push_started_at').update({ push_started_at: ago });
}
