import { isConnectionLost } from '../../db/connection-errors';
import { Batcher } from '../../lib/batcher';
import type { StkResult } from '../../vendors/daraja-callbacks';
import { type CallbackDeps, type CallbackOutcome, settleStkCallback } from './settle-stk-callback';
import { type BatchAnswer, type CallbackItem, settlePaidBatch } from './settle-stk-batch';

/**
 * Group commit for STK callbacks (src/lib/batcher.ts): callbacks that arrive together are settled together, at
 * most `maxBatch` per transaction, so under load one COMMIT (and one pool-row update) serves many callbacks, and
 * alone a callback is settled one by one as before. Each caller's promise resolves only after the transaction
 * holding its callback committed: the route acknowledges (200) then, never before.
 *  - a batch that throws has rolled back: the Batcher settles each of its callbacks one by one (`run([item])`),
 *    so one poison callback fails only its own request (503; reconciliation asks STK Query about it later);
 *  - a callback the batch does not take (settle-stk-batch.ts says which) is settled one by one after the batch
 *    committed, outside the batcher, so it neither waits for nor holds up the next batch.
 */
export class StkCallbackSettler {
  private readonly batcher: Batcher<CallbackItem, Settled>;

  constructor(private readonly deps: CallbackDeps, maxBatch: number) {
    this.batcher = new Batcher<CallbackItem, Settled>(
      (items) => settleCommitted(deps, items),
      {
        maxBatch,
        onBatchError: (err, size) => deps.log.warn({ err: (err as Error).message, size }, 'stk settlement batch rolled back: its callbacks are settled one by one'),
      },
    );
  }

  /** Settles one callback; resolves after its transaction committed, rejects if it could not be recorded. */
  async settle(result: StkResult, rawPayload: unknown): Promise<CallbackOutcome> {
    const { answer, relayed } = await this.batcher.submit({ result, rawPayload });
    if (answer === 'deferred') return settleAlone(this.deps, { result, rawPayload });
    // Committed; the reply also waits for the relay of its SMS job, as one by one does (the next batch does not).
    await relayed;
    return answer;
  }
}

/**
 * What the batcher runs for the callbacks that arrived together: one alone is settled one by one, exactly as
 * before the batcher; several go to settlePaidBatch (all or nothing; `deferred` ones are the caller's to settle
 * one by one after it).
 */
export async function settleTogether(deps: CallbackDeps, items: readonly CallbackItem[]): Promise<BatchAnswer[]> {
  const settled = await settleCommitted(deps, items);
  await Promise.all(settled.map((s) => s.relayed)); // as a caller of the batcher sees it: relayed before answered
  return settled.map((s) => s.answer);
}

interface Settled {
  answer: BatchAnswer;
  relayed: Promise<void>;
}

async function settleCommitted(deps: CallbackDeps, items: readonly CallbackItem[]): Promise<Settled[]> {
  if (items.length === 1) return [{ answer: await settleAlone(deps, items[0]!), relayed: Promise.resolve() }];
  const { answers, relayed } = await settlePaidBatch(deps, items);
  return answers.map((answer) => ({ answer, relayed }));
}

/**
 * One by one (settleStkCallback), tried once more on a fresh connection when the connection was lost: after a
 * batch's connection died (in its COMMIT, say), the pool can hand that dead connection to the first of the
 * callbacks now settled one by one. Safe to repeat: a settlement that did commit finds itself done (`duplicate`).
 */
async function settleAlone(deps: CallbackDeps, item: CallbackItem): Promise<CallbackOutcome> {
  try {
    return await settleStkCallback(deps, item.result, item.rawPayload);
  } catch (err) {
    if (!isConnectionLost(err)) throw err;
    deps.log.warn({ err: (err as Error).message, checkoutRequestId: item.result.checkoutRequestId }, 'stk callback: database connection lost, trying once more');
    return settleStkCallback(deps, item.result, item.rawPayload);
  }
}
