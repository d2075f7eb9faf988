import axios from 'axios';
import { Redis } from 'ioredis';
import nock from 'nock';
import { RedisKeyValueStore } from '../../src/infra/kv-store';
import { DarajaTokenCache } from '../../src/vendors/daraja-token';
import { DARAJA_HOST } from '../support/harness';
import { TEST_REDIS_URL } from '../support/test-env';

/**
 * The shared Daraja token, read through one real Redis: concurrent callers share one read of the store (single
 * flight), but nothing outlives that read, and a caller that invalidated a token never joins a read begun before.
 */
describe('the Daraja token cache', () => {
  let redis: Redis;
  const keyPrefix = `token-${process.pid}-${Date.now()}`;
  const key = `${keyPrefix}:daraja:token`;
  let reads: number;
  let gate: Promise<void> | null;
  let deleteGate: Promise<void> | null;

  /**
   * The real store, counting its reads of the token; while `gate` is set each of those reads waits for it before
   * asking Redis, and while `deleteGate` is set each delete does.
   */
  const cache = () => {
    const store = new RedisKeyValueStore(redis);
    const get = store.get.bind(store);
    store.get = async (k: string) => {
      reads++;
      if (gate) await gate;
      return get(k);
    };
    const deleteIfEquals = store.deleteIfEquals.bind(store);
    store.deleteIfEquals = async (k: string, v: string) => {
      if (deleteGate) await deleteGate;
      return deleteIfEquals(k, v);
    };
    return new DarajaTokenCache(store, axios.create({ baseURL: DARAJA_HOST, validateStatus: () => true }), { consumerKey: 'k', consumerSecret: 's' }, keyPrefix);
  };

  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
  });
  beforeEach(async () => {
    reads = 0;
    gate = null;
    deleteGate = null;
    nock.cleanAll();
    await redis.set(key, 'token-1');
  });
  afterAll(async () => {
    await redis.del(key, `${key}:lock`);
    redis.disconnect();
  });

  test('callers asking at the same moment share one read of the store', async () => {
    const tokens = cache();
    expect(await Promise.all(Array.from({ length: 20 }, () => tokens.get()))).toEqual(Array(20).fill('token-1'));
    expect(reads).toBe(1);
  });

  test('a read that settled is not kept: a token replaced or deleted in the store is seen by the next caller', async () => {
    const tokens = cache();
    expect(await tokens.get()).toBe('token-1');
    await redis.set(key, 'token-2');
    expect(await tokens.get()).toBe('token-2');
    await redis.del(key);
    nock(DARAJA_HOST).get('/oauth/v1/generate').query(true).reply(200, { access_token: 'token-3', expires_in: '3599' });
    expect(await tokens.get()).toBe('token-3');
    expect(reads).toBe(3); // one each: the third found the store empty and fetched
    expect(await redis.get(key)).toBe('token-3');
  });

  test('a caller that invalidated a token does not join a read begun before, which could still return it', async () => {
    const tokens = cache();
    let open!: () => void;
    gate = new Promise((r) => (open = r));
    const before = tokens.get(); // under way, held at the gate: it will read the store after the delete below
    expect(reads).toBe(1);
    await tokens.invalidate('token-1');
    nock(DARAJA_HOST).get('/oauth/v1/generate').query(true).reply(200, { access_token: 'token-2', expires_in: '3599' });
    const after = tokens.get();
    expect(reads).toBe(2); // a read of its own
    open();
    expect(await after).toBe('token-2');
    expect(await before).toBe('token-2'); // it too read the store only after the delete
  });

  test('nor a read begun while its delete was still under way', async () => {
    const tokens = cache();
    let openReads!: () => void;
    let openDelete!: () => void;
    gate = new Promise((r) => (openReads = r));
    deleteGate = new Promise((r) => (openDelete = r));
    const invalidated = tokens.invalidate('token-1'); // the delete is held
    const during = tokens.get(); // began before the delete was done: it may read the rejected token
    expect(reads).toBe(1);
    openDelete();
    await invalidated;
    nock(DARAJA_HOST).get('/oauth/v1/generate').query(true).reply(200, { access_token: 'token-2', expires_in: '3599' });
    const after = tokens.get();
    expect(reads).toBe(2);
    openReads();
    expect(await after).toBe('token-2');
    await during;
  });

  test('a failed fetch fails only the caller that made it: one that shared its read fetches in turn', async () => {
    const tokens = cache();
    await redis.del(key);
    nock(DARAJA_HOST).get('/oauth/v1/generate').query(true).reply(500, 'down');
    nock(DARAJA_HOST).get('/oauth/v1/generate').query(true).reply(200, { access_token: 'token-4', expires_in: '3599' });
    const results = await Promise.allSettled([tokens.get(), tokens.get()]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : 'failed')).sort()).toEqual(['failed', 'token-4']);
    expect(await tokens.get()).toBe('token-4');
  });
});
