'use strict';
/**
 * `npm run bench`: every benchmark of issue 6 in one run on this machine, against the BUILT service (dist/), then
 * a verdict table and docs/BENCHMARKS.md. Needs Postgres on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (override
 * with BENCH_ADMIN_DATABASE_URL / BENCH_REDIS_URL, loopback only); creates its own databases (bench_<run>_*) and
 * Redis prefix (bench<run>*) and removes them at the end, also on failure or Ctrl-C.
 *
 *   node bench/run.js                      everything, writes docs/BENCHMARKS.md
 *   node bench/run.js --only=ussd,ledger   some sections (census, ussd, callbacks, pipeline, ledger); does not write the doc
 *   node bench/run.js --quick              short runs, to check the bench itself works (does not write the doc)
 *   node bench/run.js --rounds=5           more alternations on a noisy machine
 *   node bench/run.js --write / --no-write force writing the doc, or not
 *   node bench/run.js --render=<dir>/results.json   rewrite the doc from a saved run (each run saves one in its log dir)
 *
 * A/B of a change: build the other version elsewhere (tsc -p tsconfig.build.json --outDir <dir>/dist) and set
 * BENCH_COMPARE_DIST=<dir>/dist: the ussd, callbacks and ledger sections then alternate it with this build and
 * print the ratio. BENCH_DIST=<dir>/dist measures another build instead of ./dist.
 */
const os = require('node:os');
const path = require('node:path');
const { ROOT, Resources, machine } = require('./support/env');
const { LOG_DIR, stopAll } = require('./support/processes');
const report = require('./report');

const SECTIONS = {
  census: () => require('./census'),
  ussd: () => require('./ussd-throughput'),
  callbacks: () => require('./stk-callbacks'),
  pipeline: () => require('./buy-pipeline'),
  ledger: () => require('./ledger-hot-account'),
};

function parseArgs(argv) {
  const args = Object.fromEntries(
    argv.filter((a) => a.startsWith('--')).map((a) => {
      const [k, v] = a.slice(2).split('=');
      return [k, v ?? true];
    }),
  );
  const quick = Boolean(args.quick);
  const int = (name, full, short) => {
    const v = args[name] !== undefined ? Number(args[name]) : quick ? short : full;
    if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} must be a positive integer`);
    return v;
  };
  const only = typeof args.only === 'string' ? args.only.split(',') : Object.keys(SECTIONS);
  for (const s of only) if (!SECTIONS[s]) throw new Error(`unknown section ${s}; choose from ${Object.keys(SECTIONS).join(', ')}`);
  const options = {
    rounds: int('rounds', 3, 1),
    // 1, 2, 6
    connections: int('connections', 50, 20),
    durationS: int('duration', 8, 2),
    warmupS: int('warmup', 3, 1),
    fixedRate: int('fixed-rate', 1000, 1000),
    fixedConnections: int('fixed-connections', 100, 100),
    fixedDurationS: int('fixed-duration', 10, 3),
    // 3
    callbacks: int('callbacks', 5000, 500),
    callbackConcurrency: int('callback-concurrency', 64, 32),
    // 4
    confirms: int('confirms', 2000, 300),
    confirmConcurrency: int('confirm-concurrency', 64, 32),
    pipelineWaitS: int('pipeline-wait', 120, 60),
    // 5
    ledgerConcurrency: typeof args['ledger-concurrency'] === 'string' ? args['ledger-concurrency'].split(',').map(Number) : [1, 8, 32],
    ledgerDurationS: int('ledger-duration', 5, 2),
    ledgerMaxPairs: 1_000_000,
  };
  const fullRun = !quick && only.length === Object.keys(SECTIONS).length;
  const writeDoc = args.write === true ? true : args['no-write'] ? false : fullRun;
  return { options, only, writeDoc, quick };
}

/** --render=<results.json>: write docs/BENCHMARKS.md again from a saved run (e.g. after editing bench/ANALYSIS.md). */
function render(file) {
  const saved = JSON.parse(require('node:fs').readFileSync(file, 'utf8'));
  const out = path.join(ROOT, 'docs', 'BENCHMARKS.md');
  const rows = report.verdicts(saved.results);
  report.write(out, report.markdown({ ...saved, rows, startedAt: new Date(saved.startedAt), notesFile: path.join(__dirname, 'ANALYSIS.md') }));
  console.log(`${report.consoleTable(rows)}\n\nwrote ${path.relative(ROOT, out)} from ${file}`);
}

async function main() {
  const renderArg = process.argv.find((a) => a.startsWith('--render='));
  if (renderArg) return render(renderArg.slice('--render='.length));
  const { options, only, writeDoc } = parseArgs(process.argv.slice(2));
  const command = `npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`;
  const startedAt = new Date();
  const resources = new Resources();
  let interrupted = false;
  const onSignal = async () => {
    if (interrupted) return;
    interrupted = true;
    console.error('\ninterrupted: stopping processes and removing the bench databases');
    await stopAll();
    await resources.cleanup().catch(() => undefined);
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const results = {};
  const sectionsLoad = [];
  let failed = null;
  let info;
  try {
    info = await machine(resources);
    console.log(`bench: ${info.nproc} × ${info.cpuModel}, ${info.memoryGiB} GiB, node ${info.node}, load average ${info.loadAverage.join(' ')}`);
    console.log(`       child process logs in ${LOG_DIR}`);
    if (Number(info.loadAverage[0]) > info.nproc * 0.5) console.log(`       note: the machine is already busy (load ${info.loadAverage[0]}): expect noisy figures`);
    for (const name of only) {
      console.log(`\n[${name}]`);
      const t0 = performance.now();
      results[name] = await SECTIONS[name]().run({ resources, options, log: (m) => console.log(m) });
      sectionsLoad.push({ name, load: os.loadavg()[0].toFixed(2) });
      console.log(`  (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    }
  } catch (err) {
    failed = err;
  } finally {
    await stopAll();
    await resources.cleanup();
  }
  if (failed) {
    console.error(`\nbench failed: ${failed.stack ?? failed.message}`);
    console.error(`child process logs: ${LOG_DIR}`);
    process.exit(1);
  }

  const rows = report.verdicts(results);
  const wallS = (Date.now() - startedAt.getTime()) / 1000;
  require('node:fs').writeFileSync(path.join(LOG_DIR, 'results.json'), JSON.stringify({ machine: info, options, results, command, startedAt, wallS, sectionsLoad }, null, 2));
  console.log(`\n${report.consoleTable(rows)}\n`);
  console.log('The machine is shared by the load generator, the service, Postgres and Redis; absolute figures are noisy, ratios are side by side.');
  if (writeDoc) {
    const file = path.join(ROOT, 'docs', 'BENCHMARKS.md');
    report.write(file, report.markdown({ rows, results, machine: info, command, startedAt, wallS, sectionsLoad, notesFile: path.join(__dirname, 'ANALYSIS.md') }));
    console.log(`wrote ${path.relative(ROOT, file)} (raw results: ${path.join(LOG_DIR, 'results.json')})`);
  } else {
    console.log('docs/BENCHMARKS.md not written (partial or --quick run; --write forces it)');
  }
  const missed = rows.filter((r) => r.verdict === 'MISSED').length;
  if (missed) console.log(`${missed} target(s) missed.`);
}

main();
