import { randomUUID } from 'node:crypto';
import type { Msisdn } from '../../src/lib/msisdn';
import { findOrCreateCustomer } from '../../src/orders/customers';
import { canMove, IllegalOrderMove, ORDER_MOVES, ORDER_STATUSES, type OrderStatus } from '../../src/orders/order-states';
import { transitionOrder } from '../../src/orders/orders';
import { startTestService, type TestService } from '../support/harness';

/** The order state table (src/orders/order-states.ts) is what transitionOrder enforces, against the real orders table. */
describe('order states', () => {
  let svc: TestService;
  let customerId: number;
  beforeAll(async () => {
    svc = await startTestService();
    customerId = (await findOrCreateCustomer(svc.db, '254711000901' as Msisdn)).id;
  });
  afterAll(() => svc.close());

  let n = 0;
  async function orderIn(status: OrderStatus) {
    const id = randomUUID();
    // A number of its own: at most one open buy per phone.
    const msisdn = `2547110010${String(++n).padStart(2, '0')}`;
    await svc.db('orders').insert({
      id, reference: `GLD${id.slice(0, 8).toUpperCase()}`, kind: 'buy', customer_id: customerId, msisdn,
      amount_cents: 10_000, price_cents_per_gram: 850_000, grams_ug: 11_764, status, source_key: `test:${id}`,
    });
    return id;
  }
  const statusOf = async (id: string) => (await svc.db('orders').where({ id }).first('status')).status;

  test('every status has a row in the table and every move leads to a known status; final statuses lead nowhere', () => {
    expect(Object.keys(ORDER_MOVES).sort()).toEqual([...ORDER_STATUSES].sort());
    for (const targets of Object.values(ORDER_MOVES)) for (const t of targets) expect(ORDER_STATUSES).toContain(t);
    expect(ORDER_MOVES.refunded).toEqual([]);
    expect(ORDER_MOVES.closed).toEqual([]);
  });

  test.each([
    ['paid', 'failed'],
    ['refunded', 'paid'],
    ['closed', 'review'],
    ['expired', 'stk_sent'],
    ['created', 'paid'],
  ] as Array<[OrderStatus, OrderStatus]>)('when code asks to move %s -> %s (not in the table), then transitionOrder throws and the row is unchanged', async (from, to) => {
    expect(canMove(from, to)).toBe(false);
    const id = await orderIn(from);
    await expect(transitionOrder(svc.db, id, [from], to)).rejects.toBeInstanceOf(IllegalOrderMove);
    // One disallowed source among allowed ones is refused just the same.
    await expect(transitionOrder(svc.db, id, ['stk_sent', from], to)).rejects.toThrow(/order move not allowed/);
    expect(await statusOf(id)).toBe(from);
  });

  test('when a move is in the table, then it happens once: a second caller from the old status finds 0 rows', async () => {
    const id = await orderIn('stk_sent');
    expect(await transitionOrder(svc.db, id, ['stk_requested', 'stk_sent'], 'paid')).toBe(true);
    expect(await transitionOrder(svc.db, id, ['stk_requested', 'stk_sent'], 'paid')).toBe(false);
    expect(await statusOf(id)).toBe('paid');
  });
});
