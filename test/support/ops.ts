import { waitFor, type TestService } from './harness';
import { mockDarajaToken, mockStkPushAccepted } from './vendors';

export const OPS_TOKEN = 'ops-token-for-tests-0123456789abcdef';

/** One call to an ops route, with the ops token unless told otherwise; JSON in, JSON (or text) out. */
export async function ops(
  svc: Pick<TestService, 'url'>,
  path: string,
  opts: { method?: string; body?: unknown; token?: string | null; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  const token = opts.token === undefined ? OPS_TOKEN : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${svc.url}${path}`, {
    method: opts.method ?? (opts.body === undefined ? 'GET' : 'POST'),
    headers,
    ...(opts.body !== undefined ? { body: typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body) } : {}),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

/** Prometheus text -> the value of one series, e.g. sample(text, 'sms_total', { status: 'sent' }). */
export function sample(exposition: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of exposition.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const pair of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found[pair[1]!] = pair[2]!;
    if (Object.entries(labels).every(([k, v]) => found[k] === v) && Object.keys(found).length === Object.keys(labels).length) return Number(m[3]);
  }
  return undefined;
}

let keyCounter = 0;

/** A buy placed through /trade/buy and pushed: the order now waits for its callback. */
export async function pushedBuy(svc: TestService, phone: string, amountKes = 500) {
  mockDarajaToken();
  mockStkPushAccepted([]);
  const res = await ops(svc, '/trade/buy', { body: { amountKes, phoneNumber: phone }, headers: { 'idempotency-key': `ops-test-${Date.now()}-${++keyCounter}` } });
  expect(res.status).toBe(201);
  const payment = await waitFor(() => svc.db('stk_payments').where({ order_id: res.json.orderId }).whereNotNull('checkout_request_id').first(), 'the accepted push');
  return { orderId: res.json.orderId as string, checkoutRequestId: payment.checkout_request_id as string };
}
