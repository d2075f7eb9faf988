import type { Db } from '../db/knex';
import { Batcher } from '../lib/batcher';
import { createTransfers, resolvePendingTransfers, type CreateOutcome, type NewTransfer, type Resolution, type ResolveOutcome } from './ledger';

/**
 * Concurrent callers' reservations and resolutions, applied N per statement and commit (TigerBeetle pays the
 * durability cost once per batch of up to 8,190 transfers; this is the same idea on Postgres). Each call answers
 * after the COMMIT of the statement holding it. Overdraft is decided per item, so a reservation the pool cannot
 * cover answers `insufficient` without touching its neighbours.
 */
export class LedgerBatcher {
  private readonly reservations: Batcher<NewTransfer, CreateOutcome>;
  private readonly resolutions: Batcher<{ pendingId: string; resolution: Resolution }, ResolveOutcome>;

  constructor(db: Db, maxBatch = 256) {
    this.reservations = new Batcher((items) => createTransfers(db, items, 'pending'), { maxBatch });
    this.resolutions = new Batcher((items) => resolvePendingTransfers(db, items), { maxBatch });
  }

  /** Pending transfer (a reservation), committed when this resolves. */
  reserve(t: NewTransfer): Promise<CreateOutcome> {
    return this.reservations.submit(t);
  }

  /** Post, void or expire a reservation, committed when this resolves. */
  resolve(pendingId: string, resolution: Resolution): Promise<ResolveOutcome> {
    return this.resolutions.submit({ pendingId, resolution });
  }
}
