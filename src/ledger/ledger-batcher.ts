import type { Db } from '../db/knex';
import { Batcher } from '../lib/batcher';
import { applyTransfersOn, type CreateOutcome, type NewTransfer, type PgConnection, type Resolution, type ResolveOutcome } from './ledger';

type Op = { reserve: NewTransfer } | { resolve: { pendingId: string; resolution: Resolution } };

/**
 * Concurrent callers' reservations and resolutions, applied together: one statement (ledger_apply) and one
 * durable commit per batch. TigerBeetle pays the durability cost once per batch of up to 8,190 transfers; this
 * is the same idea on Postgres. Each call answers after the COMMIT holding it. Overdraft is decided per item, so
 * a reservation the pool cannot cover answers `insufficient` without touching its neighbours; a batch that
 * throws is retried one item at a time (src/lib/batcher.ts).
 *
 * Within a batch every reservation is applied before every resolution, whatever order the callers came in. So a
 * reservation never counts on gold that a void in the same batch gives back: it may answer `insufficient` where the
 * callers' order would have fitted it (never the reverse, so never an overdraft). The service's batches
 * (reserve-batch.ts, settle-stk-batch.ts) are single-verb and do not use this class; the ledger benchmark does.
 */
export class LedgerBatcher {
  private readonly ops: Batcher<Op, CreateOutcome | ResolveOutcome>;

  constructor(db: Db, maxBatch = 256) {
    this.ops = new Batcher(async (items) => {
      const reservations = items.flatMap((o) => ('reserve' in o ? [o.reserve] : []));
      const resolutions = items.flatMap((o) => ('resolve' in o ? [o.resolve] : []));
      // One connection per batch, straight from the pool: the statement commits on its own (autocommit).
      const conn = (await db.client.acquireConnection()) as PgConnection;
      let applied: Awaited<ReturnType<typeof applyTransfersOn>>;
      try {
        applied = await applyTransfersOn(conn, reservations, resolutions);
      } finally {
        await db.client.releaseConnection(conn);
      }
      const { created, resolved } = applied;
      let c = 0;
      let r = 0;
      return items.map((o) => ('reserve' in o ? created[c++]! : resolved[r++]!));
    }, { maxBatch });
  }

  /** A pending transfer (a reservation), committed when this resolves. */
  reserve(t: NewTransfer): Promise<CreateOutcome> {
    return this.ops.submit({ reserve: t }) as Promise<CreateOutcome>;
  }

  /** Post, void or expire a reservation, committed when this resolves. */
  resolve(pendingId: string, resolution: Resolution): Promise<ResolveOutcome> {
    return this.ops.submit({ resolve: { pendingId, resolution } }) as Promise<ResolveOutcome>;
  }
}
