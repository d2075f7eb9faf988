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

describe('POST /ops/alerts/:id/close', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ OPS_API_TOKEN: OPS_TOKEN });
    await fundPoolGrams(svc.db, 1);
  });
  afterAll(() => svc.close());
  afterEach(() => expectBooksBalanced(svc.db));

  let n = 0;
  const raise = async (row: Record<string, unknown>) => {
    const [r] = await svc.db('ops_alerts').insert({ severity: 'error', details: '{}', dedupe_key: `close-${++n}`, message: 'settle by hand', ...row }).returning('id');
    return Number(r.id);
  };
  const close = (id: number | string, body: unknown, token?: string | null) => ops(svc, `/ops/alerts/${id}/close`, { body, token });
  const row = (id: number) => svc.db('ops_alerts').where({ id }).first('resolved_at', 'resolution');

  test('when an operator closes an alert settled outside the service, then it is closed once, naming who and why', async () => {
    const id = await raise({ kind: 'payment_after_resolution', order_id: null });
    const res = await close(id, { note: 'refunded on the M-Pesa portal', operator: 'alice' });
    expect(res).toMatchObject({ status: 200, json: { ok: true, id, kind: 'payment_after_resolution', resolution: 'closed by alice: refunded on the M-Pesa portal' } });
    expect(await row(id)).toMatchObject({ resolution: 'closed by alice: refunded on the M-Pesa portal' });
    expect((await row(id)).resolved_at).not.toBeNull();
    // Final: a second close is refused and changes nothing.
    expect(await close(id, { note: 'again', operator: 'bob' })).toMatchObject({ status: 409, json: { ok: false, error: 'already_closed', resolution: 'closed by alice: refunded on the M-Pesa portal' } });
    expect((await ops(svc, '/ops/alerts?open=1')).json.alerts.map((a: { id: number }) => a.id)).not.toContain(id);
  });

  test('when two operators close the same alert at once, then exactly one closes it', async () => {
    const id = await raise({ kind: 'c2b_unparsed', order_id: null });
    const answers = await Promise.all(['a', 'b', 'c'].map((op) => close(id, { note: `by ${op}`, operator: op })));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409, 409]);
    const winner = answers.find((a) => a.status === 200)!.json.resolution;
    expect((await row(id)).resolution).toBe(winner);
  });

  test('when the alert\'s order is still in review, then 409: the order\'s resolution decides and closes it', async () => {
    const { orderId } = await pushedBuy(svc, '254712399101');
    nock.cleanAll();
    await svc.db('orders').where({ id: orderId }).update({ status: 'review' });
    const id = await raise({ kind: 'orphan_payment', order_id: orderId });
    expect(await close(id, { note: 'x', operator: 'a' })).toMatchObject({ status: 409, json: { ok: false, error: 'order_in_review', orderId } });
    expect(await row(id)).toMatchObject({ resolved_at: null, resolution: null });
    // Leave the books as found: the order leaves review as an operator's close would.
    expect((await ops(svc, `/ops/orders/${orderId}/resolve`, { body: { action: 'close', note: 'test', operator: 'a' } })).status).toBe(200);
  });

  test('when the alert is a price jump, then 409: accepting the price resumes trading and closes it', async () => {
    const id = await raise({ kind: 'price_jump', order_id: null });
    expect(await close(id, { note: 'x', operator: 'a' })).toMatchObject({ status: 409, json: { error: 'use_price_accept' } });
    expect(await row(id)).toMatchObject({ resolved_at: null });
  });

  test.each([
    ['no token', 1, { note: 'x', operator: 'a' }, null, 401],
    ['an unknown id', 999999999, { note: 'x', operator: 'a' }, undefined, 404],
    ['an id that is not a number', 'abc', { note: 'x', operator: 'a' }, undefined, 404],
    ['no note', 'OPEN', { operator: 'a' }, undefined, 400],
    ['an empty operator', 'OPEN', { note: 'x', operator: '  ' }, undefined, 400],
  ])('when the request has %s, then it is refused and nothing changes', async (_what, idOrOpen, body, token, status) => {
    const open = await raise({ kind: 'sms_account_problem', order_id: null });
    const res = await close(idOrOpen === 'OPEN' ? open : idOrOpen, body, token);
    expect(res.status).toBe(status);
    expect(await row(open)).toMatchObject({ resolved_at: null });
  });
});
