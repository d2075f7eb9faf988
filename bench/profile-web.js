'use strict';
/**
 * Where does the web process spend its CPU under the USSD walk load? Starts the built service (ROLE=web) with
 * --cpu-prof, drives it with autocannon for a while, stops it, and prints the functions with the most self time
 * (grouped by package / source file as well). Also counts the SQL statements Postgres ran per request
 * (pg_stat_statements is not needed: the database's xact/tuple counters are compared before and after).
 *
 *   npm run build && node bench/profile-web.js [seconds=10] [connections=50]
 *   node bench/profile-web.js --summarize some.cpuprofile      (any profile, e.g. from node --cpu-prof)
 */
const fs = require('node:fs');
const path = require('node:path');
const { Resources, dist } = require('./support/env');
const { cannon, summarize, ussdWalkRequests } = require('./support/load');
const { startService, stopAll, LOG_DIR, cpuSeconds, cpuDelta } = require('./support/processes');

async function main() {
  const seconds = Number(process.argv[2] ?? 10);
  const connections = Number(process.argv[3] ?? 50);
  const resources = new Resources();
  const profDir = path.join(LOG_DIR, 'cpuprofile');
  try {
    const db = await resources.database('profile');
    const prefix = resources.prefix('profile');
    const web = await startService('web-profile', { role: 'web', databaseUrl: db.url, queuePrefix: prefix, nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] });
    const knex = dist('src/db/knex').createDb(db.url, { max: 1 });
    await knex.raw(`INSERT INTO customers (msisdn) SELECT '2547' || lpad((10000000 + g)::text, 8, '0') FROM generate_series(0, 59999) g ON CONFLICT DO NOTHING`);
    const stats = async () => {
      const db = (await knex.raw(`SELECT xact_commit, tup_inserted, tup_updated, tup_fetched FROM pg_stat_database WHERE datname = current_database()`)).rows[0];
      for (const t of (await knex.raw(`SELECT relname, n_tup_ins + n_tup_upd + n_tup_del AS w FROM pg_stat_all_tables WHERE n_tup_ins + n_tup_upd + n_tup_del > 0`)).rows) db[`table ${t.relname}`] = Number(t.w);
      return db;
    };
    await new Promise((r) => setTimeout(r, 1500)); // let the statistics collector see the set-up rows first
    const before = await stats();
    const cpu0 = cpuSeconds([web]);
    const t0 = performance.now();
    const result = summarize(await cannon({ url: web.url, connections, duration: seconds, requests: ussdWalkRequests('prof', 60000, web.ussdPath), verifyBody: (b) => b.startsWith('CON ') }));
    const cpu = cpuDelta(cpu0, cpuSeconds([web]), (performance.now() - t0) / 1000);
    await new Promise((r) => setTimeout(r, 600)); // pg_stat_database is updated at most every 500 ms
    const after = await stats();
    await knex.destroy();
    console.log(`${result.rps.toFixed(0)} req/s, p99 ${result.p99} ms, ${result.requests} requests, failures ${result.errors + result.non2xx + result.mismatches}`);
    const per = (k) => ((after[k] - before[k]) / result.requests).toFixed(3);
    console.log(`per request: commits ${per('xact_commit')}, rows inserted ${per('tup_inserted')}, updated ${per('tup_updated')}, fetched ${per('tup_fetched')}`);
    console.log(`rows written per request by table: ${Object.keys(after).filter((k) => k.startsWith('table ') && after[k] !== (before[k] ?? 0)).map((k) => `${k.slice(6)} ${((after[k] - (before[k] ?? 0)) / result.requests).toFixed(3)}`).join(', ')}`);
    console.log(`CPU cores used during the load: ${Object.entries(cpu).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`);
    await web.stop();
    const file = fs.readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    summarizeProfile(path.join(profDir, file));
  } finally {
    await stopAll();
    await resources.cleanup();
  }
}

function summarizeProfile(file) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = new Map();
  for (let i = 0; i < prof.samples.length; i++) dt.set(prof.samples[i], (dt.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0));
  let total = 0;
  const fnSelf = new Map();
  const fileSelf = new Map();
  for (const [id, t] of dt) {
    const n = byId.get(id);
    total += t;
    const cf = n.callFrame;
    const where = cf.url ? cf.url.replace(/^file:\/\//, '').replace(/.*node_modules\//, 'nm:').replace(/.*\/dist\//, 'dist:') : '(native)';
    const key = `${cf.functionName || '(anonymous)'} ${where}:${cf.lineNumber + 1}`;
    fnSelf.set(key, (fnSelf.get(key) ?? 0) + t);
    const group = where.startsWith('nm:') ? where.split('/').slice(0, where.startsWith('nm:@') ? 2 : 1).join('/') : where.startsWith('dist:') ? where : where.startsWith('node:') ? 'node internals' : cf.functionName || where;
    fileSelf.set(group, (fileSelf.get(group) ?? 0) + t);
  }
  // Inclusive time per package / dist file: a sample counts for every package on its stack.
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const groupOf = (cf) => {
    const where = cf.url ? cf.url.replace(/^file:\/\//, '').replace(/.*node_modules\//, 'nm:').replace(/.*\/dist\//, 'dist:') : '';
    if (where.startsWith('nm:')) return where.split('/').slice(0, where.startsWith('nm:@') ? 2 : 1).join('/');
    if (where.startsWith('dist:')) return where;
    return null;
  };
  const inclusive = new Map();
  for (const [id, t] of dt) {
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const g = groupOf(byId.get(cur).callFrame);
      if (g && !seen.has(g)) {
        seen.add(g);
        inclusive.set(g, (inclusive.get(g) ?? 0) + t);
      }
    }
  }
  const top = (m, k) => [...m].sort((a, b) => b[1] - a[1]).slice(0, k).map(([name, t]) => `  ${((100 * t) / total).toFixed(1).padStart(5)}%  ${name}`).join('\n');
  console.log(`\nCPU profile ${file}\nself time by package/file:\n${top(fileSelf, 25)}\n\ninclusive time by package/file (a sample counts for every package on its stack):\n${top(inclusive, 30)}\n\nself time by function:\n${top(fnSelf, 30)}`);
  void self;
}

module.exports = { summarizeProfile };

if (require.main === module) {
  if (process.argv[2] === '--summarize') summarizeProfile(process.argv[3]);
  else
    main().catch((err) => {
      console.error(err);
      process.exit(1);
    });
}
