import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { createAtEmulator, type AtEmulator, type AtEmulatorOptions } from '../../src/emulators/at-emulator';
import { VendorError } from '../../src/lib/errors';
import { createLogger } from '../../src/lib/logger';
import { createSmsSender } from '../../src/vendors/sms-client';
import { waitFor } from '../support/harness';

const USERNAME = 'sandbox';
const API_KEY = 'emulator-test-key';
const MESSAGE_ID = /^ATXid_[0-9a-f]{32}$/;

interface Running {
  url: string;
  emulator: AtEmulator;
  close(): Promise<void>;
}

async function listen(app: express.Express): Promise<{ server: Server; url: string }> {
  const server = await new Promise<Server>((resolve, reject) => {
    const srv = app.listen(0, '127.0.0.1', () => resolve(srv)).on('error', reject);
  });
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** The emulator mounted as the service mounts it, in a bare express app on a free port. */
async function startEmulator(overrides: Partial<AtEmulatorOptions> = {}): Promise<Running> {
  const emulator = createAtEmulator({ username: USERNAME, apiKey: API_KEY, log: createLogger('silent'), ...overrides });
  const app = express();
  app.use('/emulators/at', emulator.router);
  const { server, url } = await listen(app);
  return {
    url: `${url}/emulators/at`,
    emulator,
    async close() {
      emulator.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Stands in for our /sms/delivery-reports route: records every form it receives. */
async function startReportReceiver() {
  const reports: Array<{ form: Record<string, string>; contentType: string | undefined }> = [];
  const app = express();
  app.post('/sms/delivery-reports', express.urlencoded({ extended: false }), (req, res) => {
    reports.push({ form: { ...(req.body as Record<string, string>) }, contentType: req.get('content-type') });
    res.sendStatus(200);
  });
  const { server, url } = await listen(app);
  return {
    reports,
    url: `${url}/sms/delivery-reports`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function sendSms(url: string, fields: Record<string, string>, apiKey: string | null = API_KEY, apiKeyHeader = 'apiKey') {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (apiKey !== null) headers[apiKeyHeader] = apiKey;
  const res = await fetch(`${url}/version1/messaging`, { method: 'POST', headers, body: new URLSearchParams(fields) });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, contentType: res.headers.get('content-type'), text, json };
}

async function getInbox(url: string, phone: string) {
  const res = await fetch(`${url}/inbox/${encodeURIComponent(phone)}`);
  return { status: res.status, json: (await res.json()) as any };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("Africa's Talking SMS emulator", () => {
  let at: Running;
  beforeAll(async () => {
    at = await startEmulator();
  });
  afterAll(() => at.close());

  describe('sending', () => {
    test('when the credentials are right, then it answers 201 with the SDK shape: one Sent recipient, its cost and an ATXid', async () => {
      const res = await sendSms(at.url, { username: USERNAME, to: '+254712345678', message: 'Hello', bulkSMSMode: '1' });

      expect(res.status).toBe(201);
      expect(res.contentType).toMatch(/^application\/json/);
      expect(res.json.SMSMessageData.Message).toBe('Sent to 1/1 Total Cost: KES 0.8000');
      expect(res.json.SMSMessageData.Recipients).toHaveLength(1);
      const recipient = res.json.SMSMessageData.Recipients[0];
      expect(recipient).toEqual({ statusCode: 101, number: '+254712345678', status: 'Success', cost: 'KES 0.8000', messageId: expect.stringMatching(MESSAGE_ID) });
    });

    test('when the apikey header is spelled in lower case, then it is still accepted', async () => {
      const res = await sendSms(at.url, { username: USERNAME, to: '+254733123456', message: 'Hi' }, API_KEY, 'apikey');
      expect(res.status).toBe(201);
      expect(res.json.SMSMessageData.Recipients[0].statusCode).toBe(101);
    });

    test('when the apiKey is wrong, then 401 with a plain-text body and nothing is delivered', async () => {
      const res = await sendSms(at.url, { username: USERNAME, to: '+254799000001', message: 'nope' }, 'wrong-key');

      expect(res.status).toBe(401);
      expect(res.contentType).toMatch(/^text\/plain/);
      expect(res.text).toBe('The supplied authentication is invalid');
      expect(res.json).toBeUndefined();
      expect(at.emulator.inbox('+254799000001')).toEqual([]);
    });

    test('when the username does not match the key, then 401 with a plain-text body', async () => {
      const res = await sendSms(at.url, { username: 'someone-else', to: '+254799000001', message: 'nope' });

      expect(res.status).toBe(401);
      expect(res.contentType).toMatch(/^text\/plain/);
      expect(res.text).toBe('The supplied authentication is invalid');
      expect(at.emulator.inbox('+254799000001')).toEqual([]);
    });

    test('when the apiKey header is missing, then 401', async () => {
      const res = await sendSms(at.url, { username: USERNAME, to: '+254799000001', message: 'nope' }, null);
      expect(res.status).toBe(401);
      expect(res.text).toBe('The supplied authentication is invalid');
    });

    test.each([
      ['to', { message: 'no recipient' }],
      ['to', { to: ' , ', message: 'only separators' }],
      ['message', { to: '+254799000001' }],
      ['message', { to: '+254799000001', message: '' }],
    ])("when '%s' is missing, then 400 with a plain-text body", async (field, fields) => {
      const res = await sendSms(at.url, { username: USERNAME, ...fields });

      expect(res.status).toBe(400);
      expect(res.contentType).toMatch(/^text\/plain/);
      expect(res.text).toBe(`Request is missing required form field '${field}'`);
      expect(at.emulator.inbox('+254799000001')).toEqual([]);
    });

    test('when several recipients include invalid ones, then each valid one is sent and each invalid one gets a 403 entry', async () => {
      const res = await sendSms(at.url, {
        username: USERNAME,
        to: '+254708374149, 12345,+254110123456,0722000111',
        message: 'To many',
        bulkSMSMode: '1',
      });

      expect(res.status).toBe(201);
      expect(res.json.SMSMessageData.Message).toBe('Sent to 2/4 Total Cost: KES 1.6000');
      const [first, second, third, fourth] = res.json.SMSMessageData.Recipients;
      expect(first).toEqual({ statusCode: 101, number: '+254708374149', status: 'Success', cost: 'KES 0.8000', messageId: expect.stringMatching(MESSAGE_ID) });
      expect(second).toEqual({ statusCode: 403, number: '12345', status: 'InvalidPhoneNumber', cost: '0', messageId: 'None' });
      expect(third).toEqual({ statusCode: 101, number: '+254110123456', status: 'Success', cost: 'KES 0.8000', messageId: expect.stringMatching(MESSAGE_ID) });
      // Not E.164: the real API wants the country code, so the emulator refuses a local number.
      expect(fourth).toEqual({ statusCode: 403, number: '0722000111', status: 'InvalidPhoneNumber', cost: '0', messageId: 'None' });
      expect(first.messageId).not.toBe(third.messageId);

      expect(at.emulator.inbox('254708374149').map((m) => m.id)).toEqual([first.messageId]);
      expect(at.emulator.inbox('254110123456').map((m) => m.id)).toEqual([third.messageId]);
      expect(at.emulator.inbox('254722000111')).toEqual([]);
    });

    test('when every recipient is invalid, then nothing is charged', async () => {
      const res = await sendSms(at.url, { username: USERNAME, to: '+255712345678', message: 'Tanzania' });
      expect(res.status).toBe(201);
      expect(res.json.SMSMessageData.Message).toBe('Sent to 0/1 Total Cost: 0');
      expect(res.json.SMSMessageData.Recipients).toEqual([{ statusCode: 403, number: '+255712345678', status: 'InvalidPhoneNumber', cost: '0', messageId: 'None' }]);
    });
  });

  describe('cost', () => {
    const gsm = (n: number) => 'a'.repeat(n);
    test.each([
      ['160 GSM-7 characters', 'KES 0.8000', gsm(160)],
      ['161 GSM-7 characters (2 segments)', 'KES 1.6000', gsm(161)],
      ['306 GSM-7 characters (2 segments of 153)', 'KES 1.6000', gsm(306)],
      ['307 GSM-7 characters (3 segments)', 'KES 2.4000', gsm(307)],
      ['159 characters and one € (two septets: 161)', 'KES 1.6000', `${gsm(159)}€`],
      ['70 characters, one of them not GSM-7', 'KES 0.8000', `${gsm(69)}✓`],
      ['71 characters, one of them not GSM-7 (2 segments of 67)', 'KES 1.6000', `${gsm(70)}✓`],
      ['100 GSM-7 characters and a curly apostrophe (not GSM-7)', 'KES 1.6000', `${gsm(50)}’${gsm(50)}`],
      ['135 characters with a non-GSM-7 one (3 segments)', 'KES 2.4000', `${gsm(134)}✓`],
    ])('when the message is %s, then it costs %s', async (_what, cost, message) => {
      const res = await sendSms(at.url, { username: USERNAME, to: '+254711000222', message });
      expect(res.status).toBe(201);
      expect(res.json.SMSMessageData.Recipients[0].cost).toBe(cost);
      expect(res.json.SMSMessageData.Message).toBe(`Sent to 1/1 Total Cost: ${cost}`);
    });

    test('when a 2-segment message goes to two numbers, then the total is four segments', async () => {
      const res = await sendSms(at.url, { username: USERNAME, to: '+254711000222,+254722000111', message: gsm(200) });
      expect(res.json.SMSMessageData.Message).toBe('Sent to 2/2 Total Cost: KES 3.2000');
    });
  });

  describe('inbox', () => {
    test('when a phone receives messages, then its inbox lists them oldest first under any spelling of the number', async () => {
      const first = await sendSms(at.url, { username: USERNAME, to: '+254722000333', message: 'first', from: 'GOLDWALLET' });
      const second = await sendSms(at.url, { username: USERNAME, to: '+254722000333', message: 'second' });
      await sendSms(at.url, { username: USERNAME, to: '+254733000999', message: 'someone else' });
      const firstId = first.json.SMSMessageData.Recipients[0].messageId;
      const secondId = second.json.SMSMessageData.Recipients[0].messageId;

      for (const spelling of ['+254722000333', '254722000333', '0722000333']) {
        const res = await getInbox(at.url, spelling);
        expect(res.status).toBe(200);
        expect(res.json.messages).toEqual([
          { id: firstId, to: '+254722000333', from: 'GOLDWALLET', message: 'first', receivedAt: expect.any(String) },
          { id: secondId, to: '+254722000333', from: 'AFRICASTKNG', message: 'second', receivedAt: expect.any(String) },
        ]);
        expect(Number.isNaN(Date.parse(res.json.messages[0].receivedAt))).toBe(false);
      }
      expect(at.emulator.inbox('0722000333').map((m) => m.message)).toEqual(['first', 'second']);
    });

    test('when a phone has received nothing, then its inbox is empty', async () => {
      const res = await getInbox(at.url, '0712000000');
      expect(res).toEqual({ status: 200, json: { messages: [] } });
    });

    test('when the phone is not a Kenyan mobile number, then 400', async () => {
      const res = await getInbox(at.url, '12345');
      expect(res).toEqual({ status: 400, json: { error: 'invalid_phone' } });
    });
  });

  describe('delivery reports', () => {
    test('when a message is sent, then a form-encoded Success report for its messageId is posted after the delay', async () => {
      const receiver = await startReportReceiver();
      const emu = await startEmulator({ deliveryReportUrl: receiver.url, deliveryDelayMs: 150 });
      try {
        const sentAt = Date.now();
        const res = await sendSms(emu.url, { username: USERNAME, to: '+254712345678', message: 'report me' });
        const messageId = res.json.SMSMessageData.Recipients[0].messageId;
        expect(receiver.reports).toEqual([]);

        await waitFor(() => Promise.resolve(receiver.reports.length === 1), 'the delivery report', 5000);
        expect(Date.now() - sentAt).toBeGreaterThanOrEqual(140);
        expect(receiver.reports[0]!.contentType).toMatch(/^application\/x-www-form-urlencoded/);
        expect(receiver.reports[0]!.form).toEqual({
          id: messageId,
          status: 'Success',
          phoneNumber: '+254712345678',
          networkCode: '63902',
          failureReason: '',
          retryCount: '0',
        });
      } finally {
        await emu.close();
        await receiver.close();
      }
    });

    test('when several numbers are sent to, then each gets its own report and invalid ones get none', async () => {
      const receiver = await startReportReceiver();
      const emu = await startEmulator({ deliveryReportUrl: receiver.url, deliveryDelayMs: 20 });
      try {
        const res = await sendSms(emu.url, { username: USERNAME, to: '+254712345678,bogus,+254708374149', message: 'both' });
        const ids = res.json.SMSMessageData.Recipients.filter((r: any) => r.statusCode === 101).map((r: any) => r.messageId);
        await waitFor(() => Promise.resolve(receiver.reports.length >= 2), 'two delivery reports', 5000);
        await sleep(100);
        expect(receiver.reports).toHaveLength(2);
        expect(receiver.reports.map((r) => [r.form.id, r.form.phoneNumber]).sort()).toEqual(
          [[ids[0], '+254712345678'], [ids[1], '+254708374149']].sort(),
        );
      } finally {
        await emu.close();
        await receiver.close();
      }
    });

    test('when the emulator is closed before the delay, then no report is posted', async () => {
      const receiver = await startReportReceiver();
      const emu = await startEmulator({ deliveryReportUrl: receiver.url, deliveryDelayMs: 100 });
      try {
        const res = await sendSms(emu.url, { username: USERNAME, to: '+254712345678', message: 'cut off' });
        expect(res.status).toBe(201);
        emu.emulator.close();
        await sleep(300);
        expect(receiver.reports).toEqual([]);
      } finally {
        await emu.close();
        await receiver.close();
      }
    });
  });

  describe('with our own SMS client', () => {
    test('when createSmsSender points at the emulator, then the message is accepted and lands in the inbox', async () => {
      const sender = createSmsSender({ username: USERNAME, apiKey: API_KEY, senderId: 'GOLDWALLET', apiUrl: at.url });

      const accepted = await sender.send('+254799123456', 'Bought 0.0588 g of gold for KES 500. Receipt NLJ7RT61SV');

      expect(accepted).toEqual({ messageId: expect.stringMatching(MESSAGE_ID), statusCode: 101, status: 'Success', cost: 'KES 0.8000' });
      expect(at.emulator.inbox('0799123456')).toEqual([
        { id: accepted.messageId, to: '+254799123456', from: 'GOLDWALLET', message: 'Bought 0.0588 g of gold for KES 500. Receipt NLJ7RT61SV', receivedAt: expect.any(String) },
      ]);
    });

    test('when our client has the wrong key, then it rejects with a retryable http_401 carrying the plain-text body', async () => {
      const sender = createSmsSender({ username: USERNAME, apiKey: 'stale-key', senderId: undefined, apiUrl: at.url });

      const err = await sender.send('+254799123457', 'never').then(
        () => null,
        (e: unknown) => e,
      );

      expect(err).toBeInstanceOf(VendorError);
      expect(err).toMatchObject({ vendor: 'africastalking', kind: 'retry', code: 'http_401', httpStatus: 401 });
      expect((err as VendorError).message).toContain('The supplied authentication is invalid');
      expect(at.emulator.inbox('0799123457')).toEqual([]);
    });

    test('when our client sends to a number the emulator cannot deliver, then it rejects as permanent (403)', async () => {
      const sender = createSmsSender({ username: USERNAME, apiKey: API_KEY, senderId: undefined, apiUrl: at.url });
      const err = await sender.send('+255712345678', 'never').then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ vendor: 'africastalking', kind: 'permanent', code: 'recipient_403' });
    });
  });
});
