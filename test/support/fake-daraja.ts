import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Daraja (OAuth, STK Push, STK Query) and Africa's Talking SMS on 127.0.0.1, for tests that run the
 * service as separate processes, where nock cannot reach. It records every request and can hold STK
 * Push answers (a slow Daraja) until released.
 */
export interface FakePush {
  checkoutRequestId: string;
  reference: string;
  phone: string;
  amount: number;
  /** Whether the push's HTTP answer was written (false: the caller was gone, or it is still held). */
  answered: boolean;
}

export interface FakeDaraja {
  url: string;
  pushes: FakePush[];
  sms: Array<{ to: string; message: string }>;
  queries: string[];
  /** Push requests wait, unanswered, until releasePushes(). */
  holdPushes(): void;
  releasePushes(): void;
  /** The customer paid: Query answers ResultCode 0 for it from now on (otherwise "being processed"). */
  markPaid(checkoutRequestId: string): void;
  close(): Promise<void>;
}

let counter = 0;

export async function startFakeDaraja(): Promise<FakeDaraja> {
  const pushes: FakePush[] = [];
  const sms: Array<{ to: string; message: string }> = [];
  const queries: string[] = [];
  const paid = new Set<string>();
  let held = false;
  let waiting: Array<() => void> = [];

  const server = http.createServer(async (req, res) => {
    const raw = await new Promise<string>((resolve) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => resolve(body));
    });
    const json = (status: number, body: unknown) => {
      if (res.destroyed || res.writableEnded) return false;
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      return true;
    };
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/oauth/v1/generate') return void json(200, { access_token: 'fake-token', expires_in: '3599' });
    if (req.method === 'POST' && path === '/mpesa/stkpush/v1/processrequest') {
      const b = JSON.parse(raw);
      const push: FakePush = { checkoutRequestId: `ws_CO_fake_${Date.now()}_${++counter}`, reference: b.AccountReference, phone: String(b.PhoneNumber), amount: Number(b.Amount), answered: false };
      pushes.push(push);
      if (held) await new Promise<void>((resolve) => waiting.push(resolve));
      push.answered = json(200, { MerchantRequestID: `mr-${push.checkoutRequestId}`, CheckoutRequestID: push.checkoutRequestId, ResponseCode: '0', ResponseDescription: 'Success. Request accepted for processing', CustomerMessage: 'Success. Request accepted for processing' });
      return;
    }
    if (req.method === 'POST' && path === '/mpesa/stkpushquery/v1/query') {
      const id = String(JSON.parse(raw).CheckoutRequestID);
      queries.push(id);
      if (!paid.has(id)) return void json(500, { requestId: 'q', errorCode: '500.001.1001', errorMessage: 'The transaction is being processed' });
      return void json(200, { ResponseCode: '0', ResponseDescription: 'The service request has been accepted successsfully', MerchantRequestID: `mr-${id}`, CheckoutRequestID: id, ResultCode: '0', ResultDesc: 'The service request is processed successfully.' });
    }
    if (req.method === 'POST' && path === '/version1/messaging') {
      const form = new URLSearchParams(raw);
      sms.push({ to: form.get('to') ?? '', message: form.get('message') ?? '' });
      res.writeHead(201, { 'content-type': 'application/json' }).end(
        JSON.stringify({ SMSMessageData: { Message: 'Sent to 1/1', Recipients: [{ statusCode: 101, number: form.get('to'), status: 'Success', cost: 'KES 0.8000', messageId: `ATXid_fake_${++counter}` }] } }),
      );
      return;
    }
    json(404, { errorCode: '404.000.00', errorMessage: `no route ${req.method} ${path}` });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    pushes,
    sms,
    queries,
    holdPushes: () => void (held = true),
    releasePushes() {
      held = false;
      const release = waiting;
      waiting = [];
      for (const r of release) r();
    },
    markPaid: (id) => void paid.add(id),
    close: () =>
      new Promise<void>((resolve) => {
        held = false;
        for (const r of waiting) r();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
