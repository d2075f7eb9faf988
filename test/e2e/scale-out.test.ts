import { randomBytes } from 'node:crypto';
import http from 'node:http';
import express from 'express';
import { Redis } from 'ioredis';
import type { Db } from '../../src/db/knex';
import { createAtEmulator, type AtEmulator } from '../../src/emulators/at-emulator';
import { createDarajaEmulator, type DarajaEmulator } from '../../src/emulators/daraja-emulator';
import { fundPool } from '../../src/ledger/fund-pool';
import { checkBooks } from '../../src/ledger/ledger';
import { createLogger } from '../../src/lib/logger';
import { AT_SECRET, DELIVERY_REPORTS_PATH, SANDBOX_PASSKEY, SERVICE_CODE, waitFor } from '../support/harness';
import { dial } from '../support/http';
import { OPS_TOKEN, sample } from '../support/ops';
import { freePort } from '../support/sandbox-process';
import { createTestDatabase, startServiceProcess, type ServiceProcess } from '../support/service-process';
import { TEST_REDIS_URL, runId } from '../support/test-env';

/**
 * Scale-out: 2 web and 2 worker processes of the BUILT service (separate OS processes, as in
 * production) on one Postgres database and one Redis. Daraja and Africa's Talking are the project's
 * own emulators, served by this test on a port of its own; M-Pesa's callbacks reach BOTH web processes
 * at once (a fan-out in front of them), so every callback arrives at least twice, concurrently, on two
 * processes. Every payment must settle exactly once, every customer get exactly one SMS, and the books
 * balance.
 */

const CALLBACK_SECRET = `cb-${randomBytes(12).toString('hex')}`;
const log = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');

interface Buy {
  phone: string;
  amountKes: number;
  via: number; // which web process took the order
  channel: 'ussd' | 'api';
  /** What the payer does at the prompt (human prompts), or what the scripted number does. */
  outcome: 'pay' | 'cancel' | 'wrong_pin' | 'scripted_pay' | 'scripted_duplicate' | 'scripted_cancel';
}

const HUMAN_OUTCOMES: Buy['outcome'][] = ['pay', 'pay', 'cancel', 'pay', 'wrong_pin', 'pay', 'cancel', 'pay'];
const BUYS: Buy[] = [
  ...Array.from({ length: 16 }, (_, i): Buy => ({
    phone: `2547123460${String(i + 10)}`,
    amountKes: 100 + i * 7,
    via: i % 2,
    channel: i % 4 < 2 ? 'ussd' : 'api',
    outcome: HUMAN_OUTCOMES[i % HUMAN_OUTCOMES.length]!,
  })),
  { phone: '254708374149', amountKes: 500, via: 0, channel: 'ussd', outcome: 'scripted_pay' },
  { phone: '254700000006', amountKes: 250, via: 1, channel: 'ussd', outcome: 'scripted_duplicate' },
  { phone: '254700000001', amountKes: 150, via: 1, channel: 'api', outcome: 'scripted_cancel' },
];
const PAID: Buy['outcome'][] = ['pay', 'scripted_pay', 'scripted_duplicate'];

interface Named {
  name: string;
  proc: ServiceProcess;
}

/** SIGTERM, as an orchestrator stops a container: the exit code, or null if it had to be SIGKILLed. */
async function stop(proc: ServiceProcess): Promise<number | null> {
  proc.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([proc.exited, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 20_000)))]);
  clearTimeout(timer);
  if (code !== 'timeout') return code;
  proc.kill('SIGKILL');
  await proc.exited;
  return null;
}

describe('2 web + 2 worker processes on one Postgres and one Redis', () => {
  let db: Db;
  let prefix: string;
  let emulatorServer: http.Server;
  let daraja: DarajaEmulator;
  let at: AtEmulator;
  let webs: Named[] = [];
  let workers: Named[] = [];
  let webUrls: string[];
  let workerUrls: string[];
  let emulatorPosts = 0;

  beforeAll(async () => {
    const created = await createTestDatabase();
    db = created.db;
    await fundPool(db, 1_000 * 1_000_000, 'scale-out test');
    prefix = `t${runId()}scale${randomBytes(3).toString('hex')}`;

    const [emulatorPort, ...ports] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    webUrls = [ports[0], ports[1]].map((p) => `http://127.0.0.1:${p}`);
    workerUrls = [ports[2], ports[3]].map((p) => `http://127.0.0.1:${p}`);
    const emulatorUrl = `http://127.0.0.1:${emulatorPort}`;

    daraja = createDarajaEmulator({ consumerKey: 'scale-consumer-key', consumerSecret: 'scale-consumer-secret', shortcode: '174379', passkey: SANDBOX_PASSKEY, log, callbackDelayMs: 100 });
    at = createAtEmulator({ username: 'scaleout', apiKey: 'scale-at-key', deliveryReportUrl: `${webUrls[0]}${DELIVERY_REPORTS_PATH}`, deliveryDelayMs: 50, log });
    const app = express();
    app.use('/daraja', daraja.router);
    app.use('/at', at.router);
    // The "load balancer" for callbacks: each one Daraja posts goes to both web processes at once.
    app.post(`/mpesa/callback/${CALLBACK_SECRET}`, express.raw({ type: '*/*', limit: '64kb' }), async (req, res) => {
      emulatorPosts += 1;
      const answers = await Promise.all(
        webUrls.map((url) => fetch(`${url}/mpesa/callback/${CALLBACK_SECRET}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: req.body as Buffer })),
      );
      res.status(answers[0]!.status).type('application/json').send(await answers[0]!.text());
    });
    emulatorServer = await new Promise<http.Server>((resolve) => {
      const s = http.createServer(app).listen(emulatorPort, '127.0.0.1', () => resolve(s));
    });

    const env = {
      NODE_ENV: 'test',
      LOG_LEVEL: 'info', // startServiceProcess watches for "service started"
      DATABASE_URL: created.url,
      REDIS_URL: TEST_REDIS_URL,
      QUEUE_PREFIX: prefix,
      MPESA_ENVIRONMENT: 'sandbox',
      MPESA_BASE_URL: `${emulatorUrl}/daraja`,
      MPESA_CONSUMER_KEY: 'scale-consumer-key',
      MPESA_CONSUMER_SECRET: 'scale-consumer-secret',
      MPESA_BUSINESS_SHORTCODE: '174379',
      MPESA_PASSKEY: SANDBOX_PASSKEY,
      MPESA_CALLBACK_URL: `${emulatorUrl}/mpesa/callback/${CALLBACK_SECRET}`,
      AT_USERNAME: 'scaleout',
      AT_API_KEY: 'scale-at-key',
      AT_API_URL: `${emulatorUrl}/at`,
      AT_CALLBACK_SECRET: AT_SECRET,
      USSD_SERVICE_CODE: SERVICE_CODE,
      GOLD_PRICE_KES_PER_GRAM: '8500',
      JOB_BACKOFF_MS: '200',
      OUTBOX_RELAY_INTERVAL_MS: '250',
      OPS_API_TOKEN: OPS_TOKEN,
    };
    // Started together, as an orchestrator would; each then answers /ready (workers on WORKER_HTTP_PORT).
    const start = async (name: string, extra: Record<string, string>, url: string): Promise<Named> => {
      const proc = await startServiceProcess({ ...env, ...extra });
      await waitFor(async () => (await fetch(`${url}/ready`)).status === 200, `${name} /ready`);
      return { name, proc };
    };
    [webs, workers] = await Promise.all([
      Promise.all(webUrls.map((url, i) => start(`web${i + 1}`, { ROLE: 'web', PORT: new URL(url).port }, url))),
      Promise.all(workerUrls.map((url, i) => start(`worker${i + 1}`, { ROLE: 'worker', WORKER_HTTP_PORT: new URL(url).port }, url))),
    ]);
  }, 120_000);

  afterAll(async () => {
    const codes = await Promise.all([...webs, ...workers].map(async (p) => [p.name, await stop(p.proc)] as const));
    daraja?.close();
    at?.close();
    await new Promise((r) => emulatorServer?.close(r));
    await db?.destroy();
    const redis = new Redis(TEST_REDIS_URL);
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    // A graceful SIGTERM: every process drained and exited 0.
    expect(codes).toEqual([...webs, ...workers].map((p) => [p.name, 0]));
  }, 60_000);

  test('when buys come through both web processes and every callback reaches both, then each payment settles exactly once, each payer gets one SMS and the books balance', async () => {
    const orderIds = new Map<string, string>();
    await Promise.all(
      BUYS.map(async (b, i) => {
        const url = webUrls[b.via]!;
        if (b.channel === 'ussd') {
          const { sessionId, last } = await dial(url, ['1', String(b.amountKes), '1'], { phoneNumber: `+${b.phone}` });
          if (!last.startsWith('END ')) throw new Error(`${b.phone}: unexpected confirm reply ${last}`);
          const order: { id: string } = await waitFor(() => db('orders').where('source_key', 'like', `ussd:%:${sessionId}`).first('id'), `the USSD order of ${b.phone}`);
          orderIds.set(b.phone, order.id);
        } else {
          const res = await fetch(`${url}/trade/buy`, {
            method: 'POST',
            headers: { authorization: `Bearer ${OPS_TOKEN}`, 'content-type': 'application/json', 'idempotency-key': `scale-out-${i}-${b.phone}` },
            body: JSON.stringify({ amountKes: b.amountKes, phoneNumber: b.phone }),
          });
          if (res.status !== 201) throw new Error(`${b.phone}: /trade/buy answered ${res.status} ${await res.text()}`);
          orderIds.set(b.phone, ((await res.json()) as { orderId: string }).orderId);
        }
      }),
    );

    // The payers answer their prompts on the emulator's phone API, as the phone simulator does.
    await Promise.all(
      BUYS.filter((b) => !b.outcome.startsWith('scripted')).map(async (b) => {
        const prompt = await waitFor(async () => {
          const res = (await (await fetch(`${emulatorBase()}/daraja/prompts?phone=${b.phone}`)).json()) as { prompts: Array<{ id: string; amount: number }> };
          return res.prompts[0];
        }, `the M-Pesa prompt on ${b.phone}`, 30_000);
        expect(prompt.amount).toBe(b.amountKes);
        const path = b.outcome === 'cancel' ? 'cancel' : 'pin';
        const answer = await fetch(`${emulatorBase()}/daraja/prompts/${prompt.id}/${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ pin: b.outcome === 'wrong_pin' ? '9999' : '1234' }),
        });
        expect(answer.status).toBe(200);
      }),
    );

    const ids = [...orderIds.values()];
    await waitFor(async () => {
      const open = await db('orders').whereIn('id', ids).whereNotIn('status', ['paid', 'failed']).count({ n: '*' }).first();
      return (open as { n: number }).n === 0;
    }, 'every order to settle', 60_000);
    await waitFor(async () => {
      const queued = await db('sms_messages').whereIn('msisdn', BUYS.map((b) => b.phone)).whereNot({ status: 'sent' }).count({ n: '*' }).first();
      const total = await db('sms_messages').whereIn('msisdn', BUYS.map((b) => b.phone)).count({ n: '*' }).first();
      return (queued as { n: number }).n === 0 && (total as { n: number }).n === BUYS.length;
    }, 'every SMS to be sent', 30_000);

    for (const b of BUYS) {
      const orderId = orderIds.get(b.phone)!;
      const paid = PAID.includes(b.outcome);
      const order = await db('orders').where({ id: orderId }).first('status', 'grams_ug', 'customer_id');
      expect({ phone: b.phone, status: order.status }).toEqual({ phone: b.phone, status: paid ? 'paid' : 'failed' });
      // Exactly one resolution of the reservation, of the right kind.
      expect(await db('transfers').where({ pending_id: `buy-${orderId}` }).select('status')).toEqual([{ status: paid ? 'posted' : 'voided' }]);
      const account = await db('accounts').where({ customer_id: order.customer_id }).first('credits_posted', 'credits_pending');
      expect(account).toEqual({ credits_posted: paid ? order.grams_ug : 0, credits_pending: 0 });
      // Every delivery was recorded; exactly one of them decided the payment.
      const checkoutId = (await db('stk_payments').where({ order_id: orderId }).first('checkout_request_id')).checkout_request_id;
      const deliveries = b.outcome === 'scripted_duplicate' ? 4 : 2;
      // The order settles with the first delivery; the others may still be on their way to (or queued in) the other
      // web process's settlement batcher: wait until each was recorded.
      const outcomes: string[] = await waitFor(async () => {
        const rows: string[] = await db('mpesa_callbacks').where({ checkout_request_id: checkoutId }).orderBy('id').pluck('outcome');
        return rows.length >= deliveries ? rows : null;
      }, `every delivery of ${b.phone}'s callback to be recorded`, 30_000);
      expect({ phone: b.phone, outcomes: [...outcomes].sort() }).toEqual({
        phone: b.phone,
        outcomes: [paid ? 'settled' : 'failed', ...Array(deliveries - 1).fill('duplicate')].sort(),
      });
      // One SMS per payer, however many callbacks and processes.
      expect({ phone: b.phone, inbox: at.inbox(b.phone).length }).toEqual({ phone: b.phone, inbox: 1 });
    }

    expect(await checkBooks(db)).toEqual([]);
    const pool = await db('accounts').where({ code: 'pool' }).first();
    const paidGrams = (await db('orders').whereIn('id', ids).where({ status: 'paid' }).sum({ g: 'grams_ug' }).first()) as { g: number };
    expect(pool.debits_pending).toBe(0);
    expect(pool.credits_posted - pool.debits_posted).toBe(1_000 * 1_000_000 - Number(paidGrams.g));

    // Both web processes took orders and callbacks; the workers between them made every push.
    const [web1, web2, worker1, worker2] = await Promise.all([...webUrls, ...workerUrls].map(async (u) => (await fetch(`${u}/metrics`, { headers: { authorization: `Bearer ${OPS_TOKEN}` } })).text()));
    const placed = (m: string) => (sample(m, 'orders_placed_total', { channel: 'ussd' }) ?? 0) + (sample(m, 'orders_placed_total', { channel: 'api' }) ?? 0);
    expect([placed(web1!), placed(web2!)]).toEqual([BUYS.filter((b) => b.via === 0).length, BUYS.filter((b) => b.via === 1).length]);
    const callbacks = (m: string) => ['settled', 'failed', 'duplicate'].reduce((n, outcome) => n + (sample(m, 'mpesa_callbacks_total', { outcome }) ?? 0), 0);
    expect(callbacks(web1!)).toBe(emulatorPosts);
    expect(callbacks(web2!)).toBe(emulatorPosts);
    expect(emulatorPosts).toBe(BUYS.length + 1);
    const pushes = (m: string) => sample(m, 'mpesa_stk_push_total', { outcome: 'accepted' }) ?? 0;
    expect(pushes(worker1!) + pushes(worker2!)).toBe(BUYS.length);
  }, 180_000);

  function emulatorBase(): string {
    const addr = emulatorServer.address() as { port: number };
    return `http://127.0.0.1:${addr.port}`;
  }
});
