import type { Knex } from 'knex';
import type { Db } from '../db/knex';
import { Batcher } from '../lib/batcher';
import type { Logger } from '../lib/logger';
import type { Queues } from './backends';
import type { QueueKey } from './queues';

/** An outbox row inserted by the current transaction, with what its relay needs. */
export interface FreshRow {
  id: number;
  queue: QueueKey;
  jobId: string;
  payload: Record<string, unknown>;
  delayMs?: number;
}

interface Written {
  fresh: FreshRow[];
  existing: number[];
}

/**
 * The queue only carries work the database already decided on. A use case writes an outbox row in
 * its own transaction; the relay hands rows to BullMQ (with a deterministic jobId, so a row relayed
 * twice is still one job) and marks them. A Redis outage delays work; it never loses any.
 */
export class Outbox {
  /**
   * Marks relayed rows, the ids of concurrent relays together in one UPDATE (group commit: each mark is an
   * autocommit write and its WAL flush; 64 confirms at once paid 64 of them). All or nothing: one UPDATE.
   */
  private readonly marks: Batcher<number, void>;

  constructor(
    private readonly db: Db,
    private readonly queues: Queues,
    private readonly log: Logger,
  ) {
    this.marks = new Batcher<number, void>(async (ids) => {
      await this.db('outbox').whereIn('id', [...new Set(ids)]).whereNull('relayed_at').update({ relayed_at: this.db.fn.now() });
      return ids.map(() => undefined);
    }, { maxBatch: 1000 });
  }

  /**
   * The rows written inside each open `transaction()`, relayed once it commits: those this transaction inserted
   * (`fresh`: their job is known, so the relay needs no read), and rows that existed already (`existing`: relayed
   * through `relay`, which skips them if they were relayed before).
   */
  private readonly written = new WeakMap<Knex.Transaction, Written>();

  /**
   * Commit, then relay: runs `fn` in one database transaction, and every row `write` adds inside it is
   * handed to the queue right after COMMIT (none if it rolls back). Use cases never carry outbox ids.
   * A row written in a savepoint of it (trx.transaction) is not seen here: the sweep relays it.
   */
  async transaction<T>(fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    const { result, relayed } = await this.transactionRelayingAfter(fn);
    await relayed;
    return result;
  }

  /**
   * `transaction`, answering as soon as it committed: `relayed` settles once its rows were handed to the queue (it
   * never rejects; failures are left to the sweep). For a caller that may start its next transaction meanwhile
   * (the STK settlement batcher) while its own callers still wait for the relay.
   */
  async transactionRelayingAfter<T>(fn: (trx: Knex.Transaction) => Promise<T>): Promise<{ result: T; relayed: Promise<void> }> {
    const written: Written = { fresh: [], existing: [] };
    const result = await this.db.transaction(async (trx) => {
      this.written.set(trx, written);
      return fn(trx);
    });
    return { result, relayed: Promise.all([this.relayCommitted(written.fresh), this.relaySoon(written.existing)]).then(() => undefined) };
  }

  /** `delayMs`: the job runs no earlier than that long after this commit (the queue holds it as a delayed job). */
  async write(trx: Knex.Transaction, queue: QueueKey, jobId: string, payload: Record<string, unknown>, opts: { delayMs?: number } = {}): Promise<number> {
    const runAt = opts.delayMs ? trx.raw(`now() + ? * interval '1 millisecond'`, [opts.delayMs]) : null;
    const [row] = await trx('outbox').insert({ queue, job_id: jobId, payload, run_at: runAt }).onConflict('job_id').ignore().returning('id');
    const id: number = row ? row.id : (await trx('outbox').where({ job_id: jobId }).first('id')).id;
    if (row) this.written.get(trx)?.fresh.push({ id, queue, jobId, payload, ...(opts.delayMs ? { delayMs: opts.delayMs } : {}) });
    else this.written.get(trx)?.existing.push(id);
    return id;
  }

  /**
   * `write` for many rows of one queue in ONE statement (no delay): the same rows and job ids, recorded for the relay
   * after COMMIT like `write`'s. Returns the outbox ids in input order (an existing job id answers its row's id).
   */
  async writeMany(trx: Knex.Transaction, queue: QueueKey, jobs: ReadonlyArray<{ jobId: string; payload: Record<string, unknown> }>): Promise<number[]> {
    if (jobs.length === 0) return [];
    const { rows } = await trx.raw(
      `WITH v AS (SELECT * FROM unnest(?::text[], ?::jsonb[]) WITH ORDINALITY AS v(job_id, payload, n)),
       ins AS (INSERT INTO outbox (queue, job_id, payload) SELECT ?, job_id, payload FROM v ORDER BY n
               ON CONFLICT (job_id) DO NOTHING RETURNING id, job_id)
       SELECT coalesce(ins.id, o.id) AS id, ins.id IS NOT NULL AS fresh FROM v LEFT JOIN ins ON ins.job_id = v.job_id
         LEFT JOIN outbox o ON o.job_id = v.job_id ORDER BY v.n`,
      [jobs.map((j) => j.jobId), jobs.map((j) => JSON.stringify(j.payload)), queue],
    );
    const out = rows as Array<{ id: number; fresh: boolean }>;
    const written = this.written.get(trx);
    out.forEach((r, i) => {
      if (r.fresh) written?.fresh.push({ id: r.id, queue, jobId: jobs[i]!.jobId, payload: jobs[i]!.payload });
      else written?.existing.push(r.id);
    });
    return out.map((r) => r.id);
  }

  /**
   * The fast path for rows the caller inserted in a transaction that has COMMITTED, and whose jobs it holds: add
   * the jobs, then mark the rows in ONE statement shared with the concurrent relays (no transaction, no read, no row
   * lock). Safe because the job id makes an add idempotent: if the sweep relays the same row meanwhile, the queue
   * keeps one job (completed jobs are kept a day, queues.ts); if this process dies between the add and the mark, the
   * sweep adds it again, still one job. Never for a row that existed before the transaction (it may have been
   * relayed and its job long gone: that goes through `relay`, which skips relayed rows). A failure is logged and left
   * to the sweep.
   */
  async relayCommitted(rows: readonly FreshRow[], timeoutMs = 2000): Promise<void> {
    if (rows.length === 0) return;
    await this.withTimeout(async () => {
      await Promise.all(rows.map((r) => this.queues[r.queue].add(r.queue, r.payload, { jobId: r.jobId, ...(r.delayMs ? { delay: r.delayMs } : {}) })));
      await Promise.all(rows.map((r) => this.marks.submit(r.id)));
    }, timeoutMs, rows.map((r) => r.id));
  }

  /** Relay the given rows now (the fast path after a commit). Failure is logged: the sweep retries. */
  async relaySoon(ids: number[], timeoutMs = 2000): Promise<void> {
    if (ids.length === 0) return;
    await this.withTimeout(() => this.relay(ids), timeoutMs, ids);
  }

  private async withTimeout(relay: () => Promise<unknown>, timeoutMs: number, ids: number[]): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        relay(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('relay timed out')), timeoutMs);
        }),
      ]);
    } catch (err) {
      this.log.warn({ err: (err as Error).message, ids }, 'outbox relay deferred to the sweep');
    } finally {
      clearTimeout(timer);
    }
  }

  /** Relay unrelayed rows (all of them, or the given ones). Safe to run from many processes at once. */
  async relay(ids?: number[], batch = 200): Promise<number> {
    return this.db.transaction(async (trx) => {
      const q = trx('outbox')
        .select('id', 'queue', 'job_id', 'payload', trx.raw(`greatest(0, ceil(extract(epoch from (run_at - now())) * 1000))::bigint AS delay_ms`))
        .whereNull('relayed_at')
        .orderBy('id')
        .limit(batch)
        .forUpdate()
        .skipLocked();
      if (ids) q.whereIn('id', ids);
      const rows: Array<{ id: number; queue: QueueKey; job_id: string; payload: Record<string, unknown>; delay_ms: number | null }> = await q;
      if (rows.length === 0) return 0;
      // All at once: on one Redis connection the adds go out back to back (one round trip for the lot, not one each;
      // a settlement batch relays dozens). Each job id is deterministic, so a row relayed twice is still one job.
      await Promise.all(rows.map((row) => this.queues[row.queue].add(row.queue, row.payload, { jobId: row.job_id, ...(row.delay_ms ? { delay: row.delay_ms } : {}) })));
      await trx('outbox').whereIn('id', rows.map((r) => r.id)).update({ relayed_at: trx.fn.now() });
      return rows.length;
    });
  }
}
