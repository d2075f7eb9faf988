'use strict';
/**
 * Benchmark 3: paid STK callbacks for prepared orders (stk_sent, reserved through the ledger) fired at the built
 * service (ROLE=web) as fast as it takes them. The service answers 200 only after the settlement transaction
 * (ledger post, order paid, receipt SMS + its outbox row, the raw callback) has committed, so the last
 * acknowledgement is the moment every acknowledged callback is settled; the database is then checked for every
 * order: paid, with its SMS row and outbox row (anything missing is "lost"), and the books are checked.
 */
const { dist } = require('./support/env');
const { fire, percentile, median } = require('./support/load');
const { startService, CALLBACK_SECRET, cpuSeconds } = require('./support/processes');
const { prepareStkSentOrders, paidCallback } = require('./support/orders');

/**
 * One contender: a web process with its own database; `fireRound` prepares `count` orders and fires their
 * callbacks. BENCH_COMPARE_DIST adds a second contender (another build) alternated round by round.
 */
async function contender(resources, name, distDir) {
  const database = await resources.database(`callbacks${name}`);
  const prefix = resources.prefix(`callbacks${name}`);
  const { createDb } = dist('src/db/knex');
  const db = createDb(database.url, { max: 4 });
  const web = await startService(`web-callbacks-${name}`, { role: 'web', databaseUrl: database.url, queuePrefix: prefix, ...(distDir ? { dist: distDir } : {}) });
  return { name, db, web };
}

async function fireRound(c, { tag, count, concurrency, firstPhone, log }) {
  const prepStart = performance.now();
  const orders = await prepareStkSentOrders(c.db, { count, tag, firstPhone });
  log(`  ${c.name} ${tag}: ${orders.length} orders in stk_sent prepared in ${((performance.now() - prepStart) / 1000).toFixed(1)} s; firing callbacks (${concurrency} at a time)`);
  const cpu0 = cpuSeconds([c.web]);
  const records = await fire({
    baseUrl: c.web.url,
    count: orders.length,
    concurrency,
    make: (i) => ({ path: `/mpesa/callback/${CALLBACK_SECRET}`, body: JSON.stringify(paidCallback(orders[i])), headers: { 'content-type': 'application/json' } }),
    deadlineMs: 600_000,
  });
  const cpu1 = cpuSeconds([c.web]);
  const first = Math.min(...records.map((x) => x.start));
  const last = Math.max(...records.map((x) => x.end));
  const acked = records.filter((x) => x.status === 200).length;
  const cpuUs = (k) => ((cpu1[k] - cpu0[k]) / records.length) * 1e6;
  const settled = Number(
    (
      await c.db.raw(
        `SELECT count(*) n FROM orders o
           JOIN stk_payments p ON p.order_id = o.id AND p.mpesa_receipt IS NOT NULL
           JOIN sms_messages s ON s.dedupe_key = 'buy-receipt-' || o.id
           JOIN outbox ob ON ob.job_id = 'sms-' || s.id
          WHERE o.status = 'paid' AND o.id = ANY(?::uuid[])`,
        [orders.map((o) => o.id)],
      )
    ).rows[0].n,
  );
  const seconds = (last - first) / 1000;
  const round = {
    callbacks: orders.length,
    acknowledged: acked,
    rejected: records.length - acked,
    notSent: orders.length - records.length,
    ackPerS: acked / seconds,
    settled,
    settledPerS: settled / seconds,
    allSettledAfterS: settled === orders.length ? seconds : null,
    lost: orders.length - settled,
    p50: percentile(records.map((x) => x.end - x.start), 50),
    p99: percentile(records.map((x) => x.end - x.start), 99),
    webCpuUsPerCallback: cpuUs(c.web.name),
    postgresCpuUsPerCallback: cpuUs('postgres (bench backends)'),
    cpuCoresBusy: ((cpu1[c.web.name] - cpu0[c.web.name]) + (cpu1['postgres (bench backends)'] - cpu0['postgres (bench backends)'])) / ((last - first) / 1000),
    firstErrors: records.filter((x) => x.status !== 200).slice(0, 3).map((x) => `${x.status} ${x.body}`),
  };
  log(`  ${c.name} ${tag}: ${acked}/${orders.length} acknowledged in ${seconds.toFixed(2)} s = ${round.ackPerS.toFixed(0)}/s; settled ${settled}, lost ${round.lost}; p99 ${round.p99.toFixed(1)} ms; CPU per callback: web ${round.webCpuUsPerCallback.toFixed(0)} µs, Postgres ${round.postgresCpuUsPerCallback.toFixed(0)} µs (${round.cpuCoresBusy.toFixed(2)} cores busy)`);
  return round;
}

async function run({ resources, options, log }) {
  const { checkBooks } = dist('src/ledger/ledger');
  const contenders = [];
  try {
    contenders.push(await contender(resources, 'service'));
    if (process.env.BENCH_COMPARE_DIST) contenders.push(await contender(resources, 'variant', process.env.BENCH_COMPARE_DIST));
    const rounds = [];
    const variantRounds = [];
    for (let r = 0; r < options.rounds; r++) {
      const order = r % 2 === 0 ? contenders : [...contenders].reverse();
      for (const c of order) {
        const round = await fireRound(c, { tag: `c${r}`, count: options.callbacks, concurrency: options.callbackConcurrency, firstPhone: 100_000 + r * options.callbacks, log });
        (c.name === 'service' ? rounds : variantRounds).push(round);
      }
      if (variantRounds[r]) log(`  round ${r + 1} variant/service settled/s ${(variantRounds[r].settledPerS / rounds[r].settledPerS).toFixed(2)}`);
    }
    const main = contenders[0];
    const outcomes = (await main.db('mpesa_callbacks').select('outcome').count('* as n').groupBy('outcome')).map((r) => `${r.outcome}: ${r.n}`);
    const books = await checkBooks(main.db);
    return {
      rounds,
      medians: {
        ackPerS: median(rounds.map((r) => r.ackPerS)),
        settledPerS: median(rounds.map((r) => r.settledPerS)),
        allSettledAfterS: median(rounds.map((r) => r.allSettledAfterS ?? NaN)),
        p99: median(rounds.map((r) => r.p99)),
        ...(variantRounds.length ? { variantSettledPerS: median(variantRounds.map((r) => r.settledPerS)), variantOverService: median(variantRounds.map((r, i) => r.settledPerS / rounds[i].settledPerS)) } : {}),
      },
      ...(variantRounds.length ? { variantRounds, variantBooks: await checkBooks(contenders[1].db) } : {}),
      lost: rounds.reduce((n, r) => n + r.lost, 0),
      outcomes,
      books,
      settings: { callbacks: options.callbacks, concurrency: options.callbackConcurrency, rounds: options.rounds },
    };
  } finally {
    for (const c of contenders) {
      await c.web.stop();
      await c.db.destroy();
    }
  }
}

module.exports = { run };
