'use strict';
/**
 * Benchmark 5: reserve + post pairs per second on ONE hot pool account, with the ledger's own functions
 * (src/ledger/ledger.ts, built) against a real Postgres with durable commits. A pair is what a paid buy does to
 * the ledger: createPendingTransfer(pool -> customer) in one transaction, resolvePendingTransfer(posted) in
 * another. Each of `c` clients has its own customer account, so the only contended row is the pool's.
 * Concurrency levels are alternated round by round; the median per level is reported.
 */
const { dist } = require('./support/env');
const { median } = require('./support/load');

async function run({ resources, options, log }) {
  const database = await resources.database('ledger');
  const { createDb } = dist('src/db/knex');
  const ledger = dist('src/ledger/ledger');
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
    const measure = async (c, led = ledger) => {
      const deadline = performance.now() + options.ledgerDurationS * 1000;
      let pairs = 0;
      const start = performance.now();
      await Promise.all(
        Array.from({ length: c }, async (_, w) => {
          for (let k = 0; k < options.ledgerMaxPairs && performance.now() < deadline; k++) {
            const id = `bench-${c}-${w}-${seq++}`;
            await led.createPendingTransfer(db, { id, debitAccountId: pool, creditAccountId: accounts[w], amount: 1000, reference: 'bench' });
            await led.resolvePendingTransfer(db, id, 'posted');
            pairs++;
          }
        }),
      );
      return pairs / ((performance.now() - start) / 1000);
    };

    await measure(Math.min(4, maxLevel)); // warm-up: connections, plans
    const byLevel = Object.fromEntries(levels.map((c) => [c, []]));
    const variantByLevel = Object.fromEntries(levels.map((c) => [c, []]));
    for (let r = 0; r < options.rounds; r++) {
      const order = r % 2 === 0 ? levels : [...levels].reverse();
      for (const c of order) {
        const variantFirst = variant && r % 2 === 1;
        if (variantFirst) variantByLevel[c].push(await measure(c, variant));
        const perS = await measure(c);
        byLevel[c].push(perS);
        if (variant && !variantFirst) variantByLevel[c].push(await measure(c, variant));
        log(`  round ${r + 1} concurrency ${String(c).padStart(2)}: ${perS.toFixed(0)} pairs/s${variant ? `   variant ${variantByLevel[c][r].toFixed(0)} pairs/s` : ''}`);
      }
    }
    const books = await ledger.checkBooks(db);
    return {
      byLevel,
      medians: Object.fromEntries(levels.map((c) => [c, median(byLevel[c])])),
      best: Math.max(...levels.map((c) => median(byLevel[c]))),
      ...(variant ? { variantMedians: Object.fromEntries(levels.map((c) => [c, median(variantByLevel[c])])), variantByLevel } : {}),
      books,
      settings: { levels, durationS: options.ledgerDurationS, rounds: options.rounds },
    };
  } finally {
    await db.destroy();
  }
}

module.exports = { run };
