import http from 'node:http';
import net from 'node:net';
import { gzipSync } from 'node:zlib';
import nock from 'nock';
import { stkCallbackFastPath } from '../../src/http/stk-callback-fast-path';
import { CALLBACK_PATH, expectBooksBalanced, fundPoolGrams, startTestService, type TestService } from '../support/harness';
import { buyUntilPushed, orderStatus } from '../support/flows';
import { stkCallbackBody } from '../support/vendors';

/**
 * Daraja's STK callbacks are answered before express in their plain case (src/http/stk-callback-fast-path.ts). The
 * same requests go to a service taking that path and to one that cannot (an IP allowlist sends every callback
 * through express): every answer, status, type and body, must be the same. Then which requests the fast path takes.
 */
describe('the STK callback fast path answers exactly as express', () => {
  let fast: TestService;
  let viaExpress: TestService;
  beforeAll(async () => {
    fast = await startTestService();
    viaExpress = await startTestService({ MPESA_CALLBACK_IP_ALLOWLIST: '127.0.0.0/8,::1/128' });
    await fundPoolGrams(fast.db, 10);
    await fundPoolGrams(viaExpress.db, 10);
  });
  afterEach(async () => {
    nock.cleanAll();
    await expectBooksBalanced(fast.db);
    await expectBooksBalanced(viaExpress.db);
  });
  afterAll(async () => {
    await fast?.close();
    await viaExpress?.close();
  });

  const json = (v: unknown) => JSON.stringify(v);
  const unknownFailure = (id: string) => json(stkCallbackBody({ checkoutRequestId: id, resultCode: 1032 }));
  const cases: Array<[string, Request]> = [
    ['a failure for an id nobody pushed', { body: unknownFailure('ws_CO_fp_1') }],
    ['a payment for an id nobody pushed', { body: json(stkCallbackBody({ checkoutRequestId: 'ws_CO_fp_2', resultCode: 0, amount: 500, receipt: 'SFP0000002', phone: 254712345678 })) }],
    ['a payload that is not a callback', { body: '{"hello":1}' }],
    ['an array', { body: ' \n[]' }],
    ['an empty body', { body: '' }],
    ['only whitespace', { body: ' \t\r\n' }],
    ['a JSON string', { body: '"Body"' }],
    ['a number', { body: '1' }],
    ['broken JSON', { body: '{"Body":' }],
    ['a NUL (escaped, as JSON.stringify writes it)', { body: unknownFailure('ws_CO_fp_\u0000') }],
    ['half a surrogate pair (escaped)', { body: unknownFailure('ws_CO_fp_\ud83d') }],
    ['a low surrogate alone (escaped)', { body: unknownFailure('ws_CO_fp_\ude00') }],
    ['a whole surrogate pair, escaped', { body: unknownFailure('ws_CO_fp_23_@').replace('@', '\\ud83d\\ude00') }],
    ['an escaped backslash before u0000 (text, not a NUL)', { body: unknownFailure('ws_CO_fp_25_@').replace('@', '\\\\u0000') }],
    ['half a pair after an escaped backslash', { body: unknownFailure('ws_CO_fp_26_@').replace('@', '\\\\ud83d\\ude00') }],
    ['a byte order mark', { body: `\uFEFF${unknownFailure('ws_CO_fp_3')}` }],
    ['a BOM alone', { body: '\uFEFF' }],
    ['invalid UTF-8', { body: Buffer.concat([Buffer.from('{"Body":{"stkCallback":{"CheckoutRequestID":"ws_CO_fp_'), Buffer.from([0xc3, 0x28]), Buffer.from('"}}}')]) }],
    ['charset=utf-8', { body: unknownFailure('ws_CO_fp_4'), headers: { 'content-type': 'application/json; charset=utf-8' } }],
    ['charset="UTF-8"', { body: unknownFailure('ws_CO_fp_5'), headers: { 'content-type': 'Application/JSON;charset="UTF-8"' } }],
    ['charset=utf-16', { body: unknownFailure('ws_CO_fp_6'), headers: { 'content-type': 'application/json; charset=utf-16' } }],
    ['charset=latin1', { body: unknownFailure('ws_CO_fp_7'), headers: { 'content-type': 'application/json; charset=iso-8859-1' } }],
    ['text/plain', { body: unknownFailure('ws_CO_fp_8'), headers: { 'content-type': 'text/plain' } }],
    ['no content type', { body: unknownFailure('ws_CO_fp_9'), headers: { 'content-type': undefined } }],
    ['a gzipped body', { body: gzipSync(unknownFailure('ws_CO_fp_10')), headers: { 'content-encoding': 'gzip' } }],
    ['content-encoding identity', { body: unknownFailure('ws_CO_fp_11'), headers: { 'content-encoding': 'Identity' } }],
    ['an unknown content encoding', { body: unknownFailure('ws_CO_fp_12'), headers: { 'content-encoding': 'zstd' } }],
    ['a chunked body', { body: unknownFailure('ws_CO_fp_13'), chunked: true }],
    ['a body of exactly 16 kB', { body: padded(16 * 1024) }],
    ['a body over 16 kB', { body: padded(16 * 1024 + 1) }],
    ['a wrong secret', { path: '/mpesa/callback/not-the-secret', body: unknownFailure('ws_CO_fp_14') }],
    ['a query string', { path: `${CALLBACK_PATH}?x=1`, body: unknownFailure('ws_CO_fp_15') }],
    ['a trailing slash', { path: `${CALLBACK_PATH}/`, body: unknownFailure('ws_CO_fp_16') }],
    ['an upper-case route', { path: CALLBACK_PATH.replace('/mpesa/', '/MPESA/'), body: unknownFailure('ws_CO_fp_17') }],
    ['an encoded secret', { path: CALLBACK_PATH.replace(/-/g, '%2D'), body: unknownFailure('ws_CO_fp_18') }],
    ['a deeper path', { path: `${CALLBACK_PATH}/more`, body: unknownFailure('ws_CO_fp_19') }],
    ['a GET', { method: 'GET', body: '' }],
    ['a secret segment that does not decode', { path: '/mpesa/callback/s3cr3t%zzPath', body: unknownFailure('ws_CO_fp_24') }],
    // U+00A0 (a latin1 header byte node accepts) is JavaScript \s but not HTTP whitespace: type-is sees the type
    // "application/json\u00a0" and express leaves the body unparsed (400); content-type reads the charset " utf-8" (415).
    ['a no-break space after the type', { body: unknownFailure('ws_CO_fp_20'), headers: { 'content-type': 'application/json\u00a0' } }],
    ['a no-break space before the charset', { body: unknownFailure('ws_CO_fp_21'), headers: { 'content-type': 'application/json; charset=\u00a0utf-8' } }],
    ['a tab before the charset', { body: unknownFailure('ws_CO_fp_22'), headers: { 'content-type': 'application/json;\tcharset=utf-8' } }],
  ];

  test('the service with an IP allowlist really answers through express', () => {
    const express: http.RequestListener = () => undefined;
    expect(stkCallbackFastPath(viaExpress.running.services, express)).toBe(express);
    expect(stkCallbackFastPath(fast.running.services, express)).not.toBe(express);
  });

  test.each(cases)('%s', async (_name, r) => {
    const a = await send(fast.url, r);
    const b = await send(viaExpress.url, r);
    expect(a).toEqual(b);
    expect(a.status).toBeLessThan(500);
  });

  test('a payment for a pushed order, then its duplicate: the same answers, the same order in each', async () => {
    const pushed = new Map([[fast, await buyUntilPushed(fast)], [viaExpress, await buyUntilPushed(viaExpress)]]);
    for (const copy of ['first', 'duplicate']) {
      const answers = [];
      for (const [svc, { order, checkoutRequestId }] of pushed) {
        const body = json(stkCallbackBody({ checkoutRequestId, resultCode: 0, amount: 500, receipt: 'SFPA000001', phone: 254712345678 }));
        answers.push({ copy, ...(await send(svc.url, { body })), order: await orderStatus(svc, order.id) });
      }
      expect(answers[0]).toEqual(answers[1]);
      expect(answers[0]).toMatchObject({ status: 200, body: '{"ResultCode":0,"ResultDesc":"Accepted"}', order: 'paid' });
    }
  });

  test('an upload the client aborts is no error of the service: express logs nothing, and neither may the fast path', async () => {
    const errors: unknown[] = [];
    const spy = jest.spyOn(fast.running.services.log, 'error').mockImplementation(((...args: unknown[]) => void errors.push(args)) as never);
    try {
      await new Promise<void>((resolve) => {
        const socket = net.connect(Number(new URL(fast.url).port), '127.0.0.1', () => {
          socket.write(`POST ${CALLBACK_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"Body":`);
          setTimeout(() => socket.destroy(), 100);
        });
        socket.on('close', () => setTimeout(resolve, 200));
      });
    } finally {
      spy.mockRestore();
    }
    expect(errors).toEqual([]);
  });

  test('only the plain case skips express, and express gets every other request before any of its body was read', async () => {
    const reached: Array<{ url: string; bodyRead: boolean }> = [];
    const handler = stkCallbackFastPath(fast.running.services, (req, res) => {
      reached.push({ url: req.url ?? '', bodyRead: req.readableDidRead });
      req.resume();
      res.writeHead(299).end();
    });
    const server = http.createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      expect(cases.filter(([name]) => PLAIN.has(name))).toHaveLength(PLAIN.size);
      for (const [name, r] of cases) {
        reached.length = 0;
        const { status } = await send(url, r);
        const seen = { name, status: status === 299 ? 'express' : 'fast path', reached };
        if (PLAIN.has(name)) expect(seen).toEqual({ name, status: 'fast path', reached: [] });
        else expect(seen).toEqual({ name, status: 'express', reached: [{ url: r.path ?? CALLBACK_PATH, bodyRead: false }] });
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

/** The requests the fast path answers itself; every other one in the table is express's. */
const PLAIN = new Set([
  'a failure for an id nobody pushed', 'a payment for an id nobody pushed', 'a payload that is not a callback', 'an array', 'an empty body',
  'only whitespace', 'a JSON string', 'a number', 'broken JSON', 'a NUL (escaped, as JSON.stringify writes it)', 'a byte order mark', 'a BOM alone', 'half a surrogate pair (escaped)', 'a low surrogate alone (escaped)', 'a whole surrogate pair, escaped', 'an escaped backslash before u0000 (text, not a NUL)', 'half a pair after an escaped backslash', 'invalid UTF-8',
  'charset=utf-8', 'charset="UTF-8"', 'content-encoding identity', 'a body of exactly 16 kB', 'an encoded secret', 'a tab before the charset',
]);

interface Request {
  path?: string;
  method?: string;
  body: string | Buffer;
  /** undefined removes the header */
  headers?: Record<string, string | undefined>;
  /** sent in two chunks, with no content-length */
  chunked?: boolean;
}

/** A raw request (fetch would normalise headers and bodies): status, content type and body of the answer. */
function send(base: string, r: Request): Promise<{ status: number; type: string | undefined; body: string }> {
  const body = Buffer.from(r.body);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  for (const [k, v] of Object.entries(r.headers ?? {})) {
    if (v === undefined) delete headers[k];
    else headers[k] = v;
  }
  if (!r.chunked) headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${r.path ?? CALLBACK_PATH}`, { method: r.method ?? 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (r.chunked) {
      req.write(body.subarray(0, 10));
      req.end(body.subarray(10));
    } else req.end(body);
  });
}

/** A failure callback for an unknown id, padded (in a field the schema ignores) to exactly `bytes` bytes. */
function padded(bytes: number): string {
  const base = { Body: { stkCallback: { MerchantRequestID: 'mr-pad', CheckoutRequestID: 'ws_CO_fp_pad', ResultCode: 1032, ResultDesc: 'Request cancelled by user' } }, pad: '' };
  const filler = bytes - JSON.stringify(base).length;
  return JSON.stringify({ ...base, pad: 'x'.repeat(filler) });
}
