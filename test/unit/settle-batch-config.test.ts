import { ConfigError, loadConfig } from '../../src/config';
import { baseEnv } from '../support/harness';

const problemsOf = (env: Record<string, string>) => {
  try {
    loadConfig(env);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems.map((p: string) => p.split(':')[0]);
  }
};

describe('STK_SETTLE_BATCH_MAX', () => {
  test('unset, paid callbacks are settled at most 64 per transaction; 1 settles each on its own', () => {
    expect(loadConfig(baseEnv()).settlement).toEqual({ stkBatchMax: 64 });
    expect(loadConfig({ ...baseEnv(), STK_SETTLE_BATCH_MAX: '1' }).settlement).toEqual({ stkBatchMax: 1 });
  });

  test.each(['0', '-5', '2.5', '1001', 'many'])('%s is refused at start-up', (value) => {
    expect(problemsOf({ ...baseEnv(), STK_SETTLE_BATCH_MAX: value })).toEqual(['STK_SETTLE_BATCH_MAX']);
  });
});
