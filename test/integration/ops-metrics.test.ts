import nock from 'nock';
import { createDb } from '../../src/db/knex';
import { AT_SECRET, CALLBACK_PATH, expectBooksBalanced, fundPoolGrams, startTestService, waitFor, type TestService } from '../support/harness';
import { buyUntilPushed } from '../support/flows';
import { postCallback } from '../support/http';
import { OPS_TOKEN, ops, sample } from '../support/ops';
import { freePort } from '../support/sandbox-process';
import { ADMIN_DATABASE_URL } from '../support/test-env';
import { mockAtSmsAccepted, mockDarajaToken, mockStkPushAccepted, stkCallbackBody } from '../support/vendors';

describe('GET /metrics', () => {
  let svc: TestService;
  beforeAll(async () => {
    // /metrics is closed by default: scraped here with the ops token (ops() sends it).
    svc = await startTestService({ OPS_API_TOKEN: OPS_TOKEN });
    await fundPoolGrams(svc.db, 10);
  });
  afterAll(() => svc.close());
  afterEach(async () => {
    nock.cleanAll();
    await expectBooksBalanced(svc.db);
  });

  test('when a USSD buy was paid (its callback duplicated) and its SMS sent, then every named series says so', async () => {
    mockAtSmsAccepted([]);
    const { order, checkoutRequestId } = await buyUntilPushed(svc, { phoneNumber: '+254712500001', amountKes: 500 });
    const body = stkCallbackBody({ checkoutRequestId, resultCode: 0, amount: 500, receipt: 'MET0000001', phone: '254712500001' });
    await postCallback(svc.url, body);
    await postCallback(svc.url, body);
    await waitFor(async () => (await svc.db('sms_messages').where({ customer_id: order.customer_id }).first('status'))?.status === 'sent', 'the receipt SMS');
    // A second buy left waiting for M-Pesa: an open order and a held reservation.
    await buyUntilPushed(svc, { phoneNumber: '+254712500002', amountKes: 100 });

    const res = await ops(svc, '/metrics');
    expect(res.status).toBe(200);
    const m = res.text;
    // Every USSD request was timed under its route, and each served one screen.
    const screens = m.split('\n').filter((l) => l.startsWith('ussd_screens_total{')).reduce((n, l) => n + Number(l.split(' ').pop()), 0);
    expect(screens).toBeGreaterThanOrEqual(8);
    // Under the route pattern: Africa's Talking's secret path segment never becomes a label.
    expect(sample(m, 'http_request_duration_seconds_count', { route: '/ussd/:secret', method: 'POST', status: '200' })).toBe(screens);
    expect(m).not.toContain(AT_SECRET);
    expect(sample(m, 'http_request_duration_seconds_count', { route: '/mpesa/callback/:secret', method: 'POST', status: '200' })).toBe(2);
    expect(m).not.toContain(CALLBACK_PATH.split('/').pop()!);
    expect(sample(m, 'ussd_screens_total', { screen: 'home' })).toBe(2);
    expect(sample(m, 'ussd_screens_total', { screen: 'end' })).toBe(2);
    expect(sample(m, 'orders_placed_total', { channel: 'ussd' })).toBe(2);
    expect(sample(m, 'mpesa_stk_push_total', { outcome: 'accepted' })).toBe(2);
    expect(sample(m, 'mpesa_stk_results_total', { result_code: '0' })).toBe(1);
    expect(sample(m, 'mpesa_callbacks_total', { outcome: 'settled' })).toBe(1);
    expect(sample(m, 'mpesa_callbacks_total', { outcome: 'duplicate' })).toBe(1);
    expect(sample(m, 'sms_total', { status: 'sent' })).toBe(1);
    expect(sample(m, 'gold_issued_micrograms')).toBe(10_000_000);
    expect(sample(m, 'gold_pool_micrograms', { state: 'posted' })).toBe(10_000_000 - 58_823);
    expect(sample(m, 'gold_pool_micrograms', { state: 'pending' })).toBe(11_764);
    expect(sample(m, 'gold_pool_micrograms', { state: 'available' })).toBe(10_000_000 - 58_823 - 11_764);
    expect(sample(m, 'orders_open', { kind: 'buy', status: 'stk_sent' })).toBe(1);
    expect(sample(m, 'outbox_unrelayed')).toBe(0);
    for (const queue of Object.keys(svc.running.services.queues)) {
      for (const state of ['waiting', 'active', 'delayed', 'failed']) expect(sample(m, 'queue_jobs', { queue, state })).toEqual(expect.any(Number));
    }
    for (const queue of ['buy', 'sms']) {
      for (const state of ['waiting', 'active', 'failed']) expect(sample(m, 'queue_jobs', { queue, state })).toBe(0);
    }
    expect(sample(m, 'process_ready')).toBe(1);
    expect(sample(m, 'metrics_collect_errors', { collector: 'ledger' })).toBe(0);
    expect(sample(m, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  test('when a callback says the payer cancelled, then its ResultCode and the failed outcome are counted', async () => {
    const before = (await ops(svc, '/metrics')).text;
    const { checkoutRequestId } = await buyUntilPushed(svc, { phoneNumber: '+254712500003', amountKes: 50 });
    mockAtSmsAccepted([]);
    await postCallback(svc.url, stkCallbackBody({ checkoutRequestId, resultCode: 1032, resultDesc: 'Request cancelled by user' }));
    const after = (await ops(svc, '/metrics')).text;
    expect(sample(after, 'mpesa_stk_results_total', { result_code: '1032' })).toBe(1);
    expect(sample(after, 'mpesa_callbacks_total', { outcome: 'failed' })).toBe((sample(before, 'mpesa_callbacks_total', { outcome: 'failed' }) ?? 0) + 1);
  });

  test('when the queue backend stops answering, then its collector is reported failed and the rest of the scrape still comes', async () => {
    const queues = svc.running.services.queues;
    const original = queues.sms.getJobCounts;
    queues.sms.getJobCounts = () => Promise.reject(new Error('down'));
    try {
      const m = (await ops(svc, '/metrics')).text;
      expect(sample(m, 'metrics_collect_errors', { collector: 'queues' })).toBe(1);
      expect(sample(m, 'metrics_collect_errors', { collector: 'ledger' })).toBe(0);
      expect(sample(m, 'gold_issued_micrograms')).toBe(10_000_000);
    } finally {
      queues.sms.getJobCounts = original;
    }
  });
});

describe('/live, /ready and shutdown', () => {
  test('when SIGTERM-style close begins, then /ready turns 503 before the server stops taking requests, while /live stays 200', async () => {
    const svc = await startTestService({ SHUTDOWN_DRAIN_MS: '1000' });
    expect((await ops(svc, '/ready', { token: null })).status).toBe(200);
    const closing = svc.close();
    const ready = await ops(svc, '/ready', { token: null });
    expect(ready.status).toBe(503);
    expect(ready.json).toEqual({ status: 'not_ready', checks: { database: 'ok', queue: 'ok', accepting: 'stopping' } });
    expect((await ops(svc, '/live', { token: null })).status).toBe(200);
    await closing;
    await expect(fetch(`${svc.url}/live`)).rejects.toThrow();
  });

  test('when the database is unreachable, then /ready is 503 naming it and /live is still 200', async () => {
    const svc = await startTestService();
    const name = svc.db.client.database() as string;
    const admin = createDb(ADMIN_DATABASE_URL, { max: 1 });
    try {
      await admin.raw(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
      await admin.raw('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ?', [name]);
      const ready = await ops(svc, '/ready', { token: null });
      expect(ready.status).toBe(503);
      expect(ready.json.checks).toEqual({ database: 'down', queue: 'ok', accepting: 'yes' });
      expect((await ops(svc, '/live', { token: null })).status).toBe(200);
    } finally {
      await admin.raw(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
      await admin.destroy();
      await svc.close();
    }
  });

  test('when a worker-only process has WORKER_HTTP_PORT, then it answers /live, /ready and /metrics there and nothing else', async () => {
    const port = await freePort();
    const svc = await startTestService({ ROLE: 'worker', WORKER_HTTP_PORT: String(port), METRICS_TOKEN: 'metrics-token-0123456789' });
    try {
      expect(svc.running.port).toBeNull();
      const url = `http://127.0.0.1:${port}`;
      expect(await (await fetch(`${url}/live`)).json()).toEqual({ status: 'live' });
      expect((await fetch(`${url}/ready`)).status).toBe(200);
      expect((await fetch(`${url}/metrics`)).status).toBe(401);
      const m = await (await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer metrics-token-0123456789' } })).text();
      expect(sample(m, 'queue_jobs', { queue: 'buy', state: 'waiting' })).toBe(0);
      expect((await fetch(`${url}/ussd`, { method: 'POST' })).status).toBe(404);
    } finally {
      await svc.close();
    }
  });
});
