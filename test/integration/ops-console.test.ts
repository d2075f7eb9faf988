import { readFileSync } from 'node:fs';
import path from 'node:path';
import nock from 'nock';
import { expectBooksBalanced, fundPoolGrams, startTestService, type TestService } from '../support/harness';
import { OPS_TOKEN, ops, pushedBuy } from '../support/ops';

const CONSOLE_DIR = path.resolve(__dirname, '..', '..', 'console');
const PHONE = '254712399001';
const PHONE_MASKED = '2547******01';

describe('GET /ops/alerts', () => {
  let svc: TestService;
  let orderId: string;
  const ids: Record<string, number> = {};
  beforeAll(async () => {
    svc = await startTestService({ OPS_API_TOKEN: OPS_TOKEN });
    await fundPoolGrams(svc.db, 1);
    ({ orderId } = await pushedBuy(svc, PHONE));
    nock.cleanAll();
    const insert = async (name: string, row: Record<string, unknown>) => {
      const [r] = await svc.db('ops_alerts').insert({ severity: 'error', details: '{}', dedupe_key: `console-${name}`, ...row }).returning('id');
      ids[name] = Number(r.id);
    };
    await insert('older', { kind: 'payment_unconfirmed', severity: 'warn', order_id: orderId, message: 'reservation expired', created_at: new Date('2026-12-01T08:00:00Z') });
    await insert('newer', {
      kind: 'orphan_payment',
      order_id: null,
      message: 'a success callback from 0712399002 matches no order',
      details: JSON.stringify({ msisdn: '254712399003', accountNumber: '0712399004', nested: { text: 'payer +254712399005' }, amount: 500 }),
      created_at: new Date('2026-12-02T08:00:00Z'),
    });
    await insert('resolved', {
      kind: 'duplicate_payment', order_id: orderId, message: 'paid twice', created_at: new Date('2026-12-03T08:00:00Z'),
      resolved_at: new Date('2026-12-03T09:00:00Z'), resolution: 'close by carol: refunded 0712399006',
    });
  });
  afterAll(() => svc.close());
  afterEach(() => expectBooksBalanced(svc.db));

  test.each([
    ['no token', null],
    ['a wrong token', `${OPS_TOKEN}x`],
  ])('when asked with %s, then the answer is 401 and no alert is shown', async (_what, token) => {
    const res = await ops(svc, '/ops/alerts?open=1', { token });
    expect(res.status).toBe(401);
    expect(res.json).toEqual({ error: 'unauthorized' });
  });

  test('when open=1, then only open alerts come back, newest first, with the order\'s phone masked', async () => {
    const res = await ops(svc, '/ops/alerts?open=1');
    expect(res.status).toBe(200);
    expect(res.json.alerts.map((a: { id: number }) => a.id)).toEqual([ids.newer, ids.older]);
    expect(res.json.alerts[1]).toEqual({
      id: ids.older, kind: 'payment_unconfirmed', severity: 'warn', orderId, orderKind: 'buy', orderStatus: 'stk_sent', phone: PHONE_MASKED,
      message: 'reservation expired', details: {}, createdAt: '2026-12-01T08:00:00.000Z', resolvedAt: null, resolution: null,
    });
  });

  test('when an alert names phone numbers in its message or details, then every one of them is masked', async () => {
    const res = await ops(svc, '/ops/alerts?open=1');
    const newer = res.json.alerts.find((a: { id: number }) => a.id === ids.newer);
    expect(newer).toMatchObject({ orderId: null, orderKind: null, phone: '', message: 'a success callback from 0712****02 matches no order' });
    expect(newer.details).toEqual({ msisdn: '2547******03', accountNumber: '0712****04', nested: { text: 'payer 2547******05' }, amount: 500 });
    expect(res.text).not.toMatch(/7123990\d\d/);
  });

  test('when open is not given, then resolved alerts come back too, with their resolution masked', async () => {
    const res = await ops(svc, '/ops/alerts');
    expect(res.json.alerts.map((a: { id: number }) => a.id)).toEqual([ids.resolved, ids.newer, ids.older]);
    expect(res.json.alerts[0]).toMatchObject({ resolvedAt: '2026-12-03T09:00:00.000Z', resolution: 'close by carol: refunded 0712****06' });
    expect(res.text).not.toMatch(/7123990\d\d/);
  });

  test.each(['/ops/alerts?open=yes', '/ops/alerts?limit=0', '/ops/alerts?limit=501'])('when the query is %s, then 400', async (p) => {
    const res = await ops(svc, p);
    expect(res.status).toBe(400);
    expect(res.json.error).toBe('invalid_query');
  });
});

describe('GET /console without OPS_API_TOKEN', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService();
  });
  afterAll(() => svc.close());

  test.each(['/console', '/console/console.js', '/console/console.css', '/ops/alerts?open=1'])('when no token is configured, then %s is a plain 404', async (p) => {
    const res = await ops(svc, p, { token: null });
    expect(res.status).toBe(404);
    expect(res.json).toEqual({ error: 'not_found' });
  });
});

describe('GET /console with OPS_API_TOKEN', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ OPS_API_TOKEN: OPS_TOKEN });
    await fundPoolGrams(svc.db, 1);
  });
  afterAll(() => svc.close());
  afterEach(() => nock.cleanAll());

  test.each([
    ['/console', 'index.html', /^text\/html/],
    ['/console/console.js', 'console.js', /^application\/javascript|^text\/javascript/],
    ['/console/console.css', 'console.css', /^text\/css/],
    ['/console/favicon.svg', 'favicon.svg', /^image\/svg\+xml/],
  ])('when %s is asked for without a token, then it is the static file with the console\'s security headers', async (p, file, type) => {
    const res = await ops(svc, p, { token: null });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(type);
    expect(res.text).toBe(readFileSync(path.join(CONSOLE_DIR, file), 'utf8'));
    const csp = res.headers.get('content-security-policy')!;
    expect(csp.split(/;\s*/)).toEqual(expect.arrayContaining(["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'", "form-action 'none'"]));
    expect(csp).not.toMatch(/unsafe-|\*|data:|https?:/);
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  test('when orders and alerts exist and the token is sent, then the page is the same bytes and holds none of their data', async () => {
    const { orderId } = await pushedBuy(svc, PHONE);
    await svc.db('ops_alerts').insert({ kind: 'orphan_payment', severity: 'error', message: 'console-data-check', dedupe_key: 'console-data-check' });
    const order = await svc.db('orders').where({ id: orderId }).first('reference');
    const withToken = await ops(svc, '/console');
    const without = await ops(svc, '/console', { token: null });
    expect(withToken.text).toBe(without.text);
    for (const secret of [OPS_TOKEN, orderId, order.reference, PHONE, PHONE_MASKED, 'console-data-check', '8500', '8,500']) expect(withToken.text).not.toContain(secret);
  });

  test('when the page is read, then it has no inline script, style or handler (the CSP would block them) and the form cannot submit by itself', async () => {
    const html = (await ops(svc, '/console', { token: null })).text;
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/i);
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    expect(html).toMatch(/<input id="token" type="password"/);
    expect(html).not.toMatch(/<form[^>]*\baction=/i);
  });

  test('when the script is read, then nothing in it turns text into markup', async () => {
    const js = (await ops(svc, '/console/console.js', { token: null })).text;
    expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|createContextualFragment|\beval\(|new Function/);
    expect(js).toContain("sessionStorage");
    expect(js).not.toContain('localStorage');
  });

  test('when the console path is tried with a trick, then it is 404 and no other file is served', async () => {
    for (const p of ['/console/../package.json', '/console/%2e%2e/package.json', '/console/index.html', '/console/other.js']) {
      const res = await ops(svc, p, { token: null });
      expect(res.status).toBe(404);
      expect(res.text).not.toContain('"dependencies"');
    }
  });
});
