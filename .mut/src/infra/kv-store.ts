import type { Redis } from 'ioredis';
import type { Db } from '../db/knex';

/** Shared, expiring values: the little that USSD sessions and the Daraja token cache need. */
export interface KeyValueStore {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /** Sets only if absent (or expired): the building block of a lock. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  /** Deletes only if the value is still ours: releasing a lock, dropping a rejected token. */
  deleteIfEquals(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
  ping(): Promise<void>;
}

const COMPARE_AND_DELETE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export class RedisKeyValueStore implements KeyValueStore {
  constructor(private readonly redis: Redis) {}
  get(key: string) {
    return this.redis.get(key);
  }
  async set(key: string, value: string, ttlMs: number) {
    await this.redis.set(key, value, 'PX', ttlMs);
  }
  async setIfAbsent(key: string, value: string, ttlMs: number) {
    return (await this.redis.set(key, value, 'PX', ttlMs, 'NX')) === 'OK';
  }
  async deleteIfEquals(key: string, value: string) {
    await this.redis.eval(COMPARE_AND_DELETE, 1, key, value);
  }
  async delete(key: string) {
    await this.redis.del(key);
  }
  async ping() {
    await this.redis.ping();
  }
}

export class PostgresKeyValueStore implements KeyValueStore {
  constructor(private readonly db: Db) {}
  async get(key: string) {
    const row = await this.db('kv_store').where({ key }).where('expires_at', '>', this.db.fn.now()).first('value');
    return row ? (row.value as string) : null;
  }
  async set(key: string, value: string, ttlMs: number) {
    await this.db.raw(
      `INSERT INTO kv_store (key, value, expires_at) VALUES (?, ?, now() + ? * interval '1 millisecond')
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at`,
      [key, value, ttlMs],
    );
  }
  async setIfAbsent(key: string, value: string, ttlMs: number) {
    const { rows } = await this.db.raw(
      `INSERT INTO kv_store (key, value, expires_at) VALUES (?, ?, now() + ? * interval '1 millisecond')
       ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at
         WHERE kv_store.expires_at <= now()
       RETURNING key`,
      [key, value, ttlMs],
    );
    return rows.length === 1;
  }
  async deleteIfEquals(key: string, value: string) {
    await this.db('kv_store').where({ key, value }).delete();
  }
  async delete(key: string) {
    await this.db('kv_store').where({ key }).delete();
  }
  async ping() {
    await this.db.raw('select 1');
  }
  /** Expired rows are invisible already; this only reclaims the space. */
  async purgeExpired() {
    await this.db('kv_store').where('expires_at', '<', this.db.fn.now()).delete();
  }
}
