import { ConfigError, loadConfig } from '../../src/config';
import { baseEnv } from '../support/harness';

const problemsOf = (env: Record<string, string>) => {
  try {
    loadConfig(env);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems;
  }
};

describe('reconciliation settings', () => {
  test('unset, they default to asking after 3 minutes and giving up after 15', () => {
    expect(loadConfig(baseEnv()).reconcile).toEqual({ intervalMs: 30_000, afterSeconds: 180, retrySeconds: 30, giveUpSeconds: 900, matchWindowSeconds: 86_400 });
    expect(loadConfig(baseEnv()).jobs.lockDurationMs).toBe(30_000);
  });

  test('giving up no later than the first question is refused', () => {
    expect(problemsOf({ ...baseEnv(), RECONCILE_AFTER_SECONDS: '300', RECONCILE_GIVE_UP_SECONDS: '300' })).toEqual([
      'RECONCILE_GIVE_UP_SECONDS: must be greater than RECONCILE_AFTER_SECONDS',
    ]);
  });

  test('a match window shorter than the give-up limit is refused (a callback for a live order could not be matched)', () => {
    expect(problemsOf({ ...baseEnv(), RECONCILE_GIVE_UP_SECONDS: '900', RECONCILE_MATCH_WINDOW_SECONDS: '600' })).toEqual([
      'RECONCILE_MATCH_WINDOW_SECONDS: must be at least RECONCILE_GIVE_UP_SECONDS',
    ]);
  });

  test('a job lock under a second, or a run more often than every 200 ms, is refused', () => {
    expect(problemsOf({ ...baseEnv(), JOB_LOCK_DURATION_MS: '500', RECONCILE_INTERVAL_MS: '50' }).map((p) => p.split(':')[0]).sort()).toEqual(['JOB_LOCK_DURATION_MS', 'RECONCILE_INTERVAL_MS']);
  });
});
