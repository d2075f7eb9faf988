import { X509Certificate, createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { Redis } from 'ioredis';
import nock from 'nock';
import type { Config } from '../../src/config';
import { RedisKeyValueStore } from '../../src/infra/kv-store';
import { VendorError } from '../../src/lib/errors';
import type { Msisdn } from '../../src/lib/msisdn';
import { decryptPkcs1v15 } from '../../src/emulators/daraja/initiator';
import {
  NON_NUMERIC_RESULT_CODE,
  b2cResultSchema,
  parseDarajaDateTime,
  queueTimeoutSchema,
  toB2cResult,
  toQueueTimeout,
  toTransactionStatusResult,
  transactionStatusResultSchema,
} from '../../src/vendors/daraja-callbacks';
import { DarajaClient, type B2cSettings } from '../../src/vendors/daraja-client';
import { securityCredential } from '../../src/vendors/daraja-security-credential';
import { darajaPassword } from '../../src/vendors/daraja-time';
import { DARAJA_HOST, SANDBOX_PASSKEY } from '../support/harness';
import { mockDarajaToken } from '../support/vendors';
import { TEST_REDIS_URL } from '../support/test-env';

/**
 * DarajaClient's STK Query, B2C and Transaction Status, against nock at the sandbox host: what we send,
 * field by field, and how every kind of answer is classified. Plus the SecurityCredential and the
 * B2C / Transaction Status / queue-timeout callback schemas, on payloads shaped like Safaricom's samples.
 */

const SHORTCODE = '174379';
// 2026-11-26 07:48:52 UTC = 10:48:52 in Nairobi.
const NOW = new Date('2026-11-26T07:48:52Z');
const TIMESTAMP = '20261126104852';
const B2C: B2cSettings = {
  shortcode: '600996',
  initiatorName: 'goldwallet_api',
  securityCredential: 'c2VjdXJpdHktY3JlZGVudGlhbA==',
  resultUrl: 'https://wallet.example.com/mpesa/b2c/result/s3cr3t',
  timeoutUrl: 'https://wallet.example.com/mpesa/b2c/timeout/s3cr3t',
  statusResultUrl: 'https://wallet.example.com/mpesa/status/result/s3cr3t',
};
const MPESA: Config['mpesa'] = {
  environment: 'sandbox',
  baseUrl: DARAJA_HOST,
  consumerKey: 'test-consumer-key',
  consumerSecret: 'test-consumer-secret',
  shortcode: SHORTCODE,
  passkey: SANDBOX_PASSKEY,
  callbackUrl: 'https://wallet.example.com/mpesa/callback/s3cr3t',
  callbackPathPrefix: '/mpesa/callback',
  callbackSecret: 's3cr3t',
  transactionType: 'CustomerPayBillOnline',
  partyB: SHORTCODE,
  httpTimeoutMs: 2000,
};
const PHONE = '254708374149' as Msisdn;

let redis: Redis;
const keyPrefix = `client-extra-${process.pid}-${Date.now()}`;
const client = (b2c: B2cSettings | null = B2C) => new DarajaClient(MPESA, new RedisKeyValueStore(redis), keyPrefix, () => NOW, b2c ?? undefined);

beforeAll(() => {
  redis = new Redis(TEST_REDIS_URL);
});

beforeEach(async () => {
  nock.cleanAll();
  // Every test starts without a cached token, so each one states the OAuth calls it expects.
  await redis.del(`${keyPrefix}:daraja:token`, `${keyPrefix}:daraja:token:lock`);
});

afterAll(async () => {
  await redis.del(`${keyPrefix}:daraja:token`, `${keyPrefix}:daraja:token:lock`);
  redis.disconnect();
});

interface Captured {
  body: Record<string, any>;
  authorization: string | undefined;
}

/** One answer from `path`, recording what was sent. */
function mockPost(path: string, status: number, answer: unknown, captured: Captured[] = []) {
  nock(DARAJA_HOST)
    .post(path)
    .reply(function (_uri, body) {
      captured.push({ body: body as Record<string, any>, authorization: this.req.headers.authorization as string | undefined });
      return [status, answer as any];
    });
  return captured;
}

async function failure(p: Promise<unknown>): Promise<VendorError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof VendorError) return err;
    throw err;
  }
  throw new Error('expected a VendorError, the call succeeded');
}

const envelope = (errorCode: string, errorMessage: string) => ({ requestId: '22759-3566117-1', errorCode, errorMessage });

// ---------------------------------------------------------------- STK Query

describe('stkQuery', () => {
  const QUERY = '/mpesa/stkpushquery/v1/query';
  const ID = 'ws_CO_26112026104852123456';

  test('when Daraja answers the "being processed" envelope, then it is pending, not an error; the body carries one Timestamp in both fields', async () => {
    mockDarajaToken('tok-1');
    const sent = mockPost(QUERY, 500, envelope('500.001.1001', 'The transaction is being processed'));
    await expect(client().stkQuery(ID)).resolves.toEqual({ state: 'pending' });
    expect(sent).toHaveLength(1);
    expect(sent[0]!.authorization).toBe('Bearer tok-1');
    expect(sent[0]!.body).toEqual({
      BusinessShortCode: SHORTCODE,
      Password: darajaPassword(SHORTCODE, SANDBOX_PASSKEY, TIMESTAMP),
      Timestamp: TIMESTAMP,
      CheckoutRequestID: ID,
    });
  });

  test.each<[string, string, number]>([
    ['"0"', '0', 0],
    ['"1032"', '1032', 1032],
    ['" 1 " (padded)', ' 1 ', 1],
  ])('when the final answer has ResultCode %s as a string, then it is final with an integer code', async (_n, wire, code) => {
    mockDarajaToken();
    mockPost(QUERY, 200, {
      ResponseCode: '0',
      ResponseDescription: 'The service request has been accepted successsfully',
      MerchantRequestID: '22205-34066-1',
      CheckoutRequestID: ID,
      ResultCode: wire,
      ResultDesc: 'Request cancelled by user',
    });
    const res = await client().stkQuery(ID);
    expect(res).toEqual({ state: 'final', resultCode: code, resultCodeText: String(code), resultDesc: 'Request cancelled by user' });
    if (res.state === 'final') expect(Number.isInteger(res.resultCode)).toBe(true);
  });

  test('when the ResultCode is alphanumeric (SFC_IC0003), then it is a final failure with the code kept as text', async () => {
    mockDarajaToken();
    mockPost(QUERY, 200, { ResponseCode: '0', CheckoutRequestID: ID, ResultCode: 'SFC_IC0003', ResultDesc: 'The operator does not exist.' });
    await expect(client().stkQuery(ID)).resolves.toEqual({ state: 'final', resultCode: NON_NUMERIC_RESULT_CODE, resultCodeText: 'SFC_IC0003', resultDesc: 'The operator does not exist.' });
  });

  test('when a 200 says ResultCode 4999 "still under processing", then it is pending too', async () => {
    mockDarajaToken();
    mockPost(QUERY, 200, { ResponseCode: '0', CheckoutRequestID: ID, ResultCode: '4999', ResultDesc: 'The transaction is still under processing' });
    await expect(client().stkQuery(ID)).resolves.toEqual({ state: 'pending' });
  });

  test('when the token is rejected (HTTP 404 404.001.03), then it is refreshed once and the query answered', async () => {
    mockDarajaToken('stale');
    mockDarajaToken('fresh');
    const sent: Captured[] = [];
    mockPost(QUERY, 404, envelope('404.001.03', 'Invalid Access Token'), sent);
    mockPost(QUERY, 200, { ResponseCode: '0', CheckoutRequestID: ID, ResultCode: '0', ResultDesc: 'The service request is processed successfully.' }, sent);
    await expect(client().stkQuery(ID)).resolves.toMatchObject({ state: 'final', resultCode: 0 });
    expect(sent.map((s) => s.authorization)).toEqual(['Bearer stale', 'Bearer fresh']);
    expect(nock.isDone()).toBe(true);
    expect(await redis.get(`${keyPrefix}:daraja:token`)).toBe('fresh');
  });

  test('when Daraja answers with a redirect, then it is a failure and the request is not sent on to the address it names', async () => {
    mockDarajaToken();
    const elsewhere = nock('https://elsewhere.example.com').post('/collect').reply(200, { ResponseCode: '0' });
    nock(DARAJA_HOST).post(QUERY).reply(307, '', { Location: 'https://elsewhere.example.com/collect' });
    await expect(client().stkQuery(ID)).rejects.toMatchObject({ code: 'http_307', kind: 'retry', maybeProcessed: true });
    expect(elsewhere.isDone()).toBe(false);
  });

  test('when the token is rejected twice in a row, then a retry VendorError (no third token)', async () => {
    mockDarajaToken('a');
    mockDarajaToken('b');
    mockPost(QUERY, 404, envelope('404.001.03', 'Invalid Access Token'));
    mockPost(QUERY, 404, envelope('404.001.03', 'Invalid Access Token'));
    const err = await failure(client().stkQuery(ID));
    expect(err).toMatchObject({ kind: 'retry', code: '404.001.03' });
    expect(nock.isDone()).toBe(true);
  });

  test.each<[string, number, unknown, string, string]>([
    ['500.001.1001 "Unable to lock subscriber" (same code, other meaning)', 500, envelope('500.001.1001', 'Unable to lock subscriber, a transaction is already in process'), 'retry', '500.001.1001'],
    ['500.001.1001 "Wrong credentials"', 500, envelope('500.001.1001', 'Wrong credentials'), 'retry', '500.001.1001'],
    ['spike arrest 500.003.02', 500, envelope('500.003.02', 'System is busy'), 'retry', '500.003.02'],
    ['an HTML 503 from the gateway', 503, '<html><body>Service Unavailable</body></html>', 'retry', 'http_503'],
    ['400.002.02 Invalid CheckoutRequestID', 400, envelope('400.002.02', 'Bad Request - Invalid CheckoutRequestID'), 'permanent', '400.002.02'],
  ])('when Daraja answers %s, then a %s… VendorError', async (_n, status, answer, kind, code) => {
    mockDarajaToken();
    mockPost(QUERY, status, answer);
    const err = await failure(client().stkQuery(ID));
    expect(err.kind).toBe(kind);
    expect(err.code).toBe(code);
  });

  test('when a 200 lacks a ResultCode or names another CheckoutRequestID, then a permanent VendorError', async () => {
    mockDarajaToken();
    mockPost(QUERY, 200, { ResponseCode: '0', CheckoutRequestID: ID, ResultDesc: 'x' });
    expect(await failure(client().stkQuery(ID))).toMatchObject({ kind: 'permanent', code: 'malformed_response' });
    mockPost(QUERY, 200, { ResponseCode: '0', CheckoutRequestID: 'ws_CO_other', ResultCode: '0', ResultDesc: 'ok' });
    expect(await failure(client().stkQuery(ID))).toMatchObject({ kind: 'permanent', code: 'checkout_id_mismatch' });
  });
});

// ---------------------------------------------------------------- B2C

describe('b2cPayment', () => {
  const B2C_PATH = '/mpesa/b2c/v3/paymentrequest';
  const ACCEPTED = { ConversationID: 'AG_20261126_00004e48cf7e3533f581', OriginatorConversationID: 'gw-payout-0001', ResponseCode: '0', ResponseDescription: 'Accept the service request successfully.' };
  const request = { originatorConversationId: 'gw-payout-0001', msisdn: PHONE, amountKes: 1500, remarks: 'Gold sale payout', occasion: 'SELL-0001' };

  test('when a payout is sent, then every field is as Daraja documents it (Occassion misspelt, integer Amount, our URLs)', async () => {
    mockDarajaToken('tok-b2c');
    const sent = mockPost(B2C_PATH, 200, ACCEPTED);
    const res = await client().b2cPayment(request);
    expect(res).toEqual({ duplicate: false, conversationId: ACCEPTED.ConversationID, originatorConversationId: 'gw-payout-0001' });
    expect(sent[0]!.authorization).toBe('Bearer tok-b2c');
    const body = sent[0]!.body;
    expect(body).toEqual({
      OriginatorConversationID: 'gw-payout-0001',
      InitiatorName: 'goldwallet_api',
      SecurityCredential: B2C.securityCredential,
      CommandID: 'BusinessPayment',
      Amount: 1500,
      PartyA: '600996',
      PartyB: '254708374149',
      Remarks: 'Gold sale payout',
      QueueTimeOutURL: B2C.timeoutUrl,
      ResultURL: B2C.resultUrl,
      Occassion: 'SELL-0001',
    });
    expect(Number.isInteger(body.Amount)).toBe(true);
    expect(body).not.toHaveProperty('Occasion');
    expect(body.SecurityCredential.length).toBeGreaterThan(0);
  });

  test('when no occasion is given, then Occassion is sent empty', async () => {
    mockDarajaToken();
    const sent = mockPost(B2C_PATH, 200, ACCEPTED);
    const { occasion: _o, ...withoutOccasion } = request;
    await client().b2cPayment(withoutOccasion);
    expect(sent[0]!.body.Occassion).toBe('');
  });

  test('when Daraja answers 500.002.1001 Duplicate OriginatorConversationID, then it is an accepted duplicate, not a failure', async () => {
    mockDarajaToken();
    mockPost(B2C_PATH, 500, envelope('500.002.1001', 'Duplicate OriginatorConversationID'));
    await expect(client().b2cPayment(request)).resolves.toEqual({ duplicate: true, originatorConversationId: 'gw-payout-0001' });
  });

  test('when the first attempt times out on the network and the retry with the same id is a duplicate, then the payout is held accepted', async () => {
    mockDarajaToken();
    nock(DARAJA_HOST).post(B2C_PATH).replyWithError({ code: 'ECONNRESET', message: 'socket hang up' });
    const sent = mockPost(B2C_PATH, 500, envelope('500.002.1001', 'Duplicate OriginatorConversationID'));
    const first = await failure(client().b2cPayment(request));
    expect(first.kind).toBe('retry');
    await expect(client().b2cPayment(request)).resolves.toMatchObject({ duplicate: true });
    expect(sent[0]!.body.OriginatorConversationID).toBe('gw-payout-0001');
  });

  test.each<[string, number, unknown, string, string]>([
    ['a 500 envelope (system busy)', 500, envelope('500.003.02', 'Spike arrest violation'), 'retry', '500.003.02'],
    ['a 502 with plain text', 502, 'Bad Gateway', 'retry', 'http_502'],
    ['a 503 with HTML', 503, '<html>down</html>', 'retry', 'http_503'],
    ['400.002.02 Invalid PartyB', 400, envelope('400.002.02', 'Bad Request - Invalid PartyB'), 'permanent', '400.002.02'],
    ['401 without a body', 401, '', 'permanent', 'http_401'],
  ])('when Daraja answers %s, then a %s… VendorError', async (_n, status, answer, kind, code) => {
    mockDarajaToken();
    mockPost(B2C_PATH, status, answer);
    const err = await failure(client().b2cPayment(request));
    expect(err).toBeInstanceOf(VendorError);
    expect(err.kind).toBe(kind);
    expect(err.code).toBe(code);
  });

  test('when a 200 says ResponseCode other than "0", or lacks a ConversationID, then a permanent VendorError', async () => {
    mockDarajaToken();
    mockPost(B2C_PATH, 200, { ...ACCEPTED, ResponseCode: '1', ResponseDescription: 'Rejected' });
    expect(await failure(client().b2cPayment(request))).toMatchObject({ kind: 'permanent', code: 'response_1' });
    mockPost(B2C_PATH, 200, { ResponseCode: '0', ResponseDescription: 'ok' });
    expect(await failure(client().b2cPayment(request))).toMatchObject({ kind: 'permanent' });
  });

  test('when the token is rejected, then it is refreshed once and the payout sent with the new one', async () => {
    mockDarajaToken('old');
    mockDarajaToken('new');
    const sent: Captured[] = [];
    mockPost(B2C_PATH, 404, envelope('404.001.03', 'Invalid Access Token'), sent);
    mockPost(B2C_PATH, 200, ACCEPTED, sent);
    await expect(client().b2cPayment(request)).resolves.toMatchObject({ duplicate: false });
    expect(sent.map((s) => s.authorization)).toEqual(['Bearer old', 'Bearer new']);
  });

  test.each<[string, Partial<typeof request>]>([
    ['Amount 9 (below 10)', { amountKes: 9 }],
    ['Amount 250001', { amountKes: 250_001 }],
    ['Amount 10.5', { amountKes: 10.5 }],
    ['Remarks of 1 character', { remarks: 'x' }],
    ['Remarks of 101 characters', { remarks: 'x'.repeat(101) }],
    ['an Occassion of 101 characters', { occasion: 'o'.repeat(101) }],
    ['an empty OriginatorConversationID', { originatorConversationId: '' }],
  ])('when the request has %s, then a RangeError and nothing is sent', async (_n, overrides) => {
    await expect(client().b2cPayment({ ...request, ...overrides })).rejects.toThrow(RangeError);
    expect(nock.pendingMocks()).toEqual([]);
  });

  test('when the client was built without B2C settings, then the B2C methods throw a clear Error', async () => {
    await expect(client(null).b2cPayment(request)).rejects.toThrow(/b2cPayment needs the B2C settings/);
    await expect(client(null).transactionStatus({ originatorConversationId: 'x' })).rejects.toThrow(/transactionStatus needs the B2C settings/);
  });
});

// ---------------------------------------------------------------- Transaction Status

describe('transactionStatus', () => {
  const STATUS_PATH = '/mpesa/transactionstatus/v1/query';
  const ACK = { OriginatorConversationID: '5118-111210482-1', ConversationID: 'AG_20261126_000043a0b2c9f3e0a1b2', ResponseCode: '0', ResponseDescription: 'Accept the service request successfully.' };

  test('when a payout is looked up by its OriginatorConversationID, then the body names it as OriginalConversationID, without a TransactionID', async () => {
    mockDarajaToken('tok-status');
    const sent = mockPost(STATUS_PATH, 200, ACK);
    const res = await client().transactionStatus({ originatorConversationId: 'gw-payout-0001' });
    expect(res).toEqual({ state: 'accepted', queryConversationId: ACK.ConversationID, queryOriginatorConversationId: ACK.OriginatorConversationID });
    expect(sent[0]!.authorization).toBe('Bearer tok-status');
    expect(sent[0]!.body).toEqual({
      Initiator: 'goldwallet_api',
      SecurityCredential: B2C.securityCredential,
      CommandID: 'TransactionStatusQuery',
      OriginalConversationID: 'gw-payout-0001',
      PartyA: '600996',
      IdentifierType: '4',
      ResultURL: B2C.statusResultUrl,
      QueueTimeOutURL: B2C.timeoutUrl,
      Remarks: 'Payout status check',
      Occasion: '',
    });
  });

  test('when the receipt is known too, then TransactionID is sent as well', async () => {
    mockDarajaToken();
    const sent = mockPost(STATUS_PATH, 200, { ...ACK, OriginatorConversationID: undefined, OriginatorCoversationID: 'typo-1' });
    const res = await client().transactionStatus({ originatorConversationId: 'gw-payout-0001', transactionId: 'TKQ41HAY6Q' });
    expect(sent[0]!.body).toMatchObject({ TransactionID: 'TKQ41HAY6Q', OriginalConversationID: 'gw-payout-0001' });
    // Daraja's misspelt field is read as well.
    expect(res.queryOriginatorConversationId).toBe('typo-1');
  });

  test('when Daraja refuses the query, then the failure is classified like every other call', async () => {
    mockDarajaToken();
    mockPost(STATUS_PATH, 400, envelope('400.002.02', 'Bad Request - Invalid Initiator'));
    expect(await failure(client().transactionStatus({ originatorConversationId: 'x' }))).toMatchObject({ kind: 'permanent', code: '400.002.02' });
    mockPost(STATUS_PATH, 500, envelope('500.003.02', 'System is busy'));
    expect(await failure(client().transactionStatus({ originatorConversationId: 'x' }))).toMatchObject({ kind: 'retry' });
  });
});

// ---------------------------------------------------------------- SecurityCredential

/** DER, just enough of it to build a self-signed X.509 certificate (Node cannot issue one). */
const der = {
  len(n: number): Buffer {
    if (n < 0x80) return Buffer.from([n]);
    const bytes: number[] = [];
    for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
    return Buffer.from([0x80 | bytes.length, ...bytes]);
  },
  tlv(tag: number, body: Buffer): Buffer {
    return Buffer.concat([Buffer.from([tag]), der.len(body.length), body]);
  },
  seq: (...items: Buffer[]) => der.tlv(0x30, Buffer.concat(items)),
  oid(dotted: string): Buffer {
    const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
    const out = [40 * a + b];
    for (const n of rest) {
      const chunk = [n & 0x7f];
      for (let v = n >> 7; v > 0; v >>= 7) chunk.unshift((v & 0x7f) | 0x80);
      out.push(...chunk);
    }
    return der.tlv(0x06, Buffer.from(out));
  },
  utf8: (s: string) => der.tlv(0x0c, Buffer.from(s, 'utf8')),
  utcTime: (s: string) => der.tlv(0x17, Buffer.from(s, 'ascii')),
};

function selfSignedCertificate(publicKey: KeyObject, privateKey: KeyObject): string {
  const sha256WithRsa = der.seq(der.oid('1.2.840.113549.1.1.11'), Buffer.from([0x05, 0x00]));
  const name = der.seq(der.tlv(0x31, der.seq(der.oid('2.5.4.3'), der.utf8('gold-wallet test only'))));
  const tbs = der.seq(
    der.tlv(0xa0, der.tlv(0x02, Buffer.from([0x02]))), // v3
    der.tlv(0x02, Buffer.from([0x01])),
    sha256WithRsa,
    name,
    der.seq(der.utcTime('260101000000Z'), der.utcTime('491231235959Z')),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
  );
  const signature = sign('sha256', tbs, privateKey);
  const cert = der.seq(tbs, sha256WithRsa, der.tlv(0x03, Buffer.concat([Buffer.from([0x00]), signature])));
  return `-----BEGIN CERTIFICATE-----\n${cert.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
}

describe('securityCredential', () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const decrypt = (credential: string, key: KeyObject = privateKey) => decryptPkcs1v15(key, Buffer.from(credential, 'base64'))?.toString('utf8');

  test('when given a PUBLIC KEY PEM, then base64 of one 2048-bit RSA block that the private key opens with PKCS#1 v1.5 (type 2) padding', () => {
    const credential = securityCredential('Safaricom999!*!', publicPem);
    expect(credential).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    const block = Buffer.from(credential, 'base64');
    expect(block).toHaveLength(256);
    expect(decrypt(credential)).toBe('Safaricom999!*!');
  });

  test('when given a CERTIFICATE PEM, then its public key is used', () => {
    const certPem = selfSignedCertificate(publicKey, privateKey);
    expect(new X509Certificate(certPem).publicKey.equals(publicKey)).toBe(true);
    expect(decrypt(securityCredential('initiator-pass', certPem))).toBe('initiator-pass');
  });

  test('when given an RSA PUBLIC KEY (PKCS#1) PEM, then it works too', () => {
    const pkcs1 = publicKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    expect(pkcs1).toMatch(/BEGIN RSA PUBLIC KEY/);
    expect(decrypt(securityCredential('pw', pkcs1))).toBe('pw');
  });

  test('when called twice, then the ciphertexts differ (random padding) and both decrypt', () => {
    const a = securityCredential('same-password', publicPem);
    const b = securityCredential('same-password', publicPem);
    expect(a).not.toBe(b);
    expect([decrypt(a), decrypt(b)]).toEqual(['same-password', 'same-password']);
  });

  test('when the key is another pair\'s, then it does not decrypt to the password', () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    expect(decrypt(securityCredential('pw', publicPem), other.privateKey)).not.toBe('pw');
  });

  test('when given a private key, a non-RSA key, garbage or an empty password, then a clear Error', () => {
    const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(() => securityCredential('pw', privatePem)).toThrow(/expected a CERTIFICATE or PUBLIC KEY PEM, got "PRIVATE KEY"/);
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    expect(() => securityCredential('pw', ec)).toThrow(/expected an RSA key, got ec/);
    expect(() => securityCredential('pw', 'not a pem')).toThrow(/no PEM header/);
    expect(() => securityCredential('', publicPem)).toThrow(/password is empty/);
    expect(() => securityCredential('pw', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')).toThrow();
    // Sanity: the private key PEM itself is fine, just refused on purpose.
    expect(createPrivateKey(privatePem).asymmetricKeyType).toBe('rsa');
  });
});

// ---------------------------------------------------------------- callback schemas

/** Shapes from Safaricom's published samples (REFERENCE.md, Daraja docs), dates moved to 2026. */
const B2C_SUCCESS = {
  Result: {
    ResultType: 0,
    ResultCode: 0,
    ResultDesc: 'The service request is processed successfully.',
    OriginatorConversationID: 'gw-payout-0001',
    ConversationID: 'AG_20261126_00004e48cf7e3533f581',
    TransactionID: 'TKQ41HAY6Q',
    ResultParameters: {
      ResultParameter: [
        { Key: 'TransactionAmount', Value: 1500 },
        { Key: 'TransactionReceipt', Value: 'TKQ41HAY6Q' },
        { Key: 'B2CRecipientIsRegisteredCustomer', Value: 'Y' },
        { Key: 'B2CChargesPaidAccountAvailableFunds', Value: -4510.0 },
        { Key: 'ReceiverPartyPublicName', Value: '2547******49 - JOHN DOE' },
        { Key: 'TransactionCompletedDateTime', Value: '26.11.2026 10:48:52' },
        { Key: 'B2CUtilityAccountAvailableFunds', Value: 10116.0 },
        { Key: 'B2CWorkingAccountAvailableFunds', Value: 900000.0 },
      ],
    },
    ReferenceData: { ReferenceItem: { Key: 'QueueTimeoutURL', Value: 'https://internalsandbox.safaricom.co.ke/mpesa/b2cresults/v1/submit' } },
  },
};

const B2C_FAILURE = {
  Result: {
    ResultType: 0,
    ResultCode: 2001,
    ResultDesc: 'The initiator information is invalid.',
    OriginatorConversationID: 'gw-payout-0002',
    ConversationID: 'AG_20261126_00006c6fddb15123addf',
    TransactionID: 'TKQ0000000',
    ReferenceData: { ReferenceItem: { Key: 'QueueTimeoutURL', Value: 'https://internalsandbox.safaricom.co.ke/mpesa/b2cresults/v1/submit' } },
  },
};

const STATUS_RESULT = {
  Result: {
    ResultType: 0,
    ResultCode: 0,
    ResultDesc: 'The service request is processed successfully.',
    OriginatorConversationID: '10816-694520-2',
    ConversationID: 'AG_20261126_000059c52529a8e080bd',
    TransactionID: 'TKQ0000000',
    ResultParameters: {
      ResultParameter: [
        { Key: 'ReceiptNo', Value: 'TKQ41HAY6Q' },
        { Key: 'Conversation ID', Value: 'AG_20261126_00004e48cf7e3533f581' },
        { Key: 'FinalisedTime', Value: 20261126104852 },
        { Key: 'Amount', Value: 1500 },
        { Key: 'TransactionStatus', Value: 'Completed' },
        { Key: 'ReasonType', Value: 'Business Payment to Customer via API' },
        { Key: 'TransactionReason' },
        { Key: 'DebitPartyCharges', Value: 'Fee For B2C Payment|KES|33.00' },
        { Key: 'DebitAccountType', Value: 'Utility Account' },
        { Key: 'InitiatedTime', Value: 20261126104852 },
        { Key: 'Originator Conversation ID', Value: 'gw-payout-0001' },
        { Key: 'CreditPartyName', Value: '254708374149 - John Doe' },
        { Key: 'DebitPartyName', Value: '600996 - Gold Wallet' },
      ],
    },
    ReferenceData: { ReferenceItem: { Key: 'Occasion', Value: 'aaaa' } },
  },
};

const clone = <T>(v: T): any => JSON.parse(JSON.stringify(v));

describe('B2C result schema', () => {
  test('when the success Result arrives, then toB2cResult gives the receipt, whole-KES amount, masked name and completion time', () => {
    expect(toB2cResult(b2cResultSchema.parse(B2C_SUCCESS))).toEqual({
      originatorConversationId: 'gw-payout-0001',
      conversationId: 'AG_20261126_00004e48cf7e3533f581',
      transactionId: 'TKQ41HAY6Q',
      resultCode: 0,
      resultCodeText: '0',
      resultDesc: 'The service request is processed successfully.',
      amount: '1500',
      amountKes: 1500,
      receipt: 'TKQ41HAY6Q',
      receiverName: '2547******49 - JOHN DOE',
      completedAt: '26.11.2026 10:48:52',
    });
    expect(parseDarajaDateTime('26.11.2026 10:48:52')?.toISOString()).toBe('2026-11-26T07:48:52.000Z');
  });

  test('when a failure Result arrives (no ResultParameters), then the code and description only', () => {
    expect(toB2cResult(b2cResultSchema.parse(B2C_FAILURE))).toEqual({
      originatorConversationId: 'gw-payout-0002',
      conversationId: 'AG_20261126_00006c6fddb15123addf',
      transactionId: 'TKQ0000000',
      resultCode: 2001,
      resultCodeText: '2001',
      resultDesc: 'The initiator information is invalid.',
    });
  });

  test('when ResultCode is a string, "2001" or alphanumeric SFC_IC0003, then an integer (or the -1 stand-in) plus the text', () => {
    const digits = clone(B2C_FAILURE);
    digits.Result.ResultCode = '2001';
    expect(toB2cResult(b2cResultSchema.parse(digits))).toMatchObject({ resultCode: 2001, resultCodeText: '2001' });
    const alpha = clone(B2C_FAILURE);
    alpha.Result.ResultCode = 'SFC_IC0003';
    expect(toB2cResult(b2cResultSchema.parse(alpha))).toMatchObject({ resultCode: NON_NUMERIC_RESULT_CODE, resultCodeText: 'SFC_IC0003' });
  });

  test('when ResultParameter is a single object, or amounts come as "1500.00" / 1500.5, then it still parses; only whole amounts give amountKes', () => {
    const single = clone(B2C_SUCCESS);
    single.Result.ResultParameters.ResultParameter = { Key: 'TransactionReceipt', Value: 'TKQ41HAY6Q' };
    expect(toB2cResult(b2cResultSchema.parse(single))).toMatchObject({ receipt: 'TKQ41HAY6Q' });
    const decimals = clone(B2C_SUCCESS);
    decimals.Result.ResultParameters.ResultParameter[0].Value = '1500.00';
    expect(toB2cResult(b2cResultSchema.parse(decimals))).toMatchObject({ amount: '1500.00', amountKes: 1500 });
    decimals.Result.ResultParameters.ResultParameter[0].Value = 1500.5;
    const fractional = toB2cResult(b2cResultSchema.parse(decimals));
    expect(fractional.amount).toBe('1500.5');
    expect(fractional.amountKes).toBeUndefined();
  });

  test.each<[string, (b: any) => void]>([
    ['the Result envelope is missing', (b) => delete b.Result],
    ['OriginatorConversationID is missing', (b) => delete b.Result.OriginatorConversationID],
    ['ConversationID is missing', (b) => delete b.Result.ConversationID],
    ['ResultCode is missing', (b) => delete b.Result.ResultCode],
    ['ResultCode is a decimal', (b) => (b.Result.ResultCode = 1.5)],
    ['ResultCode is a sentence', (b) => (b.Result.ResultCode = 'not ok')],
    ['ResultCode is empty', (b) => (b.Result.ResultCode = '')],
    ['a ResultParameter has no Key', (b) => (b.Result.ResultParameters.ResultParameter[1] = { Value: 'x' })],
    ['a ResultParameter Value is an object', (b) => (b.Result.ResultParameters.ResultParameter[0].Value = { amount: 1 })],
    ['ResultParameters is a string', (b) => (b.Result.ResultParameters = 'none')],
  ])('when %s, then the B2C schema rejects it', (_n, spoil) => {
    const body = clone(B2C_SUCCESS);
    spoil(body);
    expect(b2cResultSchema.safeParse(body).success).toBe(false);
  });

  test('when the body is not even an object, then rejected', () => {
    for (const body of [null, 'Result', [], 42]) expect(b2cResultSchema.safeParse(body).success).toBe(false);
  });
});

describe('Transaction Status result schema', () => {
  test('when the status Result arrives with spaced keys, then the payout is identified by the INNER ids, the query by the outer ones', () => {
    expect(toTransactionStatusResult(transactionStatusResultSchema.parse(STATUS_RESULT))).toEqual({
      queryOriginatorConversationId: '10816-694520-2',
      queryConversationId: 'AG_20261126_000059c52529a8e080bd',
      resultCode: 0,
      resultCodeText: '0',
      resultDesc: 'The service request is processed successfully.',
      originatorConversationId: 'gw-payout-0001',
      conversationId: 'AG_20261126_00004e48cf7e3533f581',
      receipt: 'TKQ41HAY6Q',
      transactionStatus: 'Completed',
      amount: '1500',
      amountKes: 1500,
      finalisedTime: '20261126104852',
      creditPartyName: '254708374149 - John Doe',
    });
  });

  test('when the keys come without spaces (OriginatorConversationID, ConversationID), then they are read the same', () => {
    const body = clone(STATUS_RESULT);
    for (const p of body.Result.ResultParameters.ResultParameter) p.Key = p.Key.replace(/ /g, '');
    expect(toTransactionStatusResult(transactionStatusResultSchema.parse(body))).toMatchObject({ originatorConversationId: 'gw-payout-0001', conversationId: 'AG_20261126_00004e48cf7e3533f581' });
  });

  test('when the transaction is not found (2032, no parameters), then only the query\'s code', () => {
    const body = { Result: { ResultType: 0, ResultCode: 2032, ResultDesc: 'The transaction receipt number does not exist.', OriginatorConversationID: 'q-1', ConversationID: 'AG_x', TransactionID: 'TKQ0000000' } };
    const r = toTransactionStatusResult(transactionStatusResultSchema.parse(body));
    expect(r).toEqual({ queryOriginatorConversationId: 'q-1', queryConversationId: 'AG_x', resultCode: 2032, resultCodeText: '2032', resultDesc: 'The transaction receipt number does not exist.' });
  });

  test('when it is malformed, then rejected', () => {
    const noId = clone(STATUS_RESULT);
    delete noId.Result.OriginatorConversationID;
    expect(transactionStatusResultSchema.safeParse(noId).success).toBe(false);
    const badItem = clone(STATUS_RESULT);
    badItem.Result.ResultParameters.ResultParameter.push({ Key: '' });
    expect(transactionStatusResultSchema.safeParse(badItem).success).toBe(false);
  });
});

describe('queue timeout schema', () => {
  test('when a queue-timeout body arrives, even without ConversationID, then it parses into an outcome-less timeout', () => {
    const body = { Result: { ResultType: 1, ResultCode: '1', ResultDesc: 'The request timed out while awaiting processing in the queue.', OriginatorConversationID: 'gw-payout-0003' } };
    expect(toQueueTimeout(queueTimeoutSchema.parse(body))).toEqual({
      originatorConversationId: 'gw-payout-0003',
      conversationId: undefined,
      resultDesc: 'The request timed out while awaiting processing in the queue.',
    });
    expect(b2cResultSchema.safeParse(body).success).toBe(false);
    expect(queueTimeoutSchema.safeParse({ Result: { ResultCode: '1' } }).success).toBe(false);
  });
});

describe('parseDarajaDateTime', () => {
  test('when the value is not a real DD.MM.YYYY HH:mm:ss date, then null', () => {
    expect(parseDarajaDateTime('31.02.2026 10:00:00')).toBeNull();
    expect(parseDarajaDateTime('2026-11-26 10:48:52')).toBeNull();
    expect(parseDarajaDateTime('26.11.2026 24:00:00')).toBeNull();
    expect(parseDarajaDateTime('01.01.2027 01:30:00')?.toISOString()).toBe('2026-12-31T22:30:00.000Z');
  });
});
