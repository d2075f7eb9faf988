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
const { startService, CALLBACK_SECRET } = require('./support/processes');
const { prepareStkSentOrders, paidCallback } = require('./support/orders');

async function run({ resources, options, log }) {
  const database = await resources.database('callbacks');
  const prefix = resources.prefix('callbacks');
  const { createDb } = dist('src/db/knex');
  const { checkBooks } = dist('src/ledger/ledger');
  const db = createDb(database.url, { max: 4 });
  let web;
  try {
    web = await startService('web-callbacks', { role: 'web', databaseUrl: database.url, queuePrefix: prefix });
    const rounds = [];
    for (let r = 0; r < options.rounds; r++) {
      const tag = `c${r}`;
      const prepStart = performance.now();
      const orders = await prepareStkSentOrders(db, { count: options.callbacks, tag, firstPhone: 100_000 + r * options.callbacks });
      log(`  round ${r + 1}: ${orders.length} orders in stk_sent prepared in ${((performance.now() - prepStart) / 1000).toFixed(1)} s; firing callbacks (${options.callbackConcurrency} at a time)`);
      const records = await fire({
        baseUrl: web.url,
        count: orders.length,
        concurrency: options.callbackConcurrency,
        make: (i) => ({ path: `/mpesa/callback/${CALLBACK_SECRET}`, body: JSON.stringify(paidCallback(orders[i])), headers: { 'content-type': 'application/json' } }),
        deadlineMs: 600_000,
      });
      const first = Math.min(...records.map((x) => x.start));
      const last = Math.max(...records.map((x) => x.end));
      const acked = records.filter((x) => x.status === 200).length;
      const ids = orders.map((o) => o.id);
      const settled = Number(
        (
          await db.raw(
            `SELECT count(*) n FROM orders o
               JOIN stk_payments p ON p.order_id = o.id AND p.mpesa_receipt IS NOT NULL
               JOIN sms_messages s ON s.dedupe_key = 'buy-receipt-' || o.id
               JOIN outbox ob ON ob.job_id = 'sms-' || s.id
              WHERE o.status = 'paid' AND o.id = ANY(?::uuid[])`,
            [ids],
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
        firstErrors: records.filter((x) => x.status !== 200).slice(0, 3).map((x) => `${x.status} ${x.body}`),
      };
      log(`  round ${r + 1}: ${acked}/${orders.length} acknowledged in ${seconds.toFixed(2)} s = ${round.ackPerS.toFixed(0)}/s; settled ${settled}, lost ${round.lost}; p99 ${round.p99.toFixed(1)} ms`);
      rounds.push(round);
    }
    const outcomes = (await db('mpesa_callbacks').select('outcome').count('* as n').groupBy('outcome')).map((r) => `${r.outcome}: ${r.n}`);
    const books = await checkBooks(db);
    return {
      rounds,
      medians: {
        ackPerS: median(rounds.map((r) => r.ackPerS)),
        settledPerS: median(rounds.map((r) => r.settledPerS)),
        allSettledAfterS: median(rounds.map((r) => r.allSettledAfterS ?? NaN)),
        p99: median(rounds.map((r) => r.p99)),
      },
      lost: rounds.reduce((n, r) => n + r.lost, 0),
      outcomes,
      books,
      settings: { callbacks: options.callbacks, concurrency: options.callbackConcurrency, rounds: options.rounds },
    };
  } finally {
    await web?.stop();
    await db.destroy();
  }
}

module.exports = { run };
