import nock from 'nock';
import { en } from '../../src/i18n/en';
import { queueSms } from '../../src/notifications/queue-sms';
import { AT_SECRET, DELIVERY_REPORTS_PATH, SERVICE_CODE, USSD_EVENTS_PATH, USSD_PATH, startTestService, waitFor, withRedis, type TestService } from '../support/harness';
import { newSessionId, ussd } from '../support/http';
import { mockAtSmsAccepted, type CapturedSms } from '../support/vendors';

/**
 * Africa's Talking's callbacks believe the phoneNumber of the form: only the secret last path segment
 * (AT_CALLBACK_SECRET) and the optional AT_CALLBACK_IP_ALLOWLIST tell AT from anyone else.
 */

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

const post = (svc: TestService, path: string, fields: Record<string, string>, forwardedFor?: string) =>
  fetch(`${svc.url}${path}`, { method: 'POST', headers: { ...FORM, ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}) }, body: new URLSearchParams(fields) });

const ussdForm = (phone: string, text = '') => ({ sessionId: newSessionId(), serviceCode: SERVICE_CODE, phoneNumber: `+${phone}`, networkCode: '63902', text });

/** Every Redis key of this service that names the phone: sessions, resume points, rate-limit counters. */
const redisKeysOf = (svc: TestService, msisdn: string) => withRedis((r) => r.keys(`${svc.config.queuePrefix}*${msisdn}*`));

const count = async (svc: TestService, table: string) => Number((await svc.db(table).count({ n: '*' }))[0]!.n);

/** Wrong ways to reach the three callbacks: the bare paths, other secrets, near misses, a secret elsewhere. */
const WRONG_USSD_PATHS = ['/ussd', '/ussd/', '/ussd/wrong-secret-0123456789', `/ussd/${AT_SECRET.slice(0, -1)}`, `/ussd/${AT_SECRET}x`, `/ussd/${AT_SECRET.toUpperCase()}`, `/ussd/${AT_SECRET}/x`, `/ussd/x/${AT_SECRET}`];

async function sentMessage(svc: TestService, key: string): Promise<string> {
  mockAtSmsAccepted([] as CapturedSms[]);
  const s = svc.running.services;
  const outboxId = await svc.db.transaction((trx) => queueSms(trx, s.outbox, { customerId: null, msisdn: '254712345678', body: `hello ${key}`, purpose: 'test', dedupeKey: key }));
  await s.outbox.relaySoon([outboxId]);
  const row = () => svc.db('sms_messages').where({ dedupe_key: key }).first();
  return (await waitFor(async () => (await row())?.status === 'sent' && row(), 'the SMS to be sent')).at_message_id;
}

describe("Africa's Talking callbacks under AT_CALLBACK_SECRET", () => {
  let svc: TestService;
  const lines: string[] = [];
  beforeAll(async () => {
    // A low per-phone limit, so that a tick counted by a refused request would show.
    svc = await startTestService({ USSD_REQUESTS_PER_MINUTE: '3', LOG_LEVEL: 'info' }, { logDestination: { write: (l: string) => void lines.push(l) } });
  });
  afterEach(() => nock.cleanAll());
  afterAll(() => svc.close());

  test.each(WRONG_USSD_PATHS)('when USSD is posted to %s, then 404 and nothing is recorded: no session, no rate-limit tick, no customer', async (path) => {
    const msisdn = `2547190${String(WRONG_USSD_PATHS.indexOf(path)).padStart(5, '0')}`;
    const customers = await count(svc, 'customers');
    for (let i = 0; i < 5; i++) {
      const res = await post(svc, path, ussdForm(msisdn, i === 0 ? '' : '1'));
      expect(res.status).toBe(404);
      expect(await res.text()).not.toMatch(/^(CON|END)/);
    }
    expect(await redisKeysOf(svc, msisdn)).toEqual([]);
    expect(await count(svc, 'customers')).toBe(customers);
    // Five refused requests did not use up the phone's three a minute: AT itself still gets the menu.
    const real = await ussd(svc.url, { sessionId: newSessionId(), text: '', phoneNumber: `+${msisdn}` });
    expect(real.status).toBe(200);
    expect(real.text).toMatch(/^CON /);
    expect(real.text).not.toContain(en.ussd.tooManyRequests);
    expect((await redisKeysOf(svc, msisdn)).length).toBeGreaterThan(0);
  });

  test('when USSD events are posted without the secret or with a wrong one, then 404 and no ussd_events row; with it, the event is recorded', async () => {
    const event = { sessionId: newSessionId(), status: 'Success', phoneNumber: '+254719100001', serviceCode: SERVICE_CODE, input: '1*500*1' };
    const before = await count(svc, 'ussd_events');
    for (const path of ['/ussd/events', '/ussd/events/', '/ussd/events/wrong-secret-0123456789', `/ussd/events/${AT_SECRET.slice(1)}`]) {
      expect((await post(svc, path, event)).status).toBe(404);
    }
    expect(await count(svc, 'ussd_events')).toBe(before);
    expect((await post(svc, USSD_EVENTS_PATH, event)).status).toBe(200);
    expect(await count(svc, 'ussd_events')).toBe(before + 1);
  });

  test('when a delivery report is posted without the secret or with a wrong one, then 404 and the message keeps its status; with it, the status is stored', async () => {
    const id = await sentMessage(svc, 'at-auth-report');
    const status = async () => (await svc.db('sms_messages').where({ at_message_id: id }).first('delivery_status')).delivery_status;
    for (const path of ['/sms/delivery-reports', '/sms/delivery-reports/', '/sms/delivery-reports/wrong-secret-0123456789', `/sms/delivery-reports/${AT_SECRET}-`]) {
      expect((await post(svc, path, { id, status: 'Failed', failureReason: 'UserInBlacklist' })).status).toBe(404);
    }
    expect(await status()).toBeNull();
    expect((await post(svc, DELIVERY_REPORTS_PATH, { id, status: 'Success' })).status).toBe(200);
    expect(await status()).toBe('Success');
  });

  test('when requests were refused and answered, then no log line carries the secret', async () => {
    await post(svc, `/ussd/${AT_SECRET}x`, ussdForm('254719200001'));
    await post(svc, USSD_PATH, { nonsense: 'x' });
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('')).not.toContain(AT_SECRET);
  });
});

describe("Africa's Talking callbacks with AT_CALLBACK_IP_ALLOWLIST", () => {
  let svc: TestService;
  const lines: string[] = [];
  beforeAll(async () => {
    // 192.0.2.0/24 (TEST-NET-1) stands for Africa's Talking; the loopback proxy forwards its address.
    svc = await startTestService({ AT_CALLBACK_IP_ALLOWLIST: '192.0.2.0/24', TRUST_PROXY: 'loopback', LOG_LEVEL: 'info' }, { logDestination: { write: (l: string) => void lines.push(l) } });
  });
  afterAll(() => svc.close());

  test('when the right secret comes from outside the allowlist, then 403 for all three callbacks, nothing is recorded, and the refusal is logged without the secret or the body', async () => {
    const msisdn = '254719300001';
    const events = await count(svc, 'ussd_events');
    lines.length = 0;
    expect((await post(svc, USSD_PATH, ussdForm(msisdn), '203.0.113.5')).status).toBe(403);
    expect((await post(svc, USSD_PATH, ussdForm(msisdn))).status).toBe(403); // the proxy itself is not AT
    expect((await post(svc, USSD_EVENTS_PATH, { sessionId: 'ATUid_ip', status: 'Success', phoneNumber: `+${msisdn}` }, '203.0.113.5')).status).toBe(403);
    expect((await post(svc, DELIVERY_REPORTS_PATH, { id: 'ATXid_ip', status: 'Success' }, '203.0.113.5')).status).toBe(403);
    expect(await redisKeysOf(svc, msisdn)).toEqual([]);
    expect(await count(svc, 'ussd_events')).toBe(events);

    const refusals = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.msg === 'callback refused: address not in AT_CALLBACK_IP_ALLOWLIST');
    expect(refusals.map((r) => r.path)).toEqual(['/ussd/***', '/ussd/***', '/ussd/events/***', '/sms/delivery-reports/***']);
    const all = lines.join('');
    expect(all).not.toContain(AT_SECRET);
    expect(all).not.toContain(msisdn);
  });

  test('when the right secret comes from an allowed address, then the menu is served', async () => {
    const res = await post(svc, USSD_PATH, ussdForm('254719300002'), '192.0.2.10');
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/^CON /);
  });
});
