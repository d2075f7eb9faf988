import { Batcher } from '../../src/lib/batcher';

/** The group commit every batched path uses: who gets batched with whom, and what a failing batch does. */
describe('Batcher', () => {
  test('concurrent callers share a batch, each gets its own answer, and no batch exceeds maxBatch', async () => {
    const batches: number[][] = [];
    const b = new Batcher<number, number>(async (items) => {
      batches.push(items);
      return items.map((x) => x * 10);
    }, { maxBatch: 4 });
    const answers = await Promise.all([1, 2, 3, 4, 5, 6, 7, 8, 9].map((x) => b.submit(x)));
    expect(answers).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90]);
    expect(batches).toEqual([[1, 2, 3, 4], [5, 6, 7, 8], [9]]);
  });

  test('items that arrive while a batch runs go together as the next batch', async () => {
    const batches: string[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const b = new Batcher<string, string>(async (items) => {
      batches.push(items);
      if (batches.length === 1) await gate;
      return items;
    }, { maxBatch: 100 });
    const first = b.submit('a');
    await new Promise((r) => setImmediate(r));
    const later = ['b', 'c', 'd'].map((x) => b.submit(x));
    expect(b.waiting).toBe(3);
    release();
    await Promise.all([first, ...later]);
    expect(batches).toEqual([['a'], ['b', 'c', 'd']]);
  });

  test('a batch that throws is retried item by item: only the poison item fails, and the error is reported once', async () => {
    const runs: string[][] = [];
    const errors: number[] = [];
    const b = new Batcher<string, string>(async (items) => {
      runs.push(items);
      if (items.includes('poison')) throw new Error('bad item');
      return items.map((x) => x.toUpperCase());
    }, { maxBatch: 10, onBatchError: (_err, size) => errors.push(size) });
    const results = await Promise.allSettled(['a', 'poison', 'c'].map((x) => b.submit(x)));
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual(['A', 'bad item', 'C']);
    expect(runs).toEqual([['a', 'poison', 'c'], ['a'], ['poison'], ['c']]);
    expect(errors).toEqual([3]);
  });

  test('a batch answering the wrong number of results fails every caller: never mis-assigned, never run again (it may have committed)', async () => {
    let runs = 0;
    const b = new Batcher<number, number>(async () => {
      runs++;
      return [1];
    }, { maxBatch: 10 });
    const results = await Promise.allSettled([1, 2].map((x) => b.submit(x)));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(runs).toBe(1);
  });
});
