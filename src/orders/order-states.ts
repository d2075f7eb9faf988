/**
 * THE home of order states: every status, the named sets the code asks about, and the table of moves
 * that transitionOrder enforces. A move not in the table is a bug: it throws instead of writing.
 *
 *   buy:   created -> reserved -> stk_requested -> stk_sent -> paid | failed | expired | review
 *   sell:  reserved -> payout_requested -> payout_sent -> paid | failed | review  (reserved -> review: gold already posted)
 *   late:  failed | expired -> paid | review        (a payment after we gave up: credited, or held)
 *   held:  paid -> review                          (paid while its reservation was already released and the pool is short)
 *   ops:   review -> paid | refunded | closed | failed | review
 * `paid`, `refunded` and `closed` are final for settlement: no callback, Query, Result or expiry moves
 * them (src/payments/settle-*.ts check before they call transitionOrder).
 */
export const ORDER_STATUSES = [
  'created',
  'reserved',
  'stk_requested',
  'stk_sent',
  // sell: the B2C request is being sent / Daraja accepted it and its result is awaited
  'payout_requested',
  'payout_sent',
  'paid',
  'failed',
  'expired',
  'review',
  // Operator decisions (review resolution): final, no callback, Query, Result or expiry moves them.
  'refunded',
  'closed',
] as const;

export type OrderStatus = (typeof ORDER_STATUSES)[number];

/** Buys whose reservation is open and that M-Pesa may still charge: one per phone at a time. */
export const OPEN_BUY_STATUSES: readonly OrderStatus[] = ['created', 'reserved', 'stk_requested', 'stk_sent'];
/** Buys whose STK push went (or may have gone) out: a callback, Query or expiry settles them. */
export const AWAITING_STK_RESULT: readonly OrderStatus[] = ['stk_requested', 'stk_sent'];
/** Sales whose payout M-Pesa may still settle: being requested, or accepted and awaiting a result. */
export const AWAITING_PAYOUT: readonly OrderStatus[] = ['payout_requested', 'payout_sent'];
/** Buys that no accepted push exists for yet: their job may have been lost before it pushed. */
export const BEFORE_STK_ACCEPTED: readonly OrderStatus[] = ['created', 'reserved', 'stk_requested'];
/** Sales that Daraja has not accepted a payout for yet: their job may have been lost before it sent. */
export const BEFORE_PAYOUT_ACCEPTED: readonly OrderStatus[] = ['reserved', 'payout_requested'];
/** Orders not yet final, buy or sell, the review queue included (the orders_open gauge). */
export const OPEN_ORDER_STATUSES: readonly OrderStatus[] = [...OPEN_BUY_STATUSES, ...AWAITING_PAYOUT, 'review'];
/** Orders that took no money, or gave it back: they do not count towards a daily limit. */
export const NOT_COUNTED_FOR_LIMITS: readonly OrderStatus[] = ['failed', 'expired', 'refunded', 'closed'];

/** from -> the statuses it may move to. */
export const ORDER_MOVES: Readonly<Record<OrderStatus, readonly OrderStatus[]>> = {
  created: ['reserved', 'failed'],
  reserved: ['stk_requested', 'payout_requested', 'failed', 'review'],
  stk_requested: ['stk_sent', 'paid', 'failed', 'expired', 'review'],
  stk_sent: ['paid', 'failed', 'expired', 'review'],
  payout_requested: ['payout_sent', 'paid', 'failed', 'review'],
  payout_sent: ['paid', 'failed', 'review'],
  paid: ['review'],
  failed: ['paid', 'review'],
  expired: ['paid', 'review'],
  review: ['paid', 'refunded', 'closed', 'failed', 'review'],
  refunded: [],
  closed: [],
};

export function canMove(from: OrderStatus, to: OrderStatus): boolean {
  return ORDER_MOVES[from].includes(to);
}

/** Thrown for a move the table does not allow: a bug in the caller, never a race (races are 0 rows). */
export class IllegalOrderMove extends Error {
  constructor(readonly from: readonly OrderStatus[], readonly to: OrderStatus) {
    super(`order move not allowed: ${from.filter((f) => !canMove(f, to)).join(', ')} -> ${to}`);
    this.name = 'IllegalOrderMove';
  }
}
