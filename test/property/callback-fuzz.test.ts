import fc from 'fast-check';
import nock from 'nock';
import { b2cResultSchema, queueTimeoutSchema, stkCallbackSchema, transactionStatusResultSchema } from '../../src/vendors/daraja-callbacks';
import { B2C_RESULT_PATH, B2C_STATUS_PATH, B2C_TIMEOUT_PATH, b2cTestEnv } from '../support/b2c-env';
import { CALLBACK_PATH, expectBooksBalanced, fundPoolGrams, startTestService, type TestService } from '../support/harness';
import { buyUntilPushed, orderStatus } from '../support/flows';
import { stkCallbackBody } from '../support/vendors';

/**
 * Malformed and unknown callbacks at every Daraja callback route: never a 5xx, never a crash, and
 * never a change to the ledger (accounts and transfers compared after every single request).
 */
jest.setTimeout(120_000);

const RUNS = Number(process.env.FUZZ_RUNS ?? 1500);

const B2C_ENV = b2cTestEnv();
const RESULT_PATH = B2C_RESULT_PATH;
const TIMEOUT_PATH = B2C_TIMEOUT_PATH;
const STATUS_PATH = B2C_STATUS_PATH;

type Json = unknown;
const anyString = fc.oneof(fc.string({ maxLength: 30 }), fc.string({ unit: 'binary', maxLength: 30 }), fc.constant(''), fc.constant('x'.repeat(600)));
const wrongValue = fc.oneof(anyString, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant([]), fc.constant({}), fc.jsonValue({ maxDepth: 2 }));

/** A JSON-path edit: drop the key, or put any value there. */
function mutate(value: Json, pathKeys: string[], replacement: Json | typeof DROP): Json {
  if (pathKeys.length === 0) return replacement === DROP ? undefined : replacement;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const [head, ...rest] = pathKeys;
  const copy: Record<string, Json> = { ...(value as Record<string, Json>) };
  const next = mutate(copy[head!], rest, replacement);
  if (next === undefined) delete copy[head!];
  else copy[head!] = next;
  return copy;
}
const DROP = Symbol('drop');

/** Well-formed bodies, broken at one or two random places; kept only if the route's schema refuses them. */
function brokenVersionsOf(template: Json, paths: string[][], schema: { safeParse(v: unknown): { success: boolean } }) {
  const edit = fc.tuple(fc.constantFrom(...paths), fc.oneof(fc.constant<typeof DROP>(DROP), wrongValue));
  return fc
    .array(edit, { minLength: 1, maxLength: 2 })
    .map((edits) => edits.reduce((body, [p, v]) => mutate(body, p, v), template))
    .filter((body) => body !== undefined && !schema.safeParse(body).success);
}

interface Shot {
  path: string;
  contentType: string;
  body: string;
}

const json = (p: string) => (body: Json): Shot => ({ path: p, contentType: 'application/json', body: JSON.stringify(body) });

describe('Daraja callback routes under malformed and unknown input', () => {
  let svc: TestService;
  let realCheckoutId: string;
  let realOrderId: string;
  const errors: string[] = [];

  beforeAll(async () => {
    svc = await startTestService({ ...B2C_ENV, LOG_LEVEL: 'error' }, { logDestination: { write: (line: string) => void errors.push(line) } });
    await fundPoolGrams(svc.db, 10);
    const pushed = await buyUntilPushed(svc);
    realCheckoutId = pushed.checkoutRequestId;
    realOrderId = pushed.order.id;
  });
  afterEach(async () => {
    await expectBooksBalanced(svc.db);
    nock.cleanAll();
  });
  afterAll(() => svc.close());

  const ledger = async () => ({
    accounts: await svc.db('accounts').orderBy('id').select('id', 'debits_pending', 'debits_posted', 'credits_pending', 'credits_posted'),
    transfers: await svc.db('transfers').orderBy('id').select('id', 'status'),
  });

  function shots(): fc.Arbitrary<Shot> {
    // A real, valid success for the open order: only its broken versions are sent.
    const stkTemplate = stkCallbackBody({ checkoutRequestId: realCheckoutId, resultCode: 0, amount: 500, receipt: 'FUZZRCPT01', phone: 254712345678 });
    const stkPaths = [
      ['Body'], ['Body', 'stkCallback'], ['Body', 'stkCallback', 'CheckoutRequestID'], ['Body', 'stkCallback', 'MerchantRequestID'],
      ['Body', 'stkCallback', 'ResultCode'], ['Body', 'stkCallback', 'ResultDesc'], ['Body', 'stkCallback', 'CallbackMetadata'],
      ['Body', 'stkCallback', 'CallbackMetadata', 'Item'],
    ];
    const b2cTemplate = {
      Result: {
        ResultType: 0, ResultCode: 0, ResultDesc: 'ok', OriginatorConversationID: 'fuzz-unknown-1', ConversationID: 'AG_fuzz', TransactionID: 'FUZZTX01',
        ResultParameters: { ResultParameter: [{ Key: 'TransactionAmount', Value: 100 }, { Key: 'TransactionReceipt', Value: 'FUZZTX01' }] },
        ReferenceData: { ReferenceItem: { Key: 'QueueTimeoutURL', Value: 'https://x' } },
      },
    };
    const b2cPaths = [
      ['Result'], ['Result', 'ResultCode'], ['Result', 'ResultDesc'], ['Result', 'OriginatorConversationID'], ['Result', 'ConversationID'],
      ['Result', 'TransactionID'], ['Result', 'ResultType'], ['Result', 'ResultParameters'], ['Result', 'ResultParameters', 'ResultParameter'], ['Result', 'ReferenceData'],
    ];
    // Well-formed, but for payments we never made: acknowledged as orphans, nothing moves.
    const unknownStk = fc
      .record({
        id: fc.oneof(fc.string({ minLength: 1, maxLength: 100 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 40 })).filter((s) => s !== realCheckoutId),
        code: fc.oneof(fc.integer({ min: -5, max: 3000 }), fc.constantFrom(0, 1032, 1, 2001)),
        desc: fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 60 }), fc.constant('nul \u0000 inside')),
        amount: fc.oneof(fc.integer({ min: 0, max: 300000 }), fc.double({ noNaN: true })),
        phone: fc.oneof(fc.constant(254712345678), fc.integer({ min: 254700000000, max: 254799999999 })),
      })
      .map(({ id, code, desc, amount, phone }) => stkCallbackBody({ checkoutRequestId: id, resultCode: code, resultDesc: desc, amount, receipt: 'FUZZRCPT02', phone }));
    const unknownB2c = fc
      .record({ id: fc.oneof(fc.string({ minLength: 1, maxLength: 100 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 40 })), code: fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.constant('SFC_IC0003')) })
      .map(({ id, code }) => mutate(mutate(b2cTemplate, ['Result', 'OriginatorConversationID'], id), ['Result', 'ResultCode'], code));
    const rawJunk = fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 200 }), fc.constantFrom('{"Body":', '[]', 'null', '"x"', '{}', '{"Body":{"stkCallback":[]}}'));
    const b2cRoute = fc.constantFrom(RESULT_PATH, TIMEOUT_PATH, STATUS_PATH);
    const schemaOf = { [RESULT_PATH]: b2cResultSchema, [TIMEOUT_PATH]: queueTimeoutSchema, [STATUS_PATH]: transactionStatusResultSchema };
    return fc.oneof(
      { weight: 4, arbitrary: brokenVersionsOf(stkTemplate, stkPaths, stkCallbackSchema).map(json(CALLBACK_PATH)) },
      { weight: 2, arbitrary: unknownStk.map(json(CALLBACK_PATH)) },
      { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }).map(json(CALLBACK_PATH)) },
      { weight: 1, arbitrary: rawJunk.map((body) => ({ path: CALLBACK_PATH, contentType: 'application/json', body })) },
      { weight: 3, arbitrary: b2cRoute.chain((p) => brokenVersionsOf(b2cTemplate, b2cPaths, schemaOf[p]!).map(json(p))) },
      { weight: 1, arbitrary: b2cRoute.chain((p) => unknownB2c.map(json(p))) },
      { weight: 1, arbitrary: fc.tuple(b2cRoute, rawJunk).map(([p, body]) => ({ path: p, contentType: 'application/json', body })) },
      // Wrong secrets and odd content types.
      { weight: 1, arbitrary: fc.tuple(fc.constantFrom('/mpesa/callback/', '/mpesa/b2c/result/', '/mpesa/callback/s3cr3t-Path-9f8e/'), fc.stringMatching(/^[A-Za-z0-9_-]{0,40}$/)).map(([p, s]) => ({ path: p + s, contentType: 'application/json', body: '{}' })) },
      { weight: 1, arbitrary: fc.tuple(fc.constantFrom(CALLBACK_PATH, RESULT_PATH), fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/xml', '')).map(([p, contentType]) => ({ path: p, contentType, body: JSON.stringify(stkTemplate) })) },
    );
  }

  test(`when ${RUNS} malformed or unknown callbacks arrive, then none gets a 5xx, the ledger never changes and the open order stays open`, async () => {
    const before = await ledger();
    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(shots(), async (shot) => {
        const res = await fetch(`${svc.url}${shot.path}`, { method: 'POST', headers: shot.contentType ? { 'content-type': shot.contentType } : {}, body: shot.body });
        await res.arrayBuffer();
        seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
        expect([200, 400, 404, 413, 415]).toContain(res.status);
        expect(await ledger()).toEqual(before);
      }),
      { numRuns: RUNS },
    );
    expect(await orderStatus(svc, realOrderId)).toBe('stk_sent');
    // The generators reached every kind of answer: bodies were refused, orphans accepted, secrets checked.
    expect([...seen.keys()].sort()).toEqual(expect.arrayContaining([200, 400, 404]));
    // Orphan payments raise ops alerts (level error) by design; anything else at error level is a failure.
    expect(errors.map((l) => JSON.parse(l)).filter((e) => !e.opsAlert)).toEqual([]);
    expect((await fetch(`${svc.url}/health`)).status).toBe(200);
  });
});
