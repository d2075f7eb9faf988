import { expectBooksBalanced, fundPoolGrams, startTestService, type TestService } from '../support/harness';
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

  test('when no token is configured, then /metrics, /live and /ready still answer', async () => {
    expect((await ops(svc, '/metrics', { token: null })).status).toBe(200);
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
