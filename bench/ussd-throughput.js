'use strict';
/**
 * Benchmarks 1, 2 and 6: POST /ussd of the built service (ROLE=web, sessions in Redis) against a bare express
 * handler answering a constant CON (this hardware's limit) and against the same screens written with
 * ussd-menu-builder (the peer), alternated round by round; then the service at a fixed 1,000 requests/s for its
 * p99; the web process's resident memory is sampled throughout.
 *
 * Every autocannon connection walks sessions of its own: main menu -> amount -> confirm screen, a new sessionId
 * for each walk (the final confirm is not sent: it would place orders; benchmark 4 measures that).
 */
const { dist, phone, sleep } = require('./support/env');
const { cannon, summarize, paced, median, ussdForm, ussdWalkRequests, FORM } = require('./support/load');
const { startService, startServer, rssSampler, cpuSeconds } = require('./support/processes');

// Returning customers, cycled by the sessions: enough that no phone comes near USSD_REQUESTS_PER_MINUTE (30 by
// default) at several thousand requests per second, as with real, distinct callers.
const PHONES = 60_000;


const isCon = (body) => typeof body === 'string' && body.startsWith('CON ');

/** For the paced load: arrivals continue open walks (main menu -> amount -> confirm screen) or start new ones. */
function pacedWalks(tag) {
  const ready = [];
  let counter = 0;
  const texts = ['', '1', '1*500'];
  return (k) => {
    let walk = ready.shift();
    if (!walk) {
      const n = counter++;
      walk = { sessionId: `${tag}-${n}`, phoneNumber: `+${phone((n * 7919) % PHONES)}`, step: 0 };
    }
    const text = texts[walk.step];
    void k;
    return {
      body: ussdForm({ sessionId: walk.sessionId, phoneNumber: walk.phoneNumber, text }),
      onAnswer: (status, body) => {
        walk.step++;
        if (walk.step < texts.length) ready.push(walk);
        return status === 200 && isCon(body);
      },
    };
  };
}

async function run({ resources, options, log }) {
  const db = await resources.database('ussd');
  const prefix = resources.prefix('ussd');
  const started = [];
  try {
    const web = await startService('web-ussd', { role: 'web', databaseUrl: db.url, queuePrefix: prefix });
    started.push(web);
    // Returning customers: the phones exist, as for most sessions of a live service.
    const knex = dist('src/db/knex').createDb(db.url, { max: 1 });
    await knex.raw(`INSERT INTO customers (msisdn) SELECT '2547' || lpad((10000000 + g)::text, 8, '0') FROM generate_series(0, ?) g ON CONFLICT DO NOTHING`, [PHONES - 1]);
    await knex.destroy();
    const bare = await startServer('bare-ussd', 'bare-ussd.js');
    started.push(bare);
    const peer = await startServer('peer-ussd', 'peer-ussd-menu-builder.js', { PEER_PREFIX: `${prefix}:peer` });
    started.push(peer);

    const contenders = { bare, service: web, peer };
    // BENCH_COMPARE_DIST: a second build of the service, alternated with the first (A/B of a change).
    if (process.env.BENCH_COMPARE_DIST) {
      const variantDb = await resources.database('ussdvariant');
      const vknex = dist('src/db/knex').createDb(variantDb.url, { max: 1 });
      await vknex.raw(`INSERT INTO customers (msisdn) SELECT '2547' || lpad((10000000 + g)::text, 8, '0') FROM generate_series(0, ?) g ON CONFLICT DO NOTHING`, [PHONES - 1]);
      await vknex.destroy();
      contenders.variant = await startService('web-ussd-variant', { role: 'web', databaseUrl: variantDb.url, queuePrefix: resources.prefix('ussdvariant'), dist: process.env.BENCH_COMPARE_DIST });
      started.push(contenders.variant);
    }
    const idleRssMiB = web.rssMiB();
    let walks = 0;
    const load = async (name, extra = {}) => {
      const target = contenders[name];
      const cpu0 = cpuSeconds([target]);
      const result = await cannon({
        url: target.url,
        connections: options.connections,
        duration: options.durationS,
        requests: ussdWalkRequests(`${name}-${walks++}-${Date.now()}`, PHONES, target.ussdPath),
        verifyBody: isCon,
        ...extra,
      });
      const cpu1 = cpuSeconds([target]);
      const summary = summarize(result);
      // CPU time per answered request: far less sensitive to a busy machine than requests/s.
      const per = (k) => (summary.requests ? ((cpu1[k] - cpu0[k]) / summary.requests) * 1e6 : NaN);
      return { ...summary, cpuUsPerRequest: per(target.name), postgresUsPerRequest: per('postgres (bench backends)') };
    };

    log(`  warm-up (${options.warmupS} s each)`);
    for (const name of Object.keys(contenders)) await load(name, { duration: options.warmupS });

    const rss = rssSampler(web);
    const rounds = [];
    const fixedRate = [];
    const paced_ = [];
    const names = Object.keys(contenders);
    for (let r = 0; r < options.rounds; r++) {
      const round = {};
      for (const name of [...names.slice(r % names.length), ...names.slice(0, r % names.length)]) {
        round[name] = await load(name);
        log(`  round ${r + 1} ${name.padEnd(7)} ${round[name].rps.toFixed(0).padStart(6)} req/s  p99 ${round[name].p99} ms  errors ${round[name].errors + round[name].non2xx + round[name].mismatches}  CPU/request: process ${round[name].cpuUsPerRequest.toFixed(0)} µs, Postgres ${round[name].postgresUsPerRequest.toFixed(0)} µs`);
        await sleep(500);
      }
      round.serviceOverBare = round.service.rps / round.bare.rps;
      round.serviceOverPeer = round.service.rps / round.peer.rps;
      round.peerOverBare = round.peer.rps / round.bare.rps;
      if (round.variant) {
        round.variantOverService = round.variant.rps / round.service.rps;
        log(`  round ${r + 1} variant/service ${round.variantOverService.toFixed(2)}`);
      }
      rounds.push(round);
      // The latency target: the service at a fixed 1,000 requests/s (latencies corrected for coordinated omission).
      const fixed = await load('service', { overallRate: options.fixedRate, connections: options.fixedConnections, duration: options.fixedDurationS });
      log(`  round ${r + 1} service at ${options.fixedRate}/s: p50 ${fixed.p50} ms  p99 ${fixed.p99} ms  achieved ${fixed.rps.toFixed(0)} req/s  errors ${fixed.errors + fixed.non2xx + fixed.mismatches}`);
      fixedRate.push(fixed);
      await sleep(500);
      const even = await paced({ baseUrl: web.url, path: web.ussdPath, headers: FORM, rate: options.fixedRate, durationS: options.fixedDurationS, nextRequest: pacedWalks(`paced-${r}-${Date.now()}`) });
      log(`  round ${r + 1} service at ${options.fixedRate}/s evenly spaced: p50 ${even.p50.toFixed(1)} ms  p99 ${even.p99.toFixed(1)} ms  achieved ${even.rps.toFixed(0)} req/s  failures ${even.failures}${even.failures ? ` (${even.failureSamples.join('; ')})` : ''}`);
      paced_.push(even);
      await sleep(500);
    }
    const memory = rss.stop();
    return {
      rounds,
      fixedRate,
      medians: {
        bareRps: median(rounds.map((r) => r.bare.rps)),
        serviceRps: median(rounds.map((r) => r.service.rps)),
        peerRps: median(rounds.map((r) => r.peer.rps)),
        serviceOverBare: median(rounds.map((r) => r.serviceOverBare)),
        serviceOverPeer: median(rounds.map((r) => r.serviceOverPeer)),
        peerOverBare: median(rounds.map((r) => r.peerOverBare)),
        cpuUsPerRequest: Object.fromEntries(names.map((n) => [n, median(rounds.map((r) => r[n].cpuUsPerRequest))])),
        postgresUsPerRequest: Object.fromEntries(names.map((n) => [n, median(rounds.map((r) => r[n].postgresUsPerRequest))])),
        ...(contenders.variant ? { variantOverService: median(rounds.map((r) => r.variantOverService)), variantRps: median(rounds.map((r) => r.variant.rps)) } : {}),
        fixedP99: median(fixedRate.map((f) => f.p99)),
        fixedP50: median(fixedRate.map((f) => f.p50)),
        fixedAchievedRps: median(fixedRate.map((f) => f.rps)),
        pacedP99: median(paced_.map((f) => f.p99)),
        pacedP50: median(paced_.map((f) => f.p50)),
        pacedAchievedRps: median(paced_.map((f) => f.rps)),
      },
      paced: paced_,
      failures:
        [...rounds.flatMap((r) => [r.bare, r.service, r.peer]), ...fixedRate].reduce((n, s) => n + s.errors + s.non2xx + s.mismatches, 0) +
        paced_.reduce((n, s) => n + s.failures, 0),
      memory: { idleMiB: idleRssMiB, ...memory },
      settings: { connections: options.connections, durationS: options.durationS, fixedConnections: options.fixedConnections, fixedDurationS: options.fixedDurationS, phones: PHONES },
    };
  } finally {
    for (const p of started.reverse()) await p.stop();
  }
}

module.exports = { run };
