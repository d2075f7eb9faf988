import { Batcher } from '../../src/lib/batcher';

/** The group-commit Batcher (src/lib/batcher.ts): batches grow with the load, at most maxConcurrent run at once. */
const turn = () => new Promise((r) => setImmediate(r));

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { opened, open };
}

describe('Batcher', () => {
  test('items submitted together go as one batch; items arriving while it runs go as the next one', async () => {
    const seen: number[][] = [];
    const first = gate();
    const b = new Batcher<number, number>(async (items) => {
      seen.push(items);
      if (seen.length === 1) await first.opened;
      return items.map((i) => i * 10);
    }, { maxBatch: 10 });
    const a = [b.submit(1), b.submit(2), b.submit(3)];
    await turn();
    const later = [b.submit(4), b.submit(5)];
    await turn();
    expect(seen).toEqual([[1, 2, 3]]); // the second waits: one batch at a time by default
    first.open();
    expect(await Promise.all([...a, ...later])).toEqual([10, 20, 30, 40, 50]);
    expect(seen).toEqual([[1, 2, 3], [4, 5]]);
  });

  test('with maxConcurrent 2, a second batch starts while the first still runs, and never a third', async () => {
    let running = 0;
    let most = 0;
    const gates = [gate(), gate(), gate()];
    let n = 0;
    const b = new Batcher<number, number>(async (items) => {
      const g = gates[n++]!;
      running++;
      most = Math.max(most, running);
      await g.opened;
      running--;
      return items;
    }, { maxBatch: 2, maxConcurrent: 2 });
    const all = [1, 2, 3, 4, 5].map((i) => b.submit(i));
    await turn();
    expect(running).toBe(2);
    expect(b.waiting).toBe(1);
    gates[0]!.open();
    gates[1]!.open();
    gates[2]!.open();
    expect(await Promise.all(all)).toEqual([1, 2, 3, 4, 5]);
    expect(most).toBe(2);
  });

  test('a batch that throws is run again one item at a time: only the poison item fails', async () => {
    const errors: number[] = [];
    const b = new Batcher<number, number>(async (items) => {
      if (items.includes(13)) throw new Error('poison');
      return items;
    }, { maxBatch: 10, maxConcurrent: 2, onBatchError: (_e, size) => errors.push(size) });
    const results = await Promise.allSettled([1, 13, 3].map((i) => b.submit(i)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(errors).toEqual([3]);
  });
});
