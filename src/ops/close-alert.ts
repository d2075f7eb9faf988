import type { Db } from '../db/knex';

export type CloseAlertResult =
  | { ok: true; id: number; kind: string; resolution: string }
  | { ok: false; error: 'not_found' }
  /** Closed already (by an operator, an order's resolution or M-Pesa's answer): that decision stands. */
  | { ok: false; error: 'already_closed'; resolution: string | null }
  /** Its order waits in review: POST /ops/orders/:id/resolve decides it, and closes the alert with it. */
  | { ok: false; error: 'order_in_review'; orderId: string }
  /** Trading is paused on it: POST /ops/prices/accept resumes trading and closes it. */
  | { ok: false; error: 'use_price_accept' };

/**
 * An operator closes an alert that was settled outside the service (money recovered or refunded by hand
 * on the M-Pesa portal, an account fixed in Africa's Talking's dashboard): one conditional update, so
 * of two operators closing at once one wins, and the resolution names who and why. Alerts that an
 * action in the service settles are closed by that action, never here.
 */
export async function closeAlert(db: Db, req: { id: number; note: string; operator: string }): Promise<CloseAlertResult> {
  return db.transaction(async (trx) => {
    const alert = await trx('ops_alerts').where('id', req.id).forUpdate().first('kind', 'order_id', 'resolved_at', 'resolution');
    if (!alert) return { ok: false, error: 'not_found' } as const;
    if (alert.resolved_at) return { ok: false, error: 'already_closed', resolution: alert.resolution } as const;
    // Read after the alert's lock, in its own statement: one joined to the locked read would show the order as it
    // was before the wait for the lock.
    const order = alert.order_id ? await trx('orders').where('id', alert.order_id).first('status') : undefined;
    if (alert.order_id && order?.status === 'review') return { ok: false, error: 'order_in_review', orderId: alert.order_id } as const;
    if (alert.kind === 'price_jump') return { ok: false, error: 'use_price_accept' } as const;
    const resolution = `closed by ${req.operator}: ${req.note}`.slice(0, 1000);
    await trx('ops_alerts').where({ id: req.id }).whereNull('resolved_at').update({ resolved_at: trx.fn.now(), resolution });
    return { ok: true, id: req.id, kind: alert.kind, resolution } as const;
  });
}
