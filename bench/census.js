'use strict';
/**
 * The census: how many SQL statements, Redis commands and commits each operation of the built service costs, and
 * how many statements run while the pool account row is locked (from its UPDATE to COMMIT: every other
 * reservation and settlement waits that long). Unlike throughput these counts do not depend on how busy the
 * machine is, so they show what a change saves even on a noisy box.
 *
 * Runs the service's web role IN this process (runService, built) against a throw-away database, with the vendor
 * stand-in, and counts through knex's query events and a wrapper around ioredis' sendCommand.
 *
 *   node bench/census.js            prints the table (also part of `npm run bench`)
 */
const http = require('node:http');
const { Resources, REDIS_URL, dist, phone } = require('./support/env');
const { ussdForm, FORM } = require('./support/load');
const { AT_CALLBACK_SECRET, CALLBACK_SECRET, DARAJA_CREDENTIALS, SERVICE_CODE, USSD_PATH } = require('./support/processes');
const { startVendorStandIn } = require('./support/vendor-standin');

function post(url, path, body, headers) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({ host: u.hostname, port: u.port, path, method: 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
      let data = '';
      res.on('data', (c) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode, body: data }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Counts statements and Redis commands between start() and stop(). */
function counter(db, poolId) {
  let on = false;
  let c;
  const locked = new Map(); // connection -> holding the pool row
  const inTransaction = new Map(); // connection -> between BEGIN and COMMIT/ROLLBACK
  const autocommitWrites = new Set(); // query uids of writes outside a transaction, awaiting their answer
  const reset = () => (c = { statements: 0, commits: 0, redis: 0, redisByCommand: {}, underPoolLock: 0, poolLocks: 0 });
  reset();
  db.on('query', (q) => {
    if (!on) return;
    const sql = q.sql.trim();
    c.statements++;
    if (process.env.CENSUS_TRACE) console.log('    ', q.__knexTxId ?? '-', sql.replace(/\s+/g, ' ').slice(0, 110));
    const conn = q.__knexUid;
    // The ledger's SQL functions (migration 017, SELECT ledger_…) write too.
    const write = /^(insert|update|delete)\b/i.test(sql) || /^select\b[^;]*\bledger_(apply|create_transfers|resolve_transfers)\(/i.test(sql) || (/^with\b/i.test(sql) && /\b(insert\s+into|update\s+"?\w+"?\s+(\w+\s+)?set|delete\s+from)\b/i.test(sql));
    // A commit with a WAL flush: COMMIT of a transaction, or a write statement outside one (autocommit).
    if (/^begin/i.test(sql)) inTransaction.set(conn, true);
    if (/^commit/i.test(sql)) c.commits++;
    // A write outside a transaction commits by itself: counted when its answer shows it wrote (below).
    else if (write && !inTransaction.get(conn)) autocommitWrites.add(q.__knexQueryUid);
    if (locked.get(conn)) c.underPoolLock++;
    // Every balance move in these flows involves the pool: the statement that moves balances takes its row lock
    // (old code: UPDATE "accounts" ... WHERE id = pool; one-statement code: WITH ... UPDATE accounts a ...).
    // The batched functions of migration 017 (ledger_create_transfers / ledger_resolve_transfers) lock every account of
    // the batch, the pool's included, inside the one statement.
    const movesBalances = (/^update "accounts"/i.test(sql) && Array.isArray(q.bindings) && q.bindings[q.bindings.length - 1] === poolId) || /\bupdate\s+accounts\s+a\s+set\b/i.test(sql) || /\bledger_(create|resolve)_transfers\(/i.test(sql);
    if (movesBalances && !locked.get(conn)) {
      c.poolLocks++;
      if (inTransaction.get(conn)) locked.set(conn, true); // in autocommit the lock ends with the statement
    }
    if (/^(commit|rollback)/i.test(sql)) {
      locked.set(conn, false);
      inTransaction.set(conn, false);
    }
  });
  db.on('query-response', (response, q) => {
    if (!on || !autocommitWrites.delete(q.__knexQueryUid)) return;
    // findOrCreateCustomer's read-first form (WITH found AS ...) answers `created: false` when it only read: no row
    // version, no WAL flush. (The older upsert form wrote a new row version even then.)
    if (/^with found as/i.test(q.sql.trim()) && response?.rows?.[0]?.created === false) return;
    c.commits++;
  });
  // Statements sent on a pooled connection directly, not through knex (LedgerBatcher's ledger_apply): knex hands its
  // own queries to the connection as an object, these as a string. Each is one autocommit statement with the pool's
  // row lock inside it.
  const acquire = db.client.acquireConnection.bind(db.client);
  db.client.acquireConnection = async () => {
    const conn = await acquire();
    if (!conn.censusCounted) {
      const query = conn.query.bind(conn);
      conn.query = (...args) => {
        // A statement as text, or a named one ({ name, text, values }: the LedgerBatcher's). knex's own queries arrive as
        // unnamed configs and are counted from its query events instead.
        const text = typeof args[0] === 'string' ? args[0] : args[0]?.name ? args[0].text : null;
        if (on && text !== null) {
          c.statements++;
          if (/\bledger_apply\(/i.test(text)) {
            c.commits++;
            c.poolLocks++;
          }
          if (process.env.CENSUS_TRACE) console.log('     (pg)', text.replace(/\s+/g, ' ').slice(0, 110));
        }
        return query(...args);
      };
      conn.censusCounted = true;
    }
    return conn;
  };
  const { Redis } = require('ioredis');
  const original = Redis.prototype.sendCommand;
  Redis.prototype.sendCommand = function (command, ...rest) {
    if (on && command && command.name) {
      c.redis++;
      const name = command.name.toUpperCase();
      c.redisByCommand[name] = (c.redisByCommand[name] ?? 0) + 1;
      if (process.env.CENSUS_TRACE) console.log('     redis', name, String(command.args?.[name.startsWith('EVAL') ? 2 : 0] ?? '').replace(/^bench\w+:/, '<prefix>:'));
    }
    return original.call(this, command, ...rest);
  };
  return {
    async measure(fn) {
      reset();
      on = true;
      try {
        await fn();
      } finally {
        on = false;
      }
      return { ...c };
    },
    restore() {
      Redis.prototype.sendCommand = original;
      db.client.acquireConnection = acquire;
    },
  };
}

async function run({ resources, log = () => undefined }) {
  const database = await resources.database('census');
  const prefix = resources.prefix('census');
  const { loadConfig } = dist('src/config/index');
  const { runService } = dist('src/server');
  const { createLogger } = dist('src/lib/logger');
  const ledger = dist('src/ledger/ledger');
  const { fundPool } = dist('src/ledger/fund-pool');
  const { ussdSourceKey } = dist('src/ussd/session-store');
  const { runBuyOrder } = dist('src/payments/buy/run-buy-order');
  const standIn = await startVendorStandIn();
  const config = loadConfig({
    NODE_ENV: 'production',
    ROLE: 'web',
    PORT: '0',
    LOG_LEVEL: 'silent',
    DATABASE_URL: database.url,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    MPESA_ENVIRONMENT: 'sandbox',
    MPESA_BASE_URL: standIn.darajaUrl,
    MPESA_CONSUMER_KEY: DARAJA_CREDENTIALS.consumerKey,
    MPESA_CONSUMER_SECRET: DARAJA_CREDENTIALS.consumerSecret,
    MPESA_BUSINESS_SHORTCODE: DARAJA_CREDENTIALS.shortcode,
    MPESA_PASSKEY: DARAJA_CREDENTIALS.passkey,
    MPESA_CALLBACK_URL: `http://127.0.0.1:9/mpesa/callback/${CALLBACK_SECRET}`,
    AT_USERNAME: 'bench',
    AT_API_KEY: 'bench-at-key',
    AT_API_URL: standIn.atUrl,
    AT_CALLBACK_SECRET,
    USSD_SERVICE_CODE: SERVICE_CODE,
    GOLD_PRICE_KES_PER_GRAM: '8500',
  });
  const running = await runService(config, createLogger('silent'));
  const url = `http://127.0.0.1:${running.port}`;
  const db = running.services.db;
  let count;
  try {
    await fundPool(db, 10 ** 12, 'census');
    const poolId = await ledger.accountIdByCode(db, ledger.SYSTEM_ACCOUNTS.pool);
    count = counter(db, poolId);
    const rows = [];
    const note = (what, c, extra = '') => {
      rows.push({ what, ...c, extra });
      log(`  ${what}: ${c.statements} SQL (${c.commits} commits), ${c.redis} Redis (${Object.entries(c.redisByCommand).map(([k, v]) => `${k}×${v}`).join(" ")}), ${c.underPoolLock} under the pool lock ${extra}`);
    };

    // A returning customer: the phone is known already, as for most sessions.
    const msisdn = phone(900_000);
    await db('customers').insert({ msisdn }).onConflict('msisdn').ignore();
    const walk = (sessionId, text) => post(url, USSD_PATH, ussdForm({ sessionId, phoneNumber: `+${msisdn}`, text }), FORM);
    const texts = ['', '1', '1*500'];
    // Warm-up walk (connections, prepared caches), then the measured one.
    for (const t of [...texts, '1*500*1']) await walk('census-warm', t);
    await db('orders').where({ source_key: ussdSourceKey(msisdn, 'census-warm') }).update({ status: 'failed' }); // one open buy per phone
    const names = ['USSD main menu (new session, returning customer)', 'USSD amount screen', 'USSD confirm screen'];
    for (let i = 0; i < texts.length; i++) {
      let answer;
      const c = await count.measure(async () => (answer = await walk('census', texts[i])));
      if (!answer.body.startsWith('CON ')) throw new Error(`census: unexpected USSD answer ${answer.body}`);
      note(names[i], c);
    }
    let confirm;
    const cc = await count.measure(async () => (confirm = await walk('census', '1*500*1')));
    note('USSD confirm (place_buy_order + relay to the queue)', cc, `-> ${confirm.body.slice(0, 30)}`);
    const order = await db('orders').where({ source_key: ussdSourceKey(msisdn, 'census') }).first('id');
    if (!order) throw new Error(`census: the confirm placed no order (${confirm.body})`);

    const bj = await count.measure(() => runBuyOrder(running.services, order.id, false));
    note('buy job alone (batches of 1: reserve, push claim, push record + STK Push)', bj, `(Daraja requests: ${standIn.arrivals.size} arrived)`);
    const payment = await db('stk_payments').where({ order_id: order.id }).first();
    if (!payment?.checkout_request_id) throw new Error('census: the buy job did not push');
    const body = JSON.stringify({
      Body: {
        stkCallback: {
          MerchantRequestID: payment.merchant_request_id,
          CheckoutRequestID: payment.checkout_request_id,
          ResultCode: 0,
          ResultDesc: 'The service request is processed successfully.',
          CallbackMetadata: { Item: [{ Name: 'Amount', Value: payment.amount_kes }, { Name: 'MpesaReceiptNumber', Value: 'CENSUS0001' }, { Name: 'Balance' }, { Name: 'TransactionDate', Value: 20261126102115 }, { Name: 'PhoneNumber', Value: Number(msisdn) }] },
        },
      },
    });
    let ack;
    const sc = await count.measure(async () => (ack = await post(url, `/mpesa/callback/${CALLBACK_SECRET}`, body, { 'content-type': 'application/json' })));
    note('paid STK callback (settlement)', sc, `-> ${ack.status}`);

    // The batcher (STK_SETTLE_BATCH_MAX): BATCH paid callbacks submitted together are settled in one transaction.
    // Submitted in-process in one tick so that they form exactly one batch (over HTTP the batch size depends on timing).
    const BATCH = 16;
    const { prepareStkSentOrders, paidCallback } = require('./support/orders');
    const { toStkResult, stkCallbackSchema } = dist('src/vendors/daraja-callbacks');
    const batchOrders = await prepareStkSentOrders(db, { count: BATCH, tag: 'cs', firstPhone: 910_000 });
    let outcomes;
    const bc = await count.measure(async () => {
      outcomes = await Promise.all(batchOrders.map((o) => {
        const cb = paidCallback(o);
        return running.services.stkCallbacks.settle(toStkResult(stkCallbackSchema.parse(cb)), cb);
      }));
    });
    if (outcomes.some((x) => x !== 'settled')) throw new Error(`census: batch outcomes ${outcomes.join(',')}`);
    note(`${BATCH} paid STK callbacks settled together (one batch; per callback: ${(bc.statements / BATCH).toFixed(2)} statements, ${(bc.commits / BATCH).toFixed(3)} commits)`, bc);

    const customer = await ledger.ensureCustomerAccount(db, (await db('customers').where({ msisdn }).first('id')).id);
    const lr = await count.measure(() => ledger.createPendingTransfer(db, { id: 'census-t1', debitAccountId: poolId, creditAccountId: customer, amount: 1000, reference: 'census' }));
    note('ledger createPendingTransfer (own transaction)', lr);
    const lp = await count.measure(() => ledger.resolvePendingTransfer(db, 'census-t1', 'posted'));
    note('ledger resolvePendingTransfer posted (own transaction)', lp);
    const { LedgerBatcher } = dist('src/ledger/ledger-batcher');
    const batcher = new LedgerBatcher(db);
    const ids = Array.from({ length: 16 }, (_, i) => `census-b${i}`);
    const br = await count.measure(() => Promise.all(ids.map((id) => batcher.reserve({ id, debitAccountId: poolId, creditAccountId: customer, amount: 1000, reference: 'census' }))));
    note('ledger: 16 concurrent reservations through LedgerBatcher (one batch)', br);
    const bp = await count.measure(() => Promise.all(ids.map((id) => batcher.resolve(id, 'posted'))));
    note('ledger: their 16 posts through LedgerBatcher (one batch)', bp);
    return { rows, books: await ledger.checkBooks(db) };
  } finally {
    count?.restore();
    await running.close();
    await standIn.close();
  }
}

module.exports = { run };

if (require.main === module) {
  const resources = new Resources();
  run({ resources, log: console.log })
    .catch((err) => {
      console.error(err);
      process.exitCode = 1;
    })
    .finally(() => resources.cleanup());
}
