/**
 * Group commit, DataLoader-style: callers submit one item each and get one answer each, while the
 * items are handed to `run` together. The first item waits one turn of the event loop (setImmediate) so
 * that concurrent callers join it; while a batch is running, new items queue and go as the next batch
 * the moment it ends. So under load a batch grows with the load (up to `maxBatch`), and alone an item
 * costs one event-loop turn.
 *
 * A batch that throws is run again one item at a time (`run([item])`), so one poison item fails only
 * its own caller. `run` must therefore be all-or-nothing (one transaction): after a throw, nothing of
 * the batch may have happened.
 */
export interface BatcherOptions {
  maxBatch: number;
  /** Told when a batch failed and its items were retried one by one (for a log line or a metric). */
  onBatchError?: (err: unknown, size: number) => void;
}

interface Waiting<I, O> {
  item: I;
  resolve: (out: O) => void;
  reject: (err: unknown) => void;
}

export class Batcher<I, O> {
  private queue: Array<Waiting<I, O>> = [];
  private running = false;

  constructor(
    private readonly run: (items: I[]) => Promise<O[]>,
    private readonly opts: BatcherOptions,
  ) {
    if (!Number.isInteger(opts.maxBatch) || opts.maxBatch < 1) throw new RangeError('maxBatch must be a positive integer');
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.running) {
        this.running = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  /** Items waiting for a batch (not counting the one running). */
  get waiting(): number {
    return this.queue.length;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.opts.maxBatch);
      await this.runBatch(batch);
    }
    this.running = false;
  }

  private async runBatch(batch: Array<Waiting<I, O>>): Promise<void> {
    let out: O[];
    try {
      out = await this.run(batch.map((w) => w.item));
      if (out.length !== batch.length) throw new Error(`batch of ${batch.length} answered ${out.length} results`);
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
      this.opts.onBatchError?.(err, batch.length);
      for (const w of batch) await this.runBatch([w]);
      return;
    }
    batch.forEach((w, i) => w.resolve(out[i]!));
  }
}
