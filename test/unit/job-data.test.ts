import { randomUUID } from 'node:crypto';
import { withJobData } from '../../src/jobs/job-data';
import type { Logger } from '../../src/lib/logger';

/** Each queue's job data is checked before a use case sees it; a job that does not fit is logged and dropped. */
describe('job data', () => {
  const logged: Array<{ fields: Record<string, unknown>; msg: string }> = [];
  const log = { error: (fields: Record<string, unknown>, msg: string) => logged.push({ fields, msg }) } as unknown as Logger;
  const job = (data: unknown) => ({ data, timestamp: Date.now(), attemptsMade: 0, opts: { attempts: 3 } });
  beforeEach(() => (logged.length = 0));

  test('when a buy job carries an order id, then the use case gets it', async () => {
    const seen: string[] = [];
    const orderId = randomUUID();
    await withJobData('buy', log, async (d) => void seen.push(d.orderId))(job({ orderId }));
    expect(seen).toEqual([orderId]);
    expect(logged).toEqual([]);
  });

  test.each([
    ['buy', { orderId: 'not-a-uuid' }],
    ['buy', {}],
    ['sms', { smsId: '12' }],
    ['payout', { payoutId: "GP'; drop table payouts" }],
    ['payout-status', { payoutId: 'GPABCDEFGHJKLMNPQR', check: 0 }],
    ['ops-query', { checkoutRequestId: '' }],
  ] as const)('when a %s job carries %p, then it is dropped with an error log and the use case never runs', async (queue, data) => {
    let ran = false;
    const result = await withJobData(queue, log, async () => {
      ran = true;
    })(job(data));
    expect(ran).toBe(false);
    expect(result).toBeUndefined();
    expect(logged).toEqual([{ fields: expect.objectContaining({ queue }), msg: 'job dropped: its data does not fit the queue' }]);
  });
});
