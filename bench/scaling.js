'use strict';
/**
 * `node bench/scaling.js`: the measurements behind docs/SCALING.md, on this machine, against the BUILT service
 * (npm run build first). Reuses the bench's support code (bench/support: throw-away databases, processes, the
 * vendor stand-in, autocannon). Prints the figures; it does not write any file.
 *
 *   ledger   reserve+post pairs/s on the hot pool row at 1/8/32 clients, and the same with the pool split into
 *            8 rows (a shard picked by hash of the transfer id): does the single pool row limit?
 *   web      USSD requests/s (main menu -> amount -> confirm screen walks) with 1 web process, then 2, on this box
 *   worker   jobs/s with 1 worker process, then 2: SMS jobs (one AT request each) and buy jobs (reserve on the pool
 *            row + one STK Push to the Daraja emulator each), counted from the database timestamps
 *
 *   node bench/scaling.js --only=ledger,worker --rounds=3
 */
const { createHash, randomUUID } = require('node:crypto');
const { Resources, dist, sleep, REDIS_URL } = require('./support/env');
const { cannon, summarize, median, ussdWalkRequests } = require('./support/load');
const { startService, stopAll } = require('./support/processes');
const { startVendorStandIn } = require('./support/vendor-standin');

const args = Object.fromEntries(process.argv.slice(2).filter((a) => a.startsWith('--')).map((a) => a.slice(2).split('=')));
const ONLY = (args.only ?? 'ledger,web,worker').split(',');
const ROUNDS = Number(args.rounds ?? 3);
const LEDGER_SECONDS = Number(args['ledger-seconds'] ?? 4);
const WEB_SECONDS = Number(args['web-seconds'] ?? 8);
const JOBS = Number(args.jobs ?? 3000);
const SHARDS = 8;

const fmt = (n) => (Number.isFinite(n) ? n.toFixed(0) : String(n));

// ---------------------------------------------------------------- ledger

async function ledgerSection(resources) {
  const database = await resources.database('scaleledger');
  const { createDb } = dist('src/db/knex');
  const ledger = dist('src/ledger/ledger');
  const { fundPool } = dist('src/ledger/fund-pool');
  const db = createDb(database.url, { max: 40 });
  try {
    await fundPool(db, 10 ** 15, 'scaling bench');
    const issuance = await ledger.accountIdByCode(db, ledger.SYSTEM_ACCOUNTS.issuance);
    const pool = await ledger.accountIdByCode(db, ledger.SYSTEM_ACCOUNTS.pool);
    // The shards: more pool-kind rows, each funded from issuance through the ledger.
    const shards = [];
    for (let s = 0; s < SHARDS; s++) {
      const [row] = await db('accounts').insert({ code: `pool-shard-${s}`, kind: 'pool', must_not_overdraft: true }).returning('id');
      await ledger.createPostedTransfer(db, { id: `fund-shard-${s}`, debitAccountId: issuance, creditAccountId: row.id, amount: 10 ** 14, reference: 'bench' });
      shards.push(row.id);
    }
    await db.raw(`INSERT INTO customers (msisdn) SELECT '25479' || lpad(g::text, 7, '0') FROM generate_series(1, 32) g`);
    const customers = [];
    for (const c of await db('customers').orderBy('id').select('id')) customers.push(await ledger.ensureCustomerAccount(db, c.id));

    let seq = 0;
    const measure = async (clients, pickPool) => {
      const deadline = performance.now() + LEDGER_SECONDS * 1000;
      let pairs = 0;
      const start = performance.now();
      await Promise.all(
        Array.from({ length: clients }, async (_, w) => {
          while (performance.now() < deadline) {
            const id = `scale-${seq++}-${randomUUID()}`;
            await ledger.createPendingTransfer(db, { id, debitAccountId: pickPool(id), creditAccountId: customers[w], amount: 1000, reference: 'bench' });
            await ledger.resolvePendingTransfer(db, id, 'posted');
            pairs++;
          }
        }),
      );
      return pairs / ((performance.now() - start) / 1000);
    };
    const single = () => pool;
    const sharded = (id) => shards[createHash('sha1').update(id).digest().readUInt32BE(0) % SHARDS];
    await measure(4, single);
    const out = {};
    for (const c of [1, 8, 32]) out[c] = { single: [], sharded: [] };
    for (let r = 0; r < ROUNDS; r++) {
      for (const c of r % 2 ? [32, 8, 1] : [1, 8, 32]) {
        for (const [name, pick] of r % 2 ? [['sharded', sharded], ['single', single]] : [['single', single], ['sharded', sharded]]) {
          const v = await measure(c, pick);
          out[c][name].push(v);
          console.log(`  round ${r + 1} clients ${String(c).padStart(2)} ${name.padEnd(7)} ${fmt(v)} pairs/s`);
        }
      }
    }
    const problems = await ledger.checkBooks(db);
    console.log('\n  ledger: median reserve+post pairs/s (2 commits each, fsync on)');
    console.log('  clients   one pool row   8 pool rows   ratio');
    for (const c of [1, 8, 32]) {
      const a = median(out[c].single);
      const b = median(out[c].sharded);
      console.log(`  ${String(c).padStart(7)}   ${fmt(a).padStart(12)}   ${fmt(b).padStart(11)}   ${(b / a).toFixed(2)}`);
    }
    console.log(`  books: ${problems.length ? problems.join('; ') : 'balanced'}`);
  } finally {
    await db.destroy();
  }
}

// ---------------------------------------------------------------- web


async function webSection(resources) {
  const database = await resources.database('scaleweb');
  const prefix = resources.prefix('scaleweb');
  const knex = dist('src/db/knex').createDb(database.url, { max: 1 });
  await knex.raw(`INSERT INTO customers (msisdn) SELECT '2547' || lpad((10000000 + g)::text, 8, '0') FROM generate_series(0, 4999) g ON CONFLICT DO NOTHING`);
  await knex.destroy();
  // Per-phone request limits are for people, not for a load generator cycling 5,000 phones.
  const extraEnv = { USSD_REQUESTS_PER_MINUTE: '100000' };
  const webs = [
    await startService('scale-web-1', { role: 'web', databaseUrl: database.url, queuePrefix: prefix, extraEnv }),
    await startService('scale-web-2', { role: 'web', databaseUrl: database.url, queuePrefix: prefix, extraEnv }),
  ];
  let tag = 0;
  const load = async (targets, seconds) => {
    const results = await Promise.all(
      targets.map((w) =>
        cannon({ url: w.url, connections: Math.round(50 / targets.length), duration: seconds, requests: ussdWalkRequests(`w${tag++}-${Date.now()}`, 5000, w.ussdPath), verifyBody: (b) => typeof b === 'string' && b.startsWith('CON ') }),
      ),
    );
    const s = results.map(summarize);
    return { rps: s.reduce((n, x) => n + x.rps, 0), p99: Math.max(...s.map((x) => x.p99)), errors: s.reduce((n, x) => n + x.errors + x.non2xx + x.mismatches, 0) };
  };
  try {
    await load([webs[0]], 2);
    await load(webs, 2);
    const one = [];
    const two = [];
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, targets, into] of r % 2 ? [['2 web', webs, two], ['1 web', [webs[0]], one]] : [['1 web', [webs[0]], one], ['2 web', webs, two]]) {
        const v = await load(targets, WEB_SECONDS);
        into.push(v);
        console.log(`  round ${r + 1} ${name}: ${fmt(v.rps)} req/s  p99 ${v.p99} ms  errors ${v.errors}`);
        await sleep(500);
      }
    }
    const a = median(one.map((x) => x.rps));
    const b = median(two.map((x) => x.rps));
    console.log(`\n  web: median USSD req/s, 1 process ${fmt(a)}, 2 processes ${fmt(b)} (x${(b / a).toFixed(2)}), load generator on the same 2 cores`);
  } finally {
    for (const w of webs) await w.stop();
  }
}

// ---------------------------------------------------------------- worker

async function workerSection(resources) {
  const vendors = await startVendorStandIn();
  const { Queue } = require('bullmq');
  const { Redis } = require('ioredis');
  const { createDb } = dist('src/db/knex');
  const { fundPool } = dist('src/ledger/fund-pool');
  try {
    // The emulator keeps each push's prompt open (nobody answers): every run needs phones of its own.
    let phoneBase = 20_000_000;
    for (const kind of ['sms', 'buy']) {
      for (const workers of [1, 2, 1, 2].slice(0, ROUNDS >= 2 ? 4 : 2)) {
        const database = await resources.database(`scale${kind}${workers}${randomUUID().slice(0, 4)}`);
        const prefix = resources.prefix(`scale${kind}${workers}${randomUUID().slice(0, 4)}`);
        const db = createDb(database.url, { max: 4 });
        const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
        const queue = new Queue(kind === 'sms' ? 'sms' : 'buy-gold', { connection, prefix });
        const started = [];
        try {
          await fundPool(db, 10 ** 12, 'scaling bench');
          await db.raw(`INSERT INTO customers (msisdn) SELECT '2547' || lpad((? + g)::text, 8, '0') FROM generate_series(1, ?) g`, [phoneBase, JOBS]);
          phoneBase += JOBS;
          let ids;
          if (kind === 'sms') {
            ids = await db.raw(
              `INSERT INTO sms_messages (customer_id, msisdn, body, purpose, dedupe_key)
               SELECT id, msisdn, 'Bench message', 'bench', 'bench-' || id FROM customers RETURNING id`,
            );
            await queue.addBulk(ids.rows.map((r) => ({ name: 'sms', data: { smsId: r.id }, opts: { jobId: `sms-${r.id}`, attempts: 3 } })));
          } else {
            ids = await db.raw(
              `INSERT INTO orders (id, reference, kind, customer_id, msisdn, amount_cents, price_cents_per_gram, grams_ug, status, source_key)
               SELECT gen_random_uuid(), 'BNC' || lpad(id::text, 9, '0'), 'buy', id, msisdn, 10000, 850000, 11764, 'created', 'bench:' || id FROM customers RETURNING id`,
            );
            await db.raw(`INSERT INTO stk_payments (order_id, msisdn, amount_kes) SELECT id, msisdn, 100 FROM orders`);
            await queue.addBulk(ids.rows.map((r) => ({ name: 'buy', data: { orderId: r.id }, opts: { jobId: `buy-${r.id}`, attempts: 3 } })));
          }
          const commits = async () => Number((await db.raw('SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()')).rows[0].xact_commit);
          const commitsBefore = await commits();
          // Queued first, then the workers start: the rate is counted from the rows' own timestamps.
          for (let w = 0; w < workers; w++) {
            started.push(await startService(`scale-${kind}-worker-${w + 1}`, { role: 'worker', databaseUrl: database.url, queuePrefix: prefix, darajaUrl: vendors.darajaUrl, atUrl: vendors.atUrl }));
          }
          const doneSql =
            kind === 'sms'
              ? `SELECT count(*) FILTER (WHERE status = 'sent')::int AS done, extract(epoch from max(sent_at) - min(sent_at)) AS span FROM sms_messages`
              : `SELECT count(*) FILTER (WHERE accepted_at IS NOT NULL)::int AS done, extract(epoch from max(accepted_at) - min(accepted_at)) AS span FROM stk_payments`;
          const deadline = Date.now() + 180_000;
          let row;
          for (;;) {
            row = (await db.raw(doneSql)).rows[0];
            if (row.done >= JOBS || Date.now() > deadline) break;
            await sleep(250);
          }
          const rate = row.done / Number(row.span);
          // pg_stat counters are flushed lazily (stats_fetch_consistency / 1 s reports): wait for them to settle.
          await sleep(1500);
          const perJob = (await commits() - commitsBefore) / row.done;
          console.log(`  ${kind} jobs, ${workers} worker process(es): ${row.done}/${JOBS} done, ${fmt(rate)} jobs/s, ${perJob.toFixed(1)} commits per job (incl. the workers' own polling)`);
        } finally {
          for (const s of started) await s.stop();
          await queue.close();
          connection.disconnect();
          await db.destroy();
        }
      }
    }
  } finally {
    await vendors.close();
  }
}

async function main() {
  const resources = new Resources();
  try {
    if (ONLY.includes('ledger')) {
      console.log('[ledger]');
      await ledgerSection(resources);
    }
    if (ONLY.includes('web')) {
      console.log('\n[web]');
      await webSection(resources);
    }
    if (ONLY.includes('worker')) {
      console.log('\n[worker]');
      await workerSection(resources);
    }
  } finally {
    await stopAll();
    await resources.cleanup();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
