import { Redis } from 'ioredis';
import type { Config } from './config';
import { createDb, type Db } from './db/knex';
import { Outbox } from './jobs/outbox';
import { createQueues, type Queues } from './jobs/queues';
import type { Logger } from './lib/logger';
import { RedisSessionStore, type SessionStore } from './ussd/session-store';
import { DarajaClient } from './vendors/daraja-client';
import { createSmsSender, type SmsSender } from './vendors/sms-client';

/** Everything a role needs, built once from the config and handed down (no module reaches for globals). */
export interface Services {
  config: Config;
  log: Logger;
  db: Db;
  /** Sessions, the Daraja token cache, health checks. Fails fast so a USSD request never hangs on Redis. */
  redis: Redis;
  /** BullMQ's workers block on Redis and must wait for it: maxRetriesPerRequest null, as BullMQ requires. */
  workerConnection: Redis;
  queues: Queues;
  outbox: Outbox;
  sessions: SessionStore;
  daraja: DarajaClient;
  sms: SmsSender;
  close(): Promise<void>;
}

export function createServices(config: Config, log: Logger): Services {
  const db = createDb(config.databaseUrl);
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 1, connectTimeout: 2000 });
  const queueConnection = new Redis(config.redisUrl, { maxRetriesPerRequest: 1, connectTimeout: 2000 });
  const workerConnection = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
  for (const [name, conn] of Object.entries({ redis, queueConnection, workerConnection })) {
    conn.on('error', (err) => log.warn({ connection: name, err: err.message }, 'redis connection error'));
  }
  const queues = createQueues(queueConnection, config.queuePrefix, config.jobs);
  for (const q of Object.values(queues)) q.on('error', (err) => log.warn({ queue: q.name, err: err.message }, 'queue error'));
  const outbox = new Outbox(db, queues, log);
  return {
    config,
    log,
    db,
    redis,
    workerConnection,
    queues,
    outbox,
    sessions: new RedisSessionStore(redis, config.queuePrefix, config.ussd.sessionTtlSeconds),
    daraja: new DarajaClient(config.mpesa, redis, config.queuePrefix),
    sms: createSmsSender(config.at),
    async close() {
      await Promise.allSettled(Object.values(queues).map((q) => q.close()));
      await db.destroy();
      for (const conn of [redis, queueConnection, workerConnection]) conn.disconnect();
    },
  };
}
