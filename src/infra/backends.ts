import { randomUUID } from 'node:crypto';
import { createPostgresBackend, Queue, QueueEvents, withBackend, Worker, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { RateLimiterPostgres, RateLimiterRedis } from 'rate-limiter-flexible';
import type { RunConfig } from '../config';
import type { Db } from '../db/knex';
import { jobOptions, QUEUE_NAMES, workerOptions, type QueueKey } from './queues';
import type { Logger } from '../lib/logger';
import { PostgresKeyValueStore, RedisKeyValueStore, type KeyValueStore } from './kv-store';
import { memoryInsurance, wrapLimiter, type Limiter } from './limiter';
import { redisUssdTurns, type UssdTurns } from './ussd-turns';

/** What the rest of the code needs of a queue, whichever engine is behind it. */
export interface JobQueue {
  readonly name: string;
  add(name: string, data: Record<string, unknown>, opts?: JobsOptions): Promise<unknown>;
  getWaitingCount(): Promise<number>;
  /** A repeating job (BullMQ job scheduler); upserting the same id again only updates it. */
  upsertJobScheduler(id: string, repeat: { every: number }, template: { name: string; data?: Record<string, unknown>; opts?: JobsOptions }): Promise<unknown>;
  getJobCounts(...states: Array<'waiting' | 'active' | 'delayed' | 'failed' | 'completed'>): Promise<Record<string, number>>;
  close(): Promise<void>;
}

/** What runAndWait saw: the processor's return value, or nothing within the time allowed. */
export type JobWait = { finished: true; result: unknown } | { finished: false };

export interface JobView<T> {
  data: T;
  /** When the job was added (ms since the epoch). */
  timestamp: number;
  attemptsMade: number;
  opts: { attempts?: number };
}

export type Queues = Record<QueueKey, JobQueue>;

export interface Backends {
  kind: 'redis' | 'postgres';
  kv: KeyValueStore;
  queues: Queues;
  startWorker<T>(queue: QueueKey, processor: (job: JobView<T>) => Promise<unknown>, concurrency: number): { close(): Promise<void> };
  /**
   * Adds a one-shot job (one attempt) and waits up to timeoutMs for what its processor returns: for a
   * request that needs a vendor's answer but must not call the vendor itself. A failed job rejects.
   */
  runAndWait(queue: QueueKey, data: Record<string, unknown>, timeoutMs: number): Promise<JobWait>;
  /** The BullMQ queues themselves, for the dashboard (Bull Board) only. */
  dashboardQueues(): Queue[];
  /** At most `points` per key in each window of `durationSeconds`, counted across every process (rate-limiter-flexible). */
  limiter(name: string, points: number, durationSeconds: number): Limiter;
  /** Redis only: a USSD request's limit tick and reads in one script, its writes in another (src/infra/ussd-turns.ts). */
  ussdTurns?: UssdTurns;
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
  // A QueueEvents blocks on its connection: each gets its own, made only when a request first waits on that queue.
  const eventsConnections: Redis[] = [];
  const waiter = jobWaiter(queues, (name) => {
    const connection = new Redis(url, { maxRetriesPerRequest: null });
    eventsConnections.push(connection);
    return new QueueEvents(name, { connection, prefix: config.queuePrefix });
  }, log);
  return {
    kind: 'redis',
    kv: new RedisKeyValueStore(redis),
    queues,
    startWorker: (queue, processor, concurrency) =>
      watchWorker(new Worker(QUEUE_NAMES[queue], processor, { connection: workerConnection, prefix: config.queuePrefix, concurrency, ...workerOptions(config.jobs) }), log),
    runAndWait: waiter.runAndWait,
    dashboardQueues: () => Object.values(queues),
    ussdTurns: redisUssdTurns(redis),
    limiter: (name, points, duration) =>
      wrapLimiter(
        new RateLimiterRedis({
          storeClient: redis,
          keyPrefix: `${config.queuePrefix}:limit:${name}`,
          points,
          duration,
          // Redis down: count in memory at once rather than wait on a dead connection.
          rejectIfRedisNotReady: true,
          insuranceLimiter: memoryInsurance(points, duration),
        }),
      ),
    async close() {
      await waiter.close();
      await Promise.allSettled(Object.values(queues).map((q) => q.close()));
      for (const conn of [redis, queueConnection, workerConnection, ...eventsConnections]) conn.disconnect();
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
  // The PostgreSQL backend delivers queue events through LISTEN/NOTIFY, so waiting works the same way.
  const waiter = jobWaiter(queues, (name) => new pg.QueueEvents(name, { connection, prefix: config.queuePrefix }), log);
  const purge = setInterval(() => kv.purgeExpired().catch((err) => log.warn({ err: err.message }, 'kv purge failed')), 60_000);
  purge.unref();
  return {
    kind: 'postgres',
    kv,
    queues,
    startWorker: (queue, processor, concurrency) =>
      watchWorker(new pg.Worker(QUEUE_NAMES[queue], processor, { connection, prefix: config.queuePrefix, concurrency, ...workerOptions(config.jobs) }), log),
    runAndWait: waiter.runAndWait,
    // Same Queue class on another backend; Bull Board's adapter reads it through the class's own methods.
    dashboardQueues: () => Object.values(queues) as unknown as Queue[],
    limiter: (name, points, duration) =>
      wrapLimiter(
        new RateLimiterPostgres({
          storeClient: db,
          storeType: 'knex',
          // Created by migration 20261126_008_security, never by the library at run time.
          tableName: 'rate_limits',
          tableCreated: true,
          keyPrefix: `${config.queuePrefix}:limit:${name}`,
          points,
          duration,
          insuranceLimiter: memoryInsurance(points, duration),
        }),
      ),
    async close() {
      clearInterval(purge);
      await waiter.close();
      await Promise.allSettled(Object.values(queues).map((q) => q.close()));
    },
  };
}

/** One queue per QUEUE_NAMES entry: a queue added there exists here without further edits. */
function mapQueues<Q extends JobQueue>(make: (name: string) => Q): Record<QueueKey, Q> {
  return Object.fromEntries((Object.keys(QUEUE_NAMES) as QueueKey[]).map((key) => [key, make(QUEUE_NAMES[key])])) as Record<QueueKey, Q>;
}

interface WaitableQueue {
  add(name: string, data: Record<string, unknown>, opts?: JobsOptions): Promise<{ waitUntilFinished(events: never, ttl?: number): Promise<unknown> }>;
}

interface EventsLike {
  waitUntilReady(): Promise<unknown>;
  on(event: 'error', listener: (err: Error) => void): unknown;
  close(): Promise<void>;
}

/** runAndWait over either engine: one QueueEvents per queue, made on first use, closed with the backends. */
function jobWaiter(queues: Record<QueueKey, WaitableQueue>, makeEvents: (name: string) => EventsLike, log: Logger) {
  const events = new Map<QueueKey, EventsLike>();
  return {
    async runAndWait(queue: QueueKey, data: Record<string, unknown>, timeoutMs: number): Promise<JobWait> {
      let qe = events.get(queue);
      if (!qe) {
        qe = makeEvents(QUEUE_NAMES[queue]);
        qe.on('error', (err) => log.warn({ queue, err: err.message }, 'queue events error'));
        events.set(queue, qe);
      }
      // Listening before the job exists, so its completion cannot slip by unseen.
      await qe.waitUntilReady();
      const job = await queues[queue].add(queue, data, {
        jobId: `${queue}-${randomUUID()}`,
        attempts: 1,
        removeOnComplete: { age: 3600 },
        removeOnFail: { age: 24 * 3600 },
      });
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<JobWait>((resolve) => (timer = setTimeout(() => resolve({ finished: false }), timeoutMs)));
      // The library's own ttl (a little longer) drops its listeners if the job never finishes.
      const finished = job.waitUntilFinished(qe as never, timeoutMs + 1000).then((result): JobWait => ({ finished: true, result }));
      finished.catch(() => undefined);
      try {
        return await Promise.race([finished, timedOut]);
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      await Promise.allSettled([...events.values()].map((e) => e.close()));
      events.clear();
    },
  };
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
