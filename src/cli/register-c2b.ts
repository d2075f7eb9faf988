import { Redis } from 'ioredis';
import { loadConfig } from '../config';
import { createDb, type Db } from '../db/knex';
import { PostgresKeyValueStore, RedisKeyValueStore, type KeyValueStore } from '../infra/kv-store';
import { registerC2bUrls } from '../payments/c2b/register-urls';

/**
 * npm run mpesa:register-c2b: registers MPESA_C2B_VALIDATION_URL and MPESA_C2B_CONFIRMATION_URL for
 * MPESA_C2B_SHORTCODE with Daraja and prints Daraja's answer. Reads the same environment as the
 * service, and shares its Daraja token (Redis, or the database's kv_store) so the running service's
 * token is not invalidated. Run it once per deployment, and again whenever a URL changes.
 */
async function main() {
  const config = loadConfig();
  if (!config.c2b) {
    console.error('Pay by Paybill is off: set MPESA_C2B_VALIDATION_URL and MPESA_C2B_CONFIRMATION_URL first.');
    process.exit(2);
  }
  const redis = config.redisUrl ? new Redis(config.redisUrl, { maxRetriesPerRequest: 1 }) : null;
  const db: Db | null = !redis && config.databaseUrl ? createDb(config.databaseUrl, { max: 1 }) : null;
  const store: KeyValueStore = redis ? new RedisKeyValueStore(redis) : db ? new PostgresKeyValueStore(db) : new MemoryStore();
  try {
    console.log(`registering C2B URLs for shortcode ${config.c2b.shortcode} with ${config.mpesa.baseUrl} (secrets not shown)`);
    const answer = await registerC2bUrls(config.mpesa, config.c2b, store, config.queuePrefix);
    console.log(`Daraja answered HTTP ${answer.httpStatus}: ${JSON.stringify(answer.body)}`);
    if (!answer.ok) process.exitCode = 1;
  } finally {
    redis?.disconnect();
    await db?.destroy();
  }
}

/** No shared store (emulator mode with the embedded Postgres): a token of this run's own. */
class MemoryStore implements KeyValueStore {
  private readonly values = new Map<string, { value: string; until: number }>();
  async get(key: string) {
    const v = this.values.get(key);
    return v && v.until > Date.now() ? v.value : null;
  }
  async set(key: string, value: string, ttlMs: number) {
    this.values.set(key, { value, until: Date.now() + ttlMs });
  }
  async setIfAbsent(key: string, value: string, ttlMs: number) {
    if (await this.get(key)) return false;
    await this.set(key, value, ttlMs);
    return true;
  }
  async deleteIfEquals(key: string, value: string) {
    if ((await this.get(key)) === value) this.values.delete(key);
  }
  async delete(key: string) {
    this.values.delete(key);
  }
  async ping() {}
}

main().catch((err) => {
  console.error('mpesa:register-c2b failed:', err instanceof Error ? err.message : err);
  process.exit(1);
});
