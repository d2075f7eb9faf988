'use strict';
/**
 * Load generators. `cannon` runs autocannon (keep-alive connections, optional fixed rate with coordinated-omission
 * correction); `fire` sends a fixed list of requests with bounded concurrency and records each one's timing,
 * for the benchmarks that must follow individual requests (callbacks, confirms).
 */
const http = require('node:http');
const autocannon = require('autocannon');

/** Runs autocannon and resolves with its result. Every run is bounded by duration (and amount when given). */
function cannon(opts) {
  return new Promise((resolve, reject) => {
    const instance = autocannon({ timeout: 10, ...opts }, (err, result) => (err ? reject(err) : resolve(result)));
    // autocannon never stops on its own when the target hangs: bound it once more from outside.
    const guard = setTimeout(() => instance.stop(), ((opts.duration ?? 30) + 30) * 1000);
    instance.on('done', () => clearTimeout(guard));
  });
}

/** The figures we keep of an autocannon result. */
function summarize(result) {
  const ok = (result['2xx'] ?? 0) - (result.mismatches ?? 0);
  return {
    rps: ok / result.duration,
    requests: result.requests.total,
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    max: result.latency.max,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    mismatches: result.mismatches ?? 0,
    durationS: result.duration,
  };
}

/**
 * Sends `count` requests built by `make(i)` ({ path, body, headers }) to `baseUrl`, `concurrency` at a time, over
 * keep-alive connections. Resolves with one record per request: { i, start, end, status, body } (ms, from
 * performance.now()); a request that fails has status 0. Bounded by count and by `deadlineMs` overall.
 */
async function fire({ baseUrl, count, concurrency, make, timeoutMs = 30_000, deadlineMs = 300_000, keepBody = false }) {
  const url = new URL(baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const records = new Array(count);
  const deadline = performance.now() + deadlineMs;
  let next = 0;
  const one = (i) =>
    new Promise((resolve) => {
      const { path, body, headers } = make(i);
      const payload = Buffer.from(body ?? '');
      const record = { i, start: performance.now(), end: 0, status: 0, body: '' };
      const req = http.request(
        { host: url.hostname, port: url.port, method: 'POST', path, agent, timeout: timeoutMs, headers: { ...headers, 'content-length': payload.length } },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            record.end = performance.now();
            record.status = res.statusCode ?? 0;
            if (keepBody || record.status !== 200) record.body = Buffer.concat(chunks).toString('utf8').slice(0, 500);
            resolve(record);
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err) => {
        record.end = performance.now();
        record.body = err.message;
        resolve(record);
      });
      req.end(payload);
    });
  const lanes = Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count && performance.now() < deadline) {
      const i = next++;
      records[i] = await one(i);
    }
  });
  await Promise.all(lanes);
  agent.destroy();
  return records.filter(Boolean);
}

/**
 * An open-loop load at a fixed rate with evenly spaced arrivals (request k is due at start + k / rate), the way
 * independent phones arrive. autocannon's overallRate instead lets every connection send its share of each second
 * back to back at the top of the second (lib/httpClient.js: reqsMadeThisSecond), i.e. bursts; both are reported.
 * Latency is measured from when a request was DUE, so a server that falls behind is charged for it (no
 * coordinated omission). `nextRequest(k)` returns { body, onAnswer(status, body) } for the k-th arrival.
 * Bounded by durationS and by a socket pool of `sockets`.
 */
async function paced({ baseUrl, path, headers, rate, durationS, sockets = 256, nextRequest, timeoutMs = 10_000 }) {
  const url = new URL(baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: sockets });
  const total = Math.floor(rate * durationS);
  const latencies = [];
  let failures = 0;
  // What the first failures were (status and the start of the body, or the socket error): a failure is explained.
  const failureSamples = [];
  const failed = (what) => {
    failures++;
    if (failureSamples.length < 5) failureSamples.push(what);
  };
  let inFlight = 0;
  let maxInFlight = 0;
  const start = performance.now() + 50;
  let k = 0;
  const send = (due, request) =>
    new Promise((resolve) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const payload = Buffer.from(request.body);
      const req = http.request(
        { host: url.hostname, port: url.port, method: 'POST', path, agent, timeout: timeoutMs, headers: { ...headers, 'content-length': payload.length } },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            latencies.push(performance.now() - due);
            const body = Buffer.concat(chunks).toString('utf8');
            if (!request.onAnswer(res.statusCode ?? 0, body)) failed(`${res.statusCode} ${body.slice(0, 60)}`);
            inFlight--;
            resolve();
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err) => {
        failed(`error ${err.code ?? err.message}`);
        latencies.push(performance.now() - due);
        inFlight--;
        resolve();
      });
      req.end(payload);
    });
  const pending = [];
  await new Promise((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (k < total && start + (k * 1000) / rate <= now) {
        pending.push(send(start + (k * 1000) / rate, nextRequest(k)));
        k++;
      }
      if (k >= total) return resolve();
      setTimeout(tick, Math.max(0, Math.min(5, start + (k * 1000) / rate - now)));
    };
    tick();
  });
  await Promise.all(pending);
  agent.destroy();
  const elapsedS = (performance.now() - start) / 1000;
  return { sent: total, rps: (total - failures) / elapsedS, p50: percentile(latencies, 50), p90: percentile(latencies, 90), p99: percentile(latencies, 99), max: Math.max(...latencies), failures, failureSamples, maxInFlight };
}

function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx];
}

function median(values) {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length === 0) return NaN;
  const sorted = [...v].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Form body as Africa's Talking sends it. */
function ussdForm({ sessionId, phoneNumber, text, serviceCode = '*384*1#' }) {
  return new URLSearchParams({ sessionId, serviceCode, phoneNumber, networkCode: '63902', text }).toString();
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/**
 * autocannon requests for one USSD walk per session: main menu -> amount -> confirm screen (never the
 * final confirm, which would place orders). Each walk gets a new sessionId and one of `phones` numbers.
 */
function ussdWalkRequests(tag, phones, ussdPath) {
  if (!ussdPath) throw new Error('ussdWalkRequests needs the USSD path (the service: /ussd/<AT_CALLBACK_SECRET>)');
  const { phone } = require('./env');
  let counter = 0;
  const step = (text) => ({
    method: 'POST',
    path: ussdPath,
    headers: FORM,
    setupRequest: (req, ctx) => {
      if (text === '') {
        const n = counter++;
        ctx.sessionId = `${tag}-${n}`;
        ctx.phoneNumber = `+${phone(n % phones)}`;
      }
      return { ...req, body: ussdForm({ sessionId: ctx.sessionId, phoneNumber: ctx.phoneNumber, text }) };
    },
  });
  return [step(''), step('1'), step('1*500')];
}

module.exports = { cannon, summarize, fire, paced, percentile, median, ussdForm, ussdWalkRequests, FORM };
