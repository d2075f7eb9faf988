import type { RunConfig } from './config';
import { createDb, type Db } from './db/knex';
import { createBackends, type Backends } from './infra/backends';
import type { KeyValueStore } from './infra/kv-store';
import { Outbox } from './infra/outbox';
import type { Queues } from './infra/backends';
import type { Logger } from './lib/logger';
import { MetricsRegistry } from './infra/metrics';
import type { Lifecycle } from './ops/readiness';
import { createPhoneLimits, USSD_LIMIT_PREFIX, type PhoneLimits } from './orders/phone-limits';
import { StkCallbackSettler } from './payments/buy/stk-callback-batcher';
import type { PriceSource } from './prices/price-quote';
import { createPriceSource } from './prices/price-source';
import { SessionStore } from './ussd/session-store';
import { b2cSettingsFrom } from './vendors/daraja-b2c-settings';
import { DarajaClient } from './vendors/daraja-client';
import { createSmsSender, type SmsSender } from './vendors/sms-client';

/** Everything a role needs, built once from the config and handed down (no module reaches for globals). */
export interface Services {
  config: RunConfig;
  log: Logger;
  db: Db;
  backends: Backends;
  kv: KeyValueStore;
  queues: Queues;
  outbox: Outbox;
  sessions: SessionStore;
  daraja: DarajaClient;
  sms: SmsSender;
  /** Counters and histograms of this process (GET /metrics); use cases take it as an optional `metrics`. */
  metrics: MetricsRegistry;
  lifecycle: Lifecycle;
  limits: PhoneLimits;
  /** Gold prices (PRICE_PROVIDER); the http feed is polled by the worker (src/server.ts). */
  prices: PriceSource;
  /** Settles STK callbacks, concurrent paid ones batched (STK_SETTLE_BATCH_MAX per transaction). */
  stkCallbacks: StkCallbackSettler;
  close(): Promise<void>;
}

export function createServices(config: RunConfig, log: Logger): Services {
  const db = createDb(config.databaseUrl, {}, log);
  const backends = createBackends(config, db, log);
  const outbox = new Outbox(db, backends.queues, log);
  const limits = createPhoneLimits(backends, config.limits);
  const metrics = new MetricsRegistry();
  return {
    config,
    log,
    db,
    backends,
    kv: backends.kv,
    queues: backends.queues,
    outbox,
    sessions: new SessionStore(backends.kv, config.queuePrefix, config.ussd.sessionTtlSeconds, config.ussd.resumeSeconds, {
      ...(backends.ussdTurns ? { turns: backends.ussdTurns } : {}),
      limit: { limiter: limits.ussdRequests, points: config.limits.ussdRequestsPerMinute, keyPrefix: USSD_LIMIT_PREFIX(config.queuePrefix) },
    }),
    daraja: new DarajaClient(config.mpesa, backends.kv, config.queuePrefix, undefined, b2cSettingsFrom(config.b2c)),
    sms: createSmsSender(config.at),
    metrics,
    lifecycle: { stopping: false },
    limits,
    prices: createPriceSource(config.prices, backends.kv, config.queuePrefix),
    stkCallbacks: new StkCallbackSettler({ db, outbox, log, config, metrics }, config.settlement.stkBatchMax),
    async close() {
      await backends.close();
      await db.destroy();
    },
  };
}
