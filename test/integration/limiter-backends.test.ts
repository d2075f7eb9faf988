import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../src/config';
import { createDb, type Db } from '../../src/db/knex';
import { createBackends, type Backends } from '../../src/infra/backends';
import { createLogger } from '../../src/lib/logger';
import { baseEnv } from '../support/harness';
import { ADMIN_DATABASE_URL, databasePrefix, databaseUrl, runId, templateDatabase } from '../support/test-env';

/**
 * Backends.limiter: rate-limiter-flexible on Redis, or on Postgres (table rate_limits) without Redis,
 * with the library's in-memory insurance limiter when the store is unreachable.
 */
describe.each([
  ['redis', undefined],
  ['postgres', ''],
  ['an unreachable redis (memory insurance)', 'redis://127.0.0.1:1'],
] as const)('the per-key limiter on %s', (_name, redisUrl) => {
  let db: Db;
  let backends: Backends;
  const prefix = `lim${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    const dbName = `${databasePrefix(runId())}${prefix}`;
    const admin = createDb(ADMIN_DATABASE_URL, { max: 1 });
    await admin.raw(`CREATE DATABASE ${dbName} TEMPLATE ${templateDatabase(runId())}`);
    await admin.destroy();
    const config = loadConfig({ ...baseEnv(), DATABASE_URL: databaseUrl(dbName), QUEUE_PREFIX: prefix, ...(redisUrl !== undefined ? { REDIS_URL: redisUrl } : {}) });
    db = createDb(databaseUrl(dbName), { max: 4 });
    backends = createBackends({ ...config, databaseUrl: databaseUrl(dbName) }, db, createLogger('silent'));
  });
  afterAll(async () => {
    await backends.close();
    await db.destroy();
  });

  test('when a key uses its points, then the next is refused with the time left in the window; other keys and other limiters are unaffected', async () => {
    const limiter = backends.limiter('t1', 3, 60);
    for (let i = 0; i < 3; i++) expect(await limiter.consume('254700000001')).toEqual({ allowed: true });
    const refused = await limiter.consume('254700000001');
    expect(refused).toMatchObject({ allowed: false });
    expect((refused as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(50_000);
    expect((refused as { retryAfterMs: number }).retryAfterMs).toBeLessThanOrEqual(60_000);
    expect(await limiter.consume('254700000002')).toEqual({ allowed: true });
    expect(await backends.limiter('t2', 3, 60).consume('254700000001')).toEqual({ allowed: true });
  });

  test('when a point is refunded, then it can be used again', async () => {
    const limiter = backends.limiter('t3', 1, 60);
    expect(await limiter.consume('k')).toEqual({ allowed: true });
    expect(await limiter.consume('k')).toMatchObject({ allowed: false });
    await limiter.refund('k');
    await limiter.refund('k');
    expect(await limiter.consume('k')).toEqual({ allowed: true });
  });

  test('when the window is over, then the key starts afresh', async () => {
    const limiter = backends.limiter('t4', 1, 1);
    expect(await limiter.consume('k')).toEqual({ allowed: true });
    expect(await limiter.consume('k')).toMatchObject({ allowed: false });
    await new Promise((r) => setTimeout(r, 1100));
    expect(await limiter.consume('k')).toEqual({ allowed: true });
  });
});
