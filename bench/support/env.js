'use strict';
/**
 * What every benchmark section shares: the built service (dist/), throw-away databases cloned from one
 * migrated template, a Redis key prefix of the run's own, and the facts about this machine.
 * Everything talks to 127.0.0.1 only; the admin URLs are refused if they point anywhere else.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { randomBytes } = require('node:crypto');
const { execFileSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
// BENCH_DIST: measure another build of the service (e.g. a variant compiled elsewhere with --outDir), for A/B runs.
const DIST = path.resolve(process.env.BENCH_DIST || path.join(ROOT, 'dist'));

const ADMIN_DATABASE_URL = process.env.BENCH_ADMIN_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379';
for (const [name, value] of Object.entries({ BENCH_ADMIN_DATABASE_URL: ADMIN_DATABASE_URL, BENCH_REDIS_URL: REDIS_URL })) {
  const host = new URL(value).hostname;
  if (!['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host)) throw new Error(`${name} must point at this machine (127.0.0.1), got ${host}`);
}

/** A module of the BUILT service (npm run build), so the bench measures what `npm start` runs. */
function dist(relative) {
  const file = path.join(DIST, relative);
  if (!fs.existsSync(file + '.js') && !fs.existsSync(path.join(file, 'index.js'))) throw new Error(`${file}.js is missing: run \`npm run build\` first`);
  return require(file);
}

const RUN_ID = randomBytes(3).toString('hex');

function databaseUrl(name) {
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * The run's databases (bench_<run>_tpl migrated once, one clone per section) and Redis prefixes. `cleanup()` drops
 * and deletes all of them; it is called on success, on failure and on Ctrl-C.
 */
class Resources {
  constructor() {
    const { createDb } = dist('src/db/knex');
    this.createDb = createDb;
    this.admin = createDb(ADMIN_DATABASE_URL, { max: 1 });
    this.databases = [];
    this.prefixes = [];
    this.template = null;
  }

  async ensureTemplate() {
    if (this.template) return this.template;
    const name = `bench_${RUN_ID}_tpl`;
    await this.admin.raw(`CREATE DATABASE ${name}`);
    this.databases.push(name);
    const db = this.createDb(databaseUrl(name), { max: 1 });
    try {
      await dist('src/db/knex').migrateLatest(db);
    } finally {
      await db.destroy();
    }
    this.template = name;
    return name;
  }

  /** A fresh, migrated database for one section. */
  async database(section) {
    const template = await this.ensureTemplate();
    const name = `bench_${RUN_ID}_${section.replace(/[^a-z0-9]/gi, '').toLowerCase()}`;
    await this.admin.raw(`CREATE DATABASE ${name} TEMPLATE ${template}`);
    this.databases.push(name);
    return { name, url: databaseUrl(name) };
  }

  /** A Redis key prefix of this run's own (deleted afterwards). */
  prefix(section) {
    const p = `bench${RUN_ID}${section.replace(/[^a-z0-9]/gi, '')}`;
    this.prefixes.push(p);
    return p;
  }

  async cleanup() {
    const { Redis } = require('ioredis');
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true });
    try {
      await redis.connect();
      for (const prefix of this.prefixes) await deleteKeys(redis, `${prefix}:*`);
    } catch (err) {
      console.error(`could not delete Redis keys ${this.prefixes.join(', ')}: ${err.message}`);
    } finally {
      redis.disconnect();
    }
    for (const name of this.databases.reverse()) {
      try {
        await this.admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } catch (err) {
        console.error(`could not drop database ${name}: ${err.message}`);
      }
    }
    this.databases = [];
    await this.admin.destroy();
  }
}

async function deleteKeys(redis, pattern) {
  let cursor = '0';
  let rounds = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    if (keys.length) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0' && ++rounds < 100_000);
}

/** The machine, as the report prints it. */
async function machine(resources) {
  const cpus = os.cpus();
  let pg = 'unknown';
  let pgSettings = {};
  try {
    pg = (await resources.admin.raw('select version() v')).rows[0].v.split(' on ')[0];
    for (const s of ['synchronous_commit', 'fsync', 'shared_buffers', 'max_connections']) {
      pgSettings[s] = (await resources.admin.raw(`show ${s}`)).rows[0][s];
    }
  } catch {
    /* reported as unknown */
  }
  let redis = 'unknown';
  try {
    const { Redis } = require('ioredis');
    const r = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    const info = await r.info('server');
    r.disconnect();
    redis = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
  } catch {
    /* reported as unknown */
  }
  return {
    nproc: typeof os.availableParallelism === 'function' ? os.availableParallelism() : cpus.length,
    cpuModel: cpus[0]?.model?.trim() ?? 'unknown',
    memoryGiB: (os.totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    postgres: pg,
    postgresSettings: pgSettings,
    redis,
    loadAverage: os.loadavg().map((l) => l.toFixed(2)),
    gitCommit: gitCommit(),
  };
}

function gitCommit() {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'migrations'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    return dirty ? `${head} (+ uncommitted changes in src/ or migrations/)` : head;
  } catch {
    return 'unknown';
  }
}

/** Kenyan Safaricom numbers 2547100xxxxx.. (071x range), distinct per index. */
function phone(i) {
  return `2547${String(10_000_000 + i).padStart(8, '0')}`;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

module.exports = { ROOT, DIST, ADMIN_DATABASE_URL, REDIS_URL, RUN_ID, Resources, dist, databaseUrl, machine, phone, sleep };
