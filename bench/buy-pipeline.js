'use strict';
/**
 * Benchmark 4: the buy pipeline, from the USSD confirm (POST /ussd, text 1*500*1) to the STK Push arriving at the
 * Daraja stand-in. The built service runs as one ROLE=web and one ROLE=worker process; between them: the order
 * transaction, the outbox relay to BullMQ (Redis), the buy job (reserve on the pool, token, STK Push).
 * Sessions are walked to the confirm screen first (not timed), then all confirms are fired as fast as the web
 * process takes them; per order, latency = push arrival - confirm sent; throughput = orders / (last arrival -
 * first confirm).
 */
const { dist, phone, sleep } = require('./support/env');
const { fire, percentile, median, ussdForm, FORM } = require('./support/load');
const { startService, cpuSeconds } = require('./support/processes');
const { startVendorStandIn } = require('./support/vendor-standin');

async function run({ resources, options, log }) {
  const database = await resources.database('pipeline');
  const prefix = resources.prefix('pipeline');
  const { createDb } = dist('src/db/knex');
  const { fundPool } = dist('src/ledger/fund-pool');
  const { checkBooks } = dist('src/ledger/ledger');
  const { ussdSourceKey } = dist('src/ussd/session-store');
  const db = createDb(database.url, { max: 2 });
  const standIn = await startVendorStandIn();
  const started = [];
  try {
    const common = { databaseUrl: database.url, queuePrefix: prefix, darajaUrl: standIn.darajaUrl, atUrl: standIn.atUrl };
    const web = await startService('web-pipeline', { role: 'web', ...common });
    started.push(web);
    const worker = await startService('worker-pipeline', { role: 'worker', ...common });
    started.push(worker);
    await fundPool(db, 1_000_000 * 1_000_000, 'bench pipeline'); // 1 t: never the limit

    const rounds = [];
    // A warm-up round (not counted), as the other sections have: the worker's first jobs compile its code and open
    // its connections. Its phones are its own (the rounds' phones are new customers, as before). A full round: with
    // 300 confirms, the first measured round was still 20 to 25 % slower than the others in every run, in every
    // process (the bench's own client included), so it measured the warm-up rather than the service.
    const WARMUP = options.confirms;
    for (let r = -1; r < options.rounds; r++) {
      const warmup = r < 0;
      const n = warmup ? WARMUP : options.confirms;
      // The warm-up's phones come after every round's, so that each round's customers are new whatever --confirms is.
      const firstPhone = 300_000 + (warmup ? options.rounds : r) * options.confirms;
      const sessions = Array.from({ length: n }, (_, i) => ({ sessionId: `pipe-${r}-${i}-${Date.now()}`, phoneNumber: `+${phone(firstPhone + i)}` }));
      for (const text of ['', '1', '1*500']) {
        const walked = await fire({ baseUrl: web.url, count: n, concurrency: 32, keepBody: true, make: (i) => ({ path: web.ussdPath, headers: FORM, body: ussdForm({ ...sessions[i], text }) }) });
        const bad = walked.filter((x) => !x.body.startsWith('CON '));
        if (bad.length) throw new Error(`walking to the confirm screen failed for ${bad.length} sessions, e.g. ${bad[0].status} ${bad[0].body}`);
      }
      const arrivalsBefore = standIn.arrivals.size;
      log(`  ${warmup ? 'warm-up' : `round ${r + 1}`}: ${n} sessions on the confirm screen; firing confirms (${options.confirmConcurrency} at a time)`);
      const cpu0 = cpuSeconds([web, worker]);
      const confirms = await fire({ baseUrl: web.url, count: n, concurrency: options.confirmConcurrency, keepBody: true, make: (i) => ({ path: web.ussdPath, headers: FORM, body: ussdForm({ ...sessions[i], text: '1*500*1' }) }) });
      const accepted = confirms.filter((x) => x.body.startsWith('END Request received')).length;
      const deadline = performance.now() + options.pipelineWaitS * 1000;
      while (standIn.arrivals.size - arrivalsBefore < accepted && performance.now() < deadline) await sleep(20);
      const cpu1 = cpuSeconds([web, worker]);
      const cpuMs = (k) => ((cpu1[k] - cpu0[k]) / n) * 1000;

      // An order's source is the phone and the session together (ussdSourceKey).
      const sourceOf = (s) => ussdSourceKey(s.phoneNumber.replace(/^\+/, ''), s.sessionId);
      const placed = await db('orders').whereIn('source_key', sessions.map(sourceOf)).select('reference', 'source_key');
      const sentAt = new Map(sessions.map((s, i) => [sourceOf(s), confirms[i]?.start]));
      const latencies = [];
      let lastArrival = 0;
      for (const o of placed) {
        const arrived = standIn.arrivals.get(o.reference);
        if (arrived === undefined) continue;
        latencies.push(arrived - sentAt.get(o.source_key));
        lastArrival = Math.max(lastArrival, arrived);
      }
      const firstConfirm = Math.min(...confirms.map((x) => x.start));
      const seconds = (lastArrival - firstConfirm) / 1000;
      const round = {
        confirms: n,
        confirmsAnswered: accepted,
        ordersPlaced: placed.length,
        pushesArrived: latencies.length,
        perS: latencies.length / seconds,
        seconds,
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        max: Math.max(...latencies),
        confirmHttpP99: percentile(confirms.map((x) => x.end - x.start), 99),
        refused: standIn.refused.slice(0, 3),
        cpuMsPerBuy: { web: cpuMs(web.name), worker: cpuMs(worker.name), postgres: cpuMs('postgres (bench backends)'), benchAndStandIn: cpuMs('load generator (bench)') },
      };
      log(`  ${warmup ? 'warm-up' : `round ${r + 1}`}: ${latencies.length}/${n} pushes arrived in ${seconds.toFixed(2)} s = ${round.perS.toFixed(0)}/s; confirm->push p50 ${round.p50.toFixed(0)} ms p99 ${round.p99.toFixed(0)} ms; confirm answer p99 ${round.confirmHttpP99.toFixed(1)} ms; CPU per buy: ${Object.entries(round.cpuMsPerBuy).map(([k, v]) => `${k} ${v.toFixed(2)} ms`).join(', ')}`);
      if (!warmup) rounds.push(round);
      await sleep(500);
    }
    const statuses = (await db('orders').select('status').count('* as n').groupBy('status')).map((x) => `${x.status}: ${x.n}`);
    return {
      rounds,
      medians: {
        perS: median(rounds.map((r) => r.perS)),
        p50: median(rounds.map((r) => r.p50)),
        p99: median(rounds.map((r) => r.p99)),
        confirmHttpP99: median(rounds.map((r) => r.confirmHttpP99)),
      },
      missing: rounds.reduce((m, r) => m + (r.confirms - r.pushesArrived), 0),
      statuses,
      books: await checkBooks(db),
      settings: { confirms: options.confirms, concurrency: options.confirmConcurrency, rounds: options.rounds, warmup: WARMUP, workerConcurrency: 'BUY_WORKER_CONCURRENCY, default 64' },
    };
  } finally {
    for (const p of started.reverse()) await p.stop();
    await standIn.close();
    await db.destroy();
  }
}

module.exports = { run };
