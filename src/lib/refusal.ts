/**
 * A refusal decided inside a transaction: thrown to roll it back, then returned as the use case's
 * answer by `refusable`. One way for every use case to say "no" with nothing recorded; a refusal never
 * escapes as an exception.
 */
export class Refusal<R> extends Error {
  constructor(readonly result: R) {
    super('refused');
    this.name = 'Refusal';
  }
}

/** Runs `fn`; a Refusal thrown inside (its transaction rolled back) becomes the answer. */
export async function refusable<T, R>(fn: () => Promise<T>): Promise<T | R> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof Refusal) return err.result as R;
    throw err;
  }
}
