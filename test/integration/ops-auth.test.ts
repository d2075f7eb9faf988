import { RECONCILE_SCHEDULER_ID } from '../../src/jobs/reconcile-schedule';
import { expectBooksBalanced, fundPoolGrams, startTestService, waitFor, type TestService } from '../support/harness';
import { postCallback } from '../support/http';
import { OPS_TOKEN, ops } from '../support/ops';
import { stkCallbackBody } from '../support/vendors';

const OPS_ROUTES: Array<{ method: string; path: string; body?: unknown }> = [
  { method: 'GET', path: '/mpesa/status/ws_CO_123' },
  { method: 'GET', path: '/mpesa/status/ws_CO_123?live=1' },
  { method: 'POST', path: '/mpesa/test-stk', body: { phoneNumber: '254712345678', amount: 1 } },
  { method: 'POST', path: '/trade/buy', body: { phoneNumber: '254712345678', amountKes: 100 } },
  { method: 'GET', path: '/ops/pool' },
  { method: 'GET', path: '/ops/orders?status=review' },
  { method: 'POST', path: '/ops/orders/00000000-0000-4000-8000-000000000000/resolve', body: { action: 'close', note: 'x', operator: 'y' } },
  { method: 'GET', path: '/ops/transactions.csv?from=2026-11-01&to=2026-11-30' },
  { method: 'GET', path: '/ops/queues' },
];

describe('the ops routes without OPS_API_TOKEN', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService();
  });
  afterAll(() => svc.close());

  test.each(OPS_ROUTES)('when no token is configured, then $method $path is a plain 404, even with a token', async ({ method, path, body }) => {
    const res = await ops(svc, path, { method, body, token: OPS_TOKEN });
    expect(res.status).toBe(404);
    expect(res.json).toEqual({ error: 'not_found' });
  });

  test('when no token is configured outside emulator mode, then /metrics is not served (404) while /live and /ready still answer', async () => {
    for (const token of [null, OPS_TOKEN, 'metrics-token-0123456789']) {
      const res = await ops(svc, '/metrics', { token });
      expect(res.status).toBe(404);
      expect(res.text).not.toContain('gold_pool_micrograms');
    }
    expect((await ops(svc, '/live', { token: null })).json).toEqual({ status: 'live' });
    expect((await ops(svc, '/ready', { token: null })).json).toEqual({ status: 'ready', checks: { database: 'ok', queue: 'ok', accepting: 'yes' } });
  });
});

describe('the ops token', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ OPS_API_TOKEN: OPS_TOKEN });
    await fundPoolGrams(svc.db, 10);
  });
  afterAll(() => svc.close());
  afterEach(() => expectBooksBalanced(svc.db));

  test.each(OPS_ROUTES)('when $method $path comes without a token, then 401 and nothing is recorded', async ({ method, path, body }) => {
    const res = await ops(svc, path, { method, body, token: null });
    expect(res.status).toBe(401);
    expect(res.json).toEqual({ error: 'unauthorized' });
    expect(res.headers.get('www-authenticate')).toMatch(path.startsWith('/ops/queues') ? /^Basic realm=/ : /^Bearer realm=/);
    expect(await svc.db('orders').count({ n: '*' }).first()).toEqual({ n: 0 });
  });

  test.each([
    ['a wrong token of the same length', OPS_TOKEN.replace(/.$/, 'X')],
    ['a prefix of the token', OPS_TOKEN.slice(0, 10)],
    ['the token with something appended', `${OPS_TOKEN}0`],
    ['an empty token', ''],
  ])('when the token is %s, then 401', async (_what, token) => {
    const res = await ops(svc, '/trade/buy', { body: { phoneNumber: '254712345678', amountKes: 100 }, token, headers: { 'idempotency-key': 'k-wrong-token-1' } });
    expect(res.status).toBe(401);
    expect(await svc.db('orders').count({ n: '*' }).first()).toEqual({ n: 0 });
  });

  test('when the right token comes, then the route answers', async () => {
    const res = await ops(svc, '/ops/pool');
    expect(res.status).toBe(200);
    expect(res.json.pool.postedUg).toBe(10_000_000);
    // Balances and orders are never kept by a cache on the way.
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  test('when a browser gives the token as its Basic password, then the queue dashboard opens and lists every queue', async () => {
    const basic = (password: string) => ({ authorization: `Basic ${Buffer.from(`ops:${password}`).toString('base64')}` });
    const page = await ops(svc, '/ops/queues', { token: null, headers: basic(OPS_TOKEN) });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const api = await ops(svc, '/ops/queues/api/queues', { token: null, headers: basic(OPS_TOKEN) });
    expect(api.status).toBe(200);
    const names = (api.json.queues as Array<{ name: string }>).map((q) => q.name).sort();
    expect(names).toEqual(expect.arrayContaining(['buy-gold', 'sms', 'ops-query']));
    expect((await ops(svc, '/ops/queues/api/queues', { token: null, headers: basic('wrong-password') })).status).toBe(401);
  });

  test('when a path under /ops does not exist, then the token is still asked for first', async () => {
    expect((await ops(svc, '/ops/nothing-here', { token: null })).status).toBe(401);
    expect((await ops(svc, '/ops/nothing-here')).status).toBe(404);
  });

  test('when the M-Pesa callback path or /health is called, then the ops token is not involved', async () => {
    const callback = await postCallback(svc.url, stkCallbackBody({ checkoutRequestId: 'ws_CO_unknown_1', resultCode: 1032 }));
    expect(callback.status).toBe(200);
    expect(callback.json).toEqual({ ResultCode: 0, ResultDesc: 'Accepted' });
    expect((await ops(svc, '/health', { token: null })).status).toBe(200);
  });
});

describe('GET /metrics with METRICS_TOKEN', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ METRICS_TOKEN: 'metrics-token-0123456789' });
  });
  afterAll(() => svc.close());

  test('when the metrics token is missing or wrong, then 401; when right, then the exposition', async () => {
    expect((await ops(svc, '/metrics', { token: null })).status).toBe(401);
    expect((await ops(svc, '/metrics', { token: 'metrics-token-wrong-0000' })).status).toBe(401);
    const res = await ops(svc, '/metrics', { token: 'metrics-token-0123456789' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.text).toContain('# TYPE gold_pool_micrograms gauge');
  });
});

describe('GET /metrics with both METRICS_TOKEN and the ops token', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ METRICS_TOKEN: 'metrics-token-0123456789', OPS_API_TOKEN: OPS_TOKEN });
  });
  afterAll(() => svc.close());

  test('when either token comes as the bearer, then the exposition; with neither, 401', async () => {
    for (const token of ['metrics-token-0123456789', OPS_TOKEN]) {
      const res = await ops(svc, '/metrics', { token });
      expect(res.status).toBe(200);
      expect(res.text).toContain('# TYPE gold_pool_micrograms gauge');
    }
    for (const token of [null, '', 'metrics-token-012345678', `${OPS_TOKEN}x`]) expect((await ops(svc, '/metrics', { token })).status).toBe(401);
  });
});

describe('GET /metrics with only the ops token', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ OPS_API_TOKEN: OPS_TOKEN });
  });
  afterAll(() => svc.close());

  test('when the ops token is the bearer, then the exposition; without it, 401', async () => {
    expect((await ops(svc, '/metrics', { token: null })).status).toBe(401);
    expect((await ops(svc, '/metrics', { token: 'metrics-token-0123456789' })).status).toBe(401);
    expect((await ops(svc, '/metrics')).status).toBe(200);
  });
});

describe('GET /metrics in emulator mode', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ MPESA_ENVIRONMENT: 'emulator', AT_USERNAME: '', AT_API_KEY: '' });
  });
  afterAll(() => svc.close());

  test('when no token is configured, then /metrics is open (a sandbox on one machine)', async () => {
    const res = await ops(svc, '/metrics', { token: null });
    expect(res.status).toBe(200);
    expect(res.text).toContain('# TYPE gold_pool_micrograms gauge');
  });
});

describe('Bull Board (/ops/queues) writes', () => {
  const basic = { authorization: `Basic ${Buffer.from(`ops:${OPS_TOKEN}`).toString('base64')}` };
  /** The reconciliation schedule as Bull Board lists it (registered by the worker at start-up). */
  const scheduler = (svc: TestService) => svc.running.services.backends.dashboardQueues().find((q) => q.name === 'reconcile')!.getJobScheduler(RECONCILE_SCHEDULER_ID);
  const removeSchedule = (svc: TestService) => ops(svc, `/ops/queues/api/queues/reconcile/job-schedulers/${RECONCILE_SCHEDULER_ID}/remove`, { method: 'PUT', token: null, headers: basic });
  const cleanFailed = (svc: TestService) => ops(svc, '/ops/queues/api/queues/sms/clean/failed', { method: 'PUT', token: null, headers: basic });

  describe('by default', () => {
    let svc: TestService;
    beforeAll(async () => {
      svc = await startTestService({ OPS_API_TOKEN: OPS_TOKEN });
      await waitFor(() => scheduler(svc), 'the reconciliation schedule');
    });
    afterAll(() => svc.close());

    test('when the ops token asks Bull Board to remove the reconciliation schedule or clean a queue, then it is refused (405) and the schedule stays', async () => {
      const removed = await removeSchedule(svc);
      expect(removed.status).toBe(405);
      expect(removed.text).toContain('QUEUE_READ_ONLY');
      expect((await cleanFailed(svc)).status).toBe(405);
      expect(await scheduler(svc)).toMatchObject({ key: RECONCILE_SCHEDULER_ID });
      // Reading still works.
      expect((await ops(svc, '/ops/queues/api/queues', { token: null, headers: basic })).status).toBe(200);
    });
  });

  describe('with OPS_QUEUES_WRITABLE=1', () => {
    let svc: TestService;
    beforeAll(async () => {
      svc = await startTestService({ OPS_API_TOKEN: OPS_TOKEN, OPS_QUEUES_WRITABLE: '1', RECONCILE_INTERVAL_MS: '3600000' });
      await waitFor(() => scheduler(svc), 'the reconciliation schedule');
    });
    afterAll(() => svc.close());

    test('when the ops token asks Bull Board to remove the reconciliation schedule, then it is removed', async () => {
      expect((await cleanFailed(svc)).status).toBe(200);
      expect((await removeSchedule(svc)).status).toBe(204);
      expect(await scheduler(svc)).toBeFalsy();
    });
  });
});
