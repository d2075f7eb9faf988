'use strict';
/**
 * Benchmark 5: reserve + post pairs per second on ONE hot pool account, with the ledger's own code (built) against
 * a real Postgres with durable commits. A pair is what a paid buy does to the ledger: a reservation (pool ->
 * customer), committed, then its post, committed. Each of `c` clients has its own customer account, so the only
 * contended row is the pool's. Two ways, measured alternately in the same run:
 *  - batched (the target): every client calls LedgerBatcher (src/ledger/ledger-batcher.ts), which applies the
 *    concurrent callers' reservations, and then their posts, N per statement and commit;
 *  - one by one: createPendingTransfer and resolvePendingTransfer, one statement and one commit each.
 * Concurrency levels are alternated round by round; the median per level is reported.
 */
const { dist } = require('./support/env');
const { median } = require('./support/load');

async function run({ resources, options, log }) {
  const database = await resources.database('ledger');
  const { createDb } = dist('src/db/knex');
  const ledger = dist('src/ledger/ledger');
  const { LedgerBatcher } = dist('src/ledger/ledger-batcher');
  const { fundPool } = dist('src/ledger/fund-pool');
  const levels = options.ledgerConcurrency;
  const maxLevel = Math.max(...levels);
  const db = createDb(database.url, { max: maxLevel + 2 });
  try {
    await fundPool(db, 10 ** 15, 'bench ledger');
    const pool = await ledger.accountIdByCode(db, ledger.SYSTEM_ACCOUNTS.pool);
    await db.raw(`INSERT INTO customers (msisdn) SELECT '25479' || lpad(g::text, 7, '0') FROM generate_series(1, ?) g`, [maxLevel]);
    const customerIds = (await db('customers').orderBy('id').select('id')).map((c) => c.id);
    const accounts = [];
    for (const id of customerIds) accounts.push(await ledger.ensureCustomerAccount(db, id));

    let seq = 0;
    // BENCH_COMPARE_DIST: the same pairs through another build's ledger, alternated with this one.
    const variant = process.env.BENCH_COMPARE_DIST ? require(require('node:path').join(process.env.BENCH_COMPARE_DIST, 'src', 'ledger', 'ledger')) : null;
    const oneByOne = (led) => ({
      reserve: (t) => led.createPendingTransfer(db, t),
      post: (id) => led.resolvePendingTransfer(db, id, 'posted'),
    });
    const batched = (Batcher) => {
      const b = new Batcher(db);
      return { reserve: (t) => b.reserve(t), post: (id) => b.resolve(id, 'posted') };
    };
    const measure = async (c, way) => {
      const deadline = performance.now() + options.ledgerDurationS * 1000;
      let pairs = 0;
      const start = performance.now();
      await Promise.all(
        Array.from({ length: c }, async (_, w) => {
          for (let k = 0; k < options.ledgerMaxPairs && performance.now() < deadline; k++) {
            const id = `bench-${c}-${w}-${seq++}`;
            const reserved = await way.reserve({ id, debitAccountId: pool, creditAccountId: accounts[w], amount: 1000, reference: 'bench' });
            if (reserved !== 'created') throw new Error(`reservation ${id}: ${reserved}`);
            const posted = await way.post(id);
            if (posted.result !== 'resolved') throw new Error(`post ${id}: ${posted.result}`);
            pairs++;
          }
        }),
      );
      return pairs / ((performance.now() - start) / 1000);
    };
    const ways = { batched: batched(LedgerBatcher), oneByOne: oneByOne(ledger) };

    await measure(Math.min(4, maxLevel), ways.oneByOne); // warm-up: connections, plans
    await measure(Math.min(4, maxLevel), ways.batched);
    const byLevel = Object.fromEntries(levels.map((c) => [c, []]));
    const oneByOneByLevel = Object.fromEntries(levels.map((c) => [c, []]));
    const variantByLevel = Object.fromEntries(levels.map((c) => [c, []]));
    for (let r = 0; r < options.rounds; r++) {
      const order = r % 2 === 0 ? levels : [...levels].reverse();
      for (const c of order) {
        // Alternate which way goes first, so neither always runs on a warmer (or more bloated) pool row.
        const first = r % 2 === 0;
        if (!first) oneByOneByLevel[c].push(await measure(c, ways.oneByOne));
        const perS = await measure(c, ways.batched);
        byLevel[c].push(perS);
        if (first) oneByOneByLevel[c].push(await measure(c, ways.oneByOne));
        if (variant) variantByLevel[c].push(await measure(c, oneByOne(variant)));
        log(`  round ${r + 1} concurrency ${String(c).padStart(2)}: batched ${perS.toFixed(0)} pairs/s, one by one ${oneByOneByLevel[c][r].toFixed(0)} pairs/s${variant ? `   variant (one by one) ${variantByLevel[c][r].toFixed(0)} pairs/s` : ''}`);
      }
    }
    const books = await ledger.checkBooks(db);
    return {
      byLevel,
      medians: Object.fromEntries(levels.map((c) => [c, median(byLevel[c])])),
      best: Math.max(...levels.map((c) => median(byLevel[c]))),
      oneByOneByLevel,
      oneByOneMedians: Object.fromEntries(levels.map((c) => [c, median(oneByOneByLevel[c])])),
      ...(variant ? { variantMedians: Object.fromEntries(levels.map((c) => [c, median(variantByLevel[c])])), variantByLevel } : {}),
      books,
      settings: { levels, durationS: options.ledgerDurationS, rounds: options.rounds },
    };
  } finally {
    await db.destroy();
  }
}

module.exports = { run };
