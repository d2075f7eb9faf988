'use strict';
/**
 * Child processes of the bench: the BUILT service (dist/src/start.js) in a role, and the comparison servers
 * (bench/servers/*.js). Each gets a free port on 127.0.0.1, its output in a log file, and is stopped with
 * SIGTERM (then SIGKILL after a bound). Every wait here has a deadline.
 */
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { ROOT, DIST, REDIS_URL, sleep } = require('./env');

const LOG_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'gold-bench-'));
const SANDBOX_PASSKEY = 'bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919';
const CALLBACK_SECRET = 'bench-callback-secret-6f1d2c';
// Africa's Talking's callbacks live under AT_CALLBACK_SECRET; the comparison servers keep plain /ussd.
const AT_CALLBACK_SECRET = 'bench-at-secret-4b9e1a7c';
const USSD_PATH = `/ussd/${AT_CALLBACK_SECRET}`;
const SERVICE_CODE = '*384*1#';
const DARAJA_CREDENTIALS = { consumerKey: 'bench-consumer-key', consumerSecret: 'bench-consumer-secret', shortcode: '174379', passkey: SANDBOX_PASSKEY };

const children = new Set();

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/**
 * Starts a node script as a child. `ready(log)` decides from its output (or by probing) when it is up.
 * Returns { pid, port, url, logFile, rssMiB(), stop() }.
 */
async function startNode(name, script, { env, port, args = [], ready, timeoutMs = 60_000 }) {
  const logFile = path.join(LOG_DIR, `${name}.log`);
  const out = fs.openSync(logFile, 'w');
  const child = spawn(process.execPath, [...args, script], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  children.add(child);
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  const handle = {
    name,
    pid: child.pid,
    port,
    url: port ? `http://127.0.0.1:${port}` : null,
    logFile,
    log: () => fs.readFileSync(logFile, 'utf8'),
    rssMiB: () => rssMiB(child.pid),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return children.delete(child);
      child.kill('SIGTERM');
      let timer;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 15_000)))]);
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      children.delete(child);
    },
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${name} exited during start-up (see ${logFile}):\n${handle.log().slice(-2000)}`);
    }
    if (await ready(handle)) return handle;
    if (Date.now() > deadline) {
      await handle.stop();
      throw new Error(`${name} did not start within ${timeoutMs} ms (see ${logFile}):\n${handle.log().slice(-2000)}`);
    }
    await sleep(100);
  }
}

/** GET url → status code, or 0 when nothing answers. */
function probe(url, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

/**
 * The built service in one role. Vendors point at 127.0.0.1 only: `darajaUrl` (the bench's Daraja stand-in, or
 * a closed port when nothing in the section calls Daraja) and `atUrl` for SMS.
 */
async function startService(name, { role, databaseUrl, queuePrefix, darajaUrl, atUrl, extraEnv = {}, nodeArgs = [], dist = DIST }) {
  const port = role === 'worker' ? 0 : await freePort();
  const webPort = port || 9; // a worker never serves the callback; the URL only travels in STK requests
  const env = {
    NODE_ENV: 'production',
    ROLE: role,
    PORT: String(port),
    LOG_LEVEL: 'info', // as in production; also how start-up is detected
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    QUEUE_PREFIX: queuePrefix,
    MPESA_ENVIRONMENT: 'sandbox',
    MPESA_BASE_URL: darajaUrl || 'http://127.0.0.1:9',
    MPESA_CONSUMER_KEY: DARAJA_CREDENTIALS.consumerKey,
    MPESA_CONSUMER_SECRET: DARAJA_CREDENTIALS.consumerSecret,
    MPESA_BUSINESS_SHORTCODE: DARAJA_CREDENTIALS.shortcode,
    MPESA_PASSKEY: DARAJA_CREDENTIALS.passkey,
    MPESA_CALLBACK_URL: `http://127.0.0.1:${webPort}/mpesa/callback/${CALLBACK_SECRET}`,
    AT_USERNAME: 'bench',
    AT_API_KEY: 'bench-at-key',
    AT_API_URL: atUrl || 'http://127.0.0.1:9',
    AT_CALLBACK_SECRET,
    USSD_SERVICE_CODE: SERVICE_CODE,
    GOLD_PRICE_KES_PER_GRAM: '8500',
    ...extraEnv,
  };
  // BENCH_SERVICE_NODE_ARGS: extra node flags for every service process (e.g. --max-old-space-size=96), to try them.
  const extraArgs = (process.env.BENCH_SERVICE_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const handle = await startNode(name, path.join(dist, 'src', 'start.js'), {
    env,
    port: port || null,
    args: [...extraArgs, ...nodeArgs],
    // runService logs "service started" once the app is mounted and the workers run.
    ready: async (h) => /"msg":"service started"/.test(h.log()),
  });
  handle.ussdPath = USSD_PATH;
  return handle;
}

/** One of the comparison servers in bench/servers (bare express, ussd-menu-builder). */
async function startServer(name, script, env = {}) {
  const port = await freePort();
  const handle = await startNode(name, path.join(ROOT, 'bench', 'servers', script), {
    env: { PORT: String(port), REDIS_URL, NODE_ENV: 'production', ...env },
    port,
    ready: async (h) => (await probe(`${h.url}/ready`)) === 200,
  });
  handle.ussdPath = '/ussd';
  return handle;
}

/** Resident set size of a process, from /proc (Linux); null elsewhere. */
function rssMiB(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1]);
    return Number.isFinite(kb) ? kb / 1024 : null;
  } catch {
    return null;
  }
}

/** Samples a process's RSS every `everyMs` until stopped; keeps the peak. */
function rssSampler(handle, everyMs = 200) {
  let peak = 0;
  let last = null;
  const samples = [];
  const timer = setInterval(() => {
    const v = handle.rssMiB();
    if (v === null) return;
    last = v;
    peak = Math.max(peak, v);
    if (samples.length < 100_000) samples.push(v);
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return { peakMiB: peak, lastMiB: last, samples: samples.length };
    },
  };
}

async function stopAll() {
  await Promise.allSettled([...children].map((c) => {
    c.kill('SIGKILL');
    return new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', r)));
  }));
  children.clear();
}

module.exports = { LOG_DIR, CALLBACK_SECRET, AT_CALLBACK_SECRET, USSD_PATH, SERVICE_CODE, DARAJA_CREDENTIALS, freePort, startService, startServer, rssSampler, stopAll, probe };

/**
 * CPU seconds used so far by: this process (the load generator), the given children, the Postgres backends serving
 * the bench's databases, and the Redis server (found by name in /proc; shared with whoever else uses it). Linux only;
 * an empty object elsewhere.
 */
function cpuSeconds(children = [], postgresDatabasePrefix = 'bench_') {
  const tick = 100; // USER_HZ on Linux
  const read = (pid) => {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) / tick;
    } catch {
      return 0;
    }
  };
  const out = { 'load generator (bench)': read(process.pid) };
  for (const c of children) out[c.name] = read(c.pid);
  let pg = 0;
  let redis = 0;
  try {
    for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
      let comm = '';
      try {
        comm = fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        continue;
      }
      if (comm === 'postgres' || comm.startsWith('postgres:')) {
        // Only the backends serving the bench's own databases: other users of this Postgres are not ours.
        let cmdline = '';
        try {
          cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        } catch {
          continue;
        }
        if (cmdline.includes(` ${postgresDatabasePrefix}`)) pg += read(pid);
      }
      else if (comm.startsWith('redis-server')) redis += read(pid);
    }
  } catch {
    return {};
  }
  out['postgres (bench backends)'] = pg;
  out['redis (whole server)'] = redis;
  return out;
}

function cpuDelta(before, after, wallS) {
  return Object.fromEntries(Object.keys(after).map((k) => [k, (after[k] - (before[k] ?? 0)) / wallS]));
}

module.exports.cpuSeconds = cpuSeconds;
module.exports.cpuDelta = cpuDelta;
