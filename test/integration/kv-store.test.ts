import { Redis } from 'ioredis';
import { createDb, migrateLatest, type Db } from '../../src/db/knex';
import { PostgresKeyValueStore, RedisKeyValueStore, type KeyValueStore } from '../../src/infra/kv-store';
import { ADMIN_DATABASE_URL, TEST_REDIS_URL, databasePrefix, databaseUrl, runId, templateDatabase } from '../support/test-env';

/** The same contract on both engines: sessions and the Daraja token lock depend on it. */
describe.each(['redis', 'postgres'] as const)('the %s key-value store', (engine) => {
  let store: KeyValueStore;
  let cleanup: () => Promise<void>;
  const key = (k: string) => `kvtest:${runId()}:${k}`;

  beforeAll(async () => {
    if (engine === 'redis') {
      const redis = new Redis(TEST_REDIS_URL);
      store = new RedisKeyValueStore(redis);
      cleanup = async () => redis.disconnect();
    } else {
      const name = `${databasePrefix(runId())}kv`;
      const admin = createDb(ADMIN_DATABASE_URL, { max: 1 });
      await admin.raw(`CREATE DATABASE ${name} TEMPLATE ${templateDatabase(runId())}`);
      await admin.destroy();
      const db: Db = createDb(databaseUrl(name), { max: 4 });
      await migrateLatest(db);
      store = new PostgresKeyValueStore(db);
      cleanup = () => db.destroy();
    }
  });
  afterAll(() => cleanup());

  test('when a value is set, then it reads back until it expires', async () => {
    await store.set(key('a'), 'one', 150);
    expect(await store.get(key('a'))).toBe('one');
    await new Promise((r) => setTimeout(r, 250));
    expect(await store.get(key('a'))).toBeNull();
  });

  test('when many callers race for setIfAbsent, then exactly one wins, and the key frees up after it expires', async () => {
    const wins = await Promise.all(Array.from({ length: 10 }, (_, i) => store.setIfAbsent(key('lock'), `caller-${i}`, 200)));
    expect(wins.filter(Boolean)).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(await store.setIfAbsent(key('lock'), 'later', 1000)).toBe(true);
    expect(await store.get(key('lock'))).toBe('later');
  });

  test('when deleting with the wrong value, then the key stays; with the right one, it goes', async () => {
    await store.set(key('tok'), 'current', 10_000);
    await store.deleteIfEquals(key('tok'), 'stale');
    expect(await store.get(key('tok'))).toBe('current');
    await store.deleteIfEquals(key('tok'), 'current');
    expect(await store.get(key('tok'))).toBeNull();
  });
});
