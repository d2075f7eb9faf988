import { createPostgresBackend, Queue, withBackend, Worker, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import type { RunConfig } from '../config';
import type { Db } from '../db/knex';
import { jobOptions, QUEUE_NAMES, type QueueKey } from '../jobs/queues';
import type { Logger } from '../lib/logger';
import { PostgresKeyValueStore, RedisKeyValueStore, type KeyValueStore } from './kv-store';

/** What the rest of the code needs of a queue, whichever engine is behind it. */
export interface JobQueue {
  readonly name: string;
  add(name: string, data: Record<string, unknown>, opts?: JobsOptions): Promise<unknown>;
  getWaitingCount(): Promise<number>;
  close(): Promise<void>;
}

export interface JobView<T> {
  data: T;
  attemptsMade: number;
  opts: { attempts?: number };
}

export type Queues = Record<QueueKey, JobQueue>;

export interface Backends {
  kind: 'redis' | 'postgres';
  kv: KeyValueStore;
  queues: Queues;
  startWorker<T>(queue: QueueKey, processor: (job: JobView<T>) => Promise<void>, concurrency: number): { close(): Promise<void> };
  close(): Promise<void>;
}

/**
 * THE place that decides between Redis and Postgres for queues and shared short-lived values.
 * With REDIS_URL: BullMQ on Redis, sessions and the token cache in Redis. Without it: BullMQ's
 * PostgreSQL backend and a kv_store table, in the service's own database. Nothing else knows which.
 */
export function createBackends(config: RunConfig, db: Db, log: Logger): Backends {
  return config.redisUrl ? redisBackends(config, config.redisUrl, log) : postgresBackends(config, db, log);
}

function redisBackends(config: RunConfig, url: string, log: Logger): Backends {
  // Requests fail fast (a USSD answer must never hang on Redis); workers wait, as BullMQ requires.
  const redis = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 2000 });
  const queueConnection = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 2000 });
  const workerConnection = new Redis(url, { maxRetriesPerRequest: null });
  for (const [name, conn] of Object.entries({ redis, queueConnection, workerConnection })) {
    conn.on('error', (err) => log.warn({ connection: name, err: err.message }, 'redis connection error'));
  }
  const defaultJobOptions = jobOptions(config.jobs);
  const queues = mapQueues((name) => watch(new Queue(name, { connection: queueConnection, prefix: config.queuePrefix, defaultJobOptions }), log));
  return {
    kind: 'redis',
    kv: new RedisKeyValueStore(redis),
    queues,
    startWorker: (queue, processor, concurrency) =>
      watchWorker(new Worker(QUEUE_NAMES[queue], processor, { connection: workerConnection, prefix: config.queuePrefix, concurrency }), log),
    async close() {
      await Promise.allSettled(Object.values(queues).map((q) => q.close()));
      for (const conn of [redis, queueConnection, workerConnection]) conn.disconnect();
    },
  };
}

function postgresBackends(config: RunConfig, db: Db, log: Logger): Backends {
  const pg = withBackend(createPostgresBackend);
  // BullMQ keeps its tables in a schema of their own and migrates them itself.
  const connection = { connectionString: config.databaseUrl, schema: 'bullmq', max: 3, migrate: true };
  const defaultJobOptions = jobOptions(config.jobs);
  const queues = mapQueues((name) => watch(new pg.Queue(name, { connection, prefix: config.queuePrefix, defaultJobOptions }), log));
  const kv = new PostgresKeyValueStore(db);
  const purge = setInterval(() => kv.purgeExpired().catch((err) => log.warn({ err: err.message }, 'kv purge failed')), 60_000);
  purge.unref();
  return {
    kind: 'postgres',
    kv,
    queues,
    startWorker: (queue, processor, concurrency) =>
      watchWorker(new pg.Worker(QUEUE_NAMES[queue], processor, { connection, prefix: config.queuePrefix, concurrency }), log),
    async close() {
      clearInterval(purge);
      await Promise.allSettled(Object.values(queues).map((q) => q.close()));
    },
  };
}

function mapQueues(make: (name: string) => JobQueue): Queues {
  return { buy: make(QUEUE_NAMES.buy), sms: make(QUEUE_NAMES.sms) };
}

interface Emitter {
  name: string;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

function watch<Q extends JobQueue & Emitter>(q: Q, log: Logger): Q {
  q.on('error', (err) => log.warn({ queue: q.name, err: err.message }, 'queue error'));
  return q;
}

function watchWorker(w: Emitter & { close(): Promise<void>; on(event: 'failed', l: (job: { id?: string; attemptsMade: number } | undefined, err: Error) => void): unknown }, log: Logger) {
  w.on('error', (err) => log.error({ queue: w.name, err: err.message }, 'worker error'));
  w.on('failed', (job, err) => log.warn({ queue: w.name, jobId: job?.id, attempt: job?.attemptsMade, err: err.message }, 'job attempt failed'));
  return { close: () => w.close() };
}
