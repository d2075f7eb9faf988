import fc from 'fast-check';
import { SERVICE_CODE, USSD_PATH, startTestService, type TestService } from '../support/harness';

/**
 * Whatever reaches POST /ussd (random session ids, service codes, phone numbers, texts with runs of
 * '*', unicode, huge strings, missing fields, other encodings), the answer is what Africa's Talking
 * can show: 200 text/plain, `CON `/`END `, at most 160 characters, and no request ends in an
 * unexpected error behind that answer.
 */
jest.setTimeout(120_000);

const RUNS = Number(process.env.FUZZ_RUNS ?? 1500);

const validPhones = ['+254712000001', '+254712000002', '254712000003', '0712000004', '+254112000005'];

const menuInput = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('', '1', '2', '3', '4', '0', '00', '500', '10', '9', '150000', '150001', '1e5', '-5', '10.5', '99999999999', ' 1 ', '1234') },
  // Short enough that most walks stay inside what a real phone sends (24 inputs, 200 characters) and
  // go deep; texts beyond that are generated below and must end the session.
  { weight: 2, arbitrary: fc.string({ maxLength: 10 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 6 }) },
);

const text = fc.oneof(
  // Mostly walks a phone could type in one session; the hostile shapes follow.
  { weight: 6, arbitrary: fc.array(menuInput, { maxLength: 8 }).map((inputs) => inputs.join('*')) },
  { weight: 1, arbitrary: fc.array(menuInput, { minLength: 9, maxLength: 30 }).map((inputs) => inputs.join('*')) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 700 }).map((n) => '*'.repeat(n)) },
  // Runs of empty inputs inside a real walk (at most 22 inputs in all); longer runs are the 700-star case above.
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 10 })).map(([a, b]) => `1${'*'.repeat(a)}500${'*'.repeat(b)}1`) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 400, maxLength: 9000 }) },
);

const fieldArbitraries = {
  sessionId: fc.oneof(
    // A session is a phone's and an id's together, and one that ended stays ended (a packed PIN
    // entry ends it for good): enough ids that fresh sessions keep coming.
    { weight: 4, arbitrary: fc.integer({ min: 0, max: 99 }).map((n) => `fuzz-${n}`) },
    { weight: 1, arbitrary: fc.string({ maxLength: 260 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  ),
  serviceCode: fc.oneof({ weight: 5, arbitrary: fc.constant(SERVICE_CODE) }, { weight: 1, arbitrary: fc.constantFrom('*384*2#', '', '*384*1', '*384*1#*') }, { weight: 1, arbitrary: fc.string({ maxLength: 60 }) }),
  phoneNumber: fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...validPhones) },
    { weight: 1, arbitrary: fc.stringMatching(/^\+?\d{0,16}$/) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  ),
  networkCode: fc.oneof(fc.constantFrom('63902', '63903', '99999'), fc.string({ maxLength: 30 })),
  text,
};

/** Mostly the four fields AT always sends (so walks go deep); sometimes any of them missing. */
const fields = fc.oneof(
  { weight: 3, arbitrary: fc.record(fieldArbitraries, { requiredKeys: ['sessionId', 'serviceCode', 'phoneNumber', 'text'] }) },
  { weight: 2, arbitrary: fc.record(fieldArbitraries, { requiredKeys: [] }) },
);

type Fields = Record<string, string>;
const asForm = (f: Fields) => ({ contentType: 'application/x-www-form-urlencoded', body: new URLSearchParams(f).toString() });

/** How the fields travel: AT's form encoding mostly, sometimes something AT would never send. */
const request = fc.oneof(
  { weight: 8, arbitrary: fields.map((f) => asForm(f as Fields)) },
  { weight: 1, arbitrary: fields.map((f) => ({ contentType: 'application/json', body: JSON.stringify(f) })) },
  // The same key twice (an array after parsing), and a bare raw string.
  { weight: 1, arbitrary: fields.map((f) => ({ contentType: 'application/x-www-form-urlencoded', body: `${asForm(f as Fields).body}&sessionId=x&text=1` })) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }).map((body) => ({ contentType: 'application/x-www-form-urlencoded', body })) },
  { weight: 1, arbitrary: fc.string({ maxLength: 100 }).map((body) => ({ contentType: 'text/plain', body })) },
);

/** Sessions live in Redis, or in Postgres's kv_store without Redis: both must hold whatever comes in. */
describe.each(['redis', 'postgres'] as const)('POST /ussd under random input, sessions in %s', (engine) => {
  let svc: TestService;
  const errors: string[] = [];
  beforeAll(async () => {
    // Web only: orders may be placed, but no job runs and nothing calls a vendor.
    svc = await startTestService({ ROLE: 'web', LOG_LEVEL: 'error', ...(engine === 'postgres' ? { REDIS_URL: '' } : {}) }, { logDestination: { write: (line: string) => void errors.push(line) } });
    expect(svc.running.services.backends.kind).toBe(engine);
  });
  afterAll(() => svc.close());

  test(`when ${RUNS} random requests arrive, then every answer is 200 text/plain CON/END within 160 characters and none hides an error`, async () => {
    const kinds = { CON: 0, END: 0 };
    await fc.assert(
      fc.asyncProperty(request, async ({ contentType, body }) => {
        const res = await fetch(`${svc.url}${USSD_PATH}`, { method: 'POST', headers: { 'content-type': contentType }, body });
        const reply = await res.text();
        kinds[reply.slice(0, 3) as 'CON' | 'END'] += 1;
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
        expect(reply).toMatch(/^(CON|END) /);
        expect([...reply].length).toBeLessThanOrEqual(160);
      }),
      {
        numRuns: RUNS,
        // Cases found by earlier runs, kept so that they run every time.
        examples: [
          [asForm({ sessionId: 'nul\u0000id', serviceCode: SERVICE_CODE, phoneNumber: validPhones[0]!, text: '' })],
          [asForm({ sessionId: 'fuzz-nul-text', serviceCode: SERVICE_CODE, phoneNumber: validPhones[1]!, text: '1*\u0000' })],
          [asForm({ sessionId: 'fuzz-stars', serviceCode: SERVICE_CODE, phoneNumber: validPhones[2]!, text: '*'.repeat(499) })],
        ],
      },
    );
    expect(errors).toEqual([]);
    expect((await fetch(`${svc.url}/health`)).status).toBe(200);
    // The generators went deep: menus continued, sessions ended, and confirmations placed orders.
    expect(kinds.CON).toBeGreaterThan(RUNS / 10);
    expect(kinds.END).toBeGreaterThan(RUNS / 10);
    expect(Number((await svc.db('orders').count({ n: '*' }))[0]!.n)).toBeGreaterThan(0);
  });
});
