import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Daraja's B2C side (OAuth, B2C payment request, Transaction Status) and Africa's Talking SMS on
 * 127.0.0.1, for tests that run the built service as separate processes, where nock cannot reach. B2C
 * requests can be held unanswered (a slow Daraja) and answered from a script once released.
 */
export interface FakeB2cRequest {
  originatorConversationId: string;
  amount: number;
  /** Whether an HTTP answer was written (false: held, or the caller was gone when released). */
  answered: boolean;
}

/** How Daraja answers a B2C request: accepted, or an error envelope with its HTTP status. */
export type B2cAnswer = 'accepted' | { status: number; errorCode: string; errorMessage: string };

export interface FakeDarajaB2c {
  url: string;
  payouts: FakeB2cRequest[];
  /** The OriginalConversationID of every Transaction Status query asked. */
  statusQueries: string[];
  sms: Array<{ to: string; message: string }>;
  /** B2C requests wait, unanswered, until releasePayouts(). */
  holdPayouts(): void;
  releasePayouts(): void;
  /** The answers to the next B2C requests to arrive, in order (then: accepted). */
  answerNext(...answers: B2cAnswer[]): void;
  close(): Promise<void>;
}

let counter = 0;

export async function startFakeDarajaB2c(): Promise<FakeDarajaB2c> {
  const payouts: FakeB2cRequest[] = [];
  const statusQueries: string[] = [];
  const sms: Array<{ to: string; message: string }> = [];
  const script: B2cAnswer[] = [];
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
    if (req.method === 'POST' && path === '/mpesa/b2c/v3/paymentrequest') {
      const b = JSON.parse(raw);
      const request: FakeB2cRequest = { originatorConversationId: String(b.OriginatorConversationID), amount: Number(b.Amount), answered: false };
      payouts.push(request);
      // Decided on arrival: a held request was taken by Daraja whether or not anyone hears the answer.
      const answer = script.shift() ?? 'accepted';
      if (held) await new Promise<void>((resolve) => waiting.push(resolve));
      request.answered =
        answer === 'accepted'
          ? json(200, { ConversationID: `AG_fake_${Date.now()}_${++counter}`, OriginatorConversationID: request.originatorConversationId, ResponseCode: '0', ResponseDescription: 'Accept the service request successfully.' })
          : json(answer.status, { requestId: `r-${++counter}`, errorCode: answer.errorCode, errorMessage: answer.errorMessage });
      return;
    }
    if (req.method === 'POST' && path === '/mpesa/transactionstatus/v1/query') {
      statusQueries.push(String(JSON.parse(raw).OriginalConversationID));
      const n = ++counter;
      return void json(200, { OriginatorConversationID: `q-fake-${n}`, ConversationID: `AG_q_fake_${n}`, ResponseCode: '0', ResponseDescription: 'Accept the service request successfully.' });
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
    payouts,
    statusQueries,
    sms,
    holdPayouts: () => void (held = true),
    releasePayouts() {
      held = false;
      const release = waiting;
      waiting = [];
      for (const r of release) r();
    },
    answerNext: (...answers) => void script.push(...answers),
    close: () =>
      new Promise<void>((resolve) => {
        held = false;
        for (const r of waiting) r();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
