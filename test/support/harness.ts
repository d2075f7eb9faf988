import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { DestinationStream } from 'pino';
import { loadConfig, type Config } from '../../src/config';
import { createDb, type Db } from '../../src/db/knex';
import { checkBooks } from '../../src/ledger/ledger';
import { fundPool } from '../../src/ledger/fund-pool';
import { createLogger } from '../../src/lib/logger';
import { UG_PER_GRAM } from '../../src/lib/units';
import { runService, type RunningService } from '../../src/server';
import { ADMIN_DATABASE_URL, TEST_REDIS_URL, databasePrefix, databaseUrl, runId, templateDatabase } from './test-env';

export const SANDBOX_PASSKEY = 'bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919';
export const DARAJA_HOST = 'https://sandbox.safaricom.co.ke';
export const AT_SANDBOX_HOST = 'https://api.sandbox.africastalking.com';
export const SERVICE_CODE = '*384*1#';
export const CALLBACK_PATH = '/mpesa/callback/s3cr3t-Path-9f8e';
/** Africa's Talking's callbacks: /ussd/<it>, /ussd/events/<it>, /sms/delivery-reports/<it>. */
export const AT_SECRET = 'at-Secret-7c1e9a4b2d';
export const USSD_PATH = `/ussd/${AT_SECRET}`;
export const USSD_EVENTS_PATH = `/ussd/events/${AT_SECRET}`;
export const DELIVERY_REPORTS_PATH = `/sms/delivery-reports/${AT_SECRET}`;

export function baseEnv(): Record<string, string> {
  return {
    NODE_ENV: 'test',
    PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    REDIS_URL: TEST_REDIS_URL,
    MPESA_ENVIRONMENT: 'sandbox',
    MPESA_CONSUMER_KEY: 'test-consumer-key',
    MPESA_CONSUMER_SECRET: 'test-consumer-secret',
    MPESA_BUSINESS_SHORTCODE: '174379',
    MPESA_PASSKEY: SANDBOX_PASSKEY,
    MPESA_CALLBACK_URL: `https://wallet.example.com${CALLBACK_PATH}`,
    AT_USERNAME: 'sandbox',
    AT_API_KEY: 'test-at-key',
    AT_CALLBACK_SECRET: AT_SECRET,
    USSD_SERVICE_CODE: SERVICE_CODE,
    GOLD_PRICE_KES_PER_GRAM: '8500',
    JOB_ATTEMPTS: '4',
    JOB_BACKOFF_MS: '50',
    OUTBOX_RELAY_INTERVAL_MS: '200',
    // Tests dial and buy from the same few phones many times a minute; the limit tests set their own.
    STK_PUSHES_PER_HOUR: '100000',
    USSD_REQUESTS_PER_MINUTE: '100000',
  };
}

export interface TestService {
  url: string;
  db: Db;
  config: Config;
  running: RunningService;
  close(): Promise<void>;
}

/**
 * The real service (web + worker) on a free port, over its own database and queue prefix.
 * `logDestination` receives the service's JSON log lines (set LOG_LEVEL in overrides to see any).
 */
export async function startTestService(overrides: Record<string, string> = {}, opts: { logDestination?: DestinationStream } = {}): Promise<TestService> {
  const suffix = randomBytes(4).toString('hex');
  const dbName = `${databasePrefix(runId())}${suffix}`;
  const admin = createDb(ADMIN_DATABASE_URL, { max: 1 });
  await admin.raw(`CREATE DATABASE ${dbName} TEMPLATE ${templateDatabase(runId())}`);
  await admin.destroy();

  const config = loadConfig({ ...baseEnv(), DATABASE_URL: databaseUrl(dbName), QUEUE_PREFIX: `t${runId()}${suffix}`, ...overrides });
  const running = await runService(config, createLogger(config.logLevel, opts.logDestination));
  return {
    url: `http://127.0.0.1:${running.port}`,
    db: running.services.db,
    config,
    running,
    async close() {
      await running.close();
      await deleteRedisKeys(`${config.queuePrefix}:*`);
    },
  };
}

/** A Redis client of the test's own, for looking at what the service stored there. */
export async function withRedis<T>(fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(TEST_REDIS_URL);
  try {
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

export async function deleteRedisKeys(pattern: string) {
  const redis = new Redis(TEST_REDIS_URL);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export async function fundPoolGrams(db: Db, grams: number) {
  await fundPool(db, grams * UG_PER_GRAM, 'test funding');
}

/** Debits = credits, balances = transfers, nothing overdrawn (checkBooks), and pool + customers = issued. */
export async function expectBooksBalanced(db: Db) {
  expect(await checkBooks(db)).toEqual([]);
  const { issued, held } = await goldIssuedAndHeld(db);
  expect(held).toBe(issued);
}

/**
 * Every microgram that left issuance (its posted debits less anything returned to it) is held, posted,
 * by the pool or a customer: gold is neither created nor lost between them.
 */
export async function goldIssuedAndHeld(db: Db): Promise<{ issued: number; held: number }> {
  const { rows } = await db.raw(`
    SELECT coalesce(sum(debits_posted - credits_posted) FILTER (WHERE kind = 'issuance'), 0) AS issued,
           coalesce(sum(credits_posted - debits_posted) FILTER (WHERE kind IN ('pool', 'customer')), 0) AS held
      FROM accounts`);
  return { issued: Number(rows[0].issued), held: Number(rows[0].held) };
}

/** Polls until `fn` returns a truthy value (or throws with what it last saw). */
export async function waitFor<T>(fn: () => Promise<T | undefined | null | false>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
