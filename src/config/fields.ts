import { z } from 'zod';
import { parseIpList, parseIpRange } from '../lib/ip';
import { parseKesToCents } from '../lib/units';

/**
 * Every environment variable, one field each: its parser, its default and its message. The rules across
 * fields are in rules.ts; shaping into the Config the code reads is in shape.ts.
 */

export const LOOPBACK = /^https?:\/\/(localhost|127\.|\[::1\]|0\.0\.0\.0)/i;

export const DARAJA_HOSTS = {
  sandbox: 'https://sandbox.safaricom.co.ke',
  production: 'https://api.safaricom.co.ke',
} as const;

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

const wholeKes = (fallback: number) =>
  z.coerce.number().int('must be a whole number of KES').positive().default(fallback);

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

/** A price in KES per gram ("8500" or "8500.50"), as integer cents; optional. */
const kesPerGram = optionalString.transform((v, ctx) => {
  if (v === undefined) return undefined;
  const cents = parseKesToCents(v);
  if (cents === null || cents <= 0) {
    ctx.addIssue({ code: 'custom', message: 'must be a positive KES amount with at most 2 decimals, e.g. 8500 or 8500.50' });
    return z.NEVER;
  }
  return cents;
});

/** The default sell price when only the buy price is set: 97% of it (a 3% spread), rounded down to the cent. */
export const DEFAULT_SELL_PRICE_PERCENT = 97;

/** A Daraja callback URL whose last path segment is a secret (like MPESA_CALLBACK_URL); optional. */
const optionalCallbackUrl = optionalString.pipe(
  z
    .url()
    .refine((u) => new URL(u).pathname.split('/').filter(Boolean).length >= 2, {
      message: 'needs a path with at least two segments, the last one secret (e.g. https://host/mpesa/b2c/result/<secret>)',
    })
    .optional(),
);

/** Comma-separated IP addresses or CIDR ranges; empty: any address. */
const ipList = optionalString.transform((v, ctx) => {
  const { ranges, invalid } = parseIpList(v ?? '');
  if (invalid.length > 0) {
    ctx.addIssue({ code: 'custom', message: `not an IP address or CIDR range: ${invalid.join(', ')}` });
    return z.NEVER;
  }
  return ranges;
});

/** A secret path segment: long enough not to be guessed, and nothing a URL would need to escape. */
export const MIN_SECRET_LENGTH = 16;
const CALLBACK_SECRET_CHARS = new RegExp(`^[A-Za-z0-9_-]{${MIN_SECRET_LENGTH},}$`);

/**
 * MPESA_B2C_STATUS_RESULT_URL, when not given, is derived from MPESA_B2C_RESULT_URL: the same host and
 * secret on a sibling path (`…/result/<secret>` -> `…/status/<secret>`, otherwise `…/<path>/status/<secret>`),
 * so it has a route of its own. Every rule for callback URLs still applies to the result.
 */
export function withStatusResultUrl(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const result = env.MPESA_B2C_RESULT_URL?.trim();
  if (!result || env.MPESA_B2C_STATUS_RESULT_URL?.trim()) return env;
  let url: URL;
  try {
    url = new URL(result);
  } catch {
    return env; // the schema names the bad result URL
  }
  const segments = url.pathname.split('/').filter(Boolean);
  if (segments.length < 2) return env;
  const secret = segments.pop()!;
  const prefix = segments[segments.length - 1] === 'result' ? [...segments.slice(0, -1), 'status'] : [...segments, 'status'];
  url.pathname = `/${[...prefix, secret].join('/')}`;
  return { ...env, MPESA_B2C_STATUS_RESULT_URL: url.toString() };
}

/** The B2C settings: all of them, or none (selling is then switched off). */
export const B2C_VARIABLES = [
  'MPESA_B2C_SHORTCODE',
  'MPESA_INITIATOR_NAME',
  'MPESA_INITIATOR_PASSWORD',
  'MPESA_B2C_CERT_PATH',
  'MPESA_B2C_RESULT_URL',
  'MPESA_B2C_TIMEOUT_URL',
  'MPESA_B2C_STATUS_RESULT_URL',
] as const;

const NAMED_PROXY_RANGES = ['loopback', 'linklocal', 'uniquelocal'];

/**
 * TRUST_PROXY, for express: unset or `false` ignores X-Forwarded-For; a number trusts that many hops;
 * otherwise the proxies' addresses/ranges (or express's names loopback, linklocal, uniquelocal).
 * `true` is refused: trusting every hop lets any caller forge its address past the IP allowlist.
 * Returns the setting, or a message saying what is wrong.
 */
function parseTrustProxy(v: string | undefined): false | number | string[] | string {
  if (v === undefined || v.toLowerCase() === 'false') return false;
  if (v.toLowerCase() === 'true') return 'true would trust any X-Forwarded-For; give the number of proxy hops (e.g. 1) or the proxies\' addresses';
  if (/^\d{1,2}$/.test(v)) return Number(v);
  const entries = v.split(',').map((e) => e.trim()).filter(Boolean);
  const bad = entries.filter((e) => !NAMED_PROXY_RANGES.includes(e) && !parseIpRange(e));
  return bad.length > 0 ? `not a hop count, IP address, CIDR range or loopback/linklocal/uniquelocal: ${bad.join(', ')}` : entries;
}

export const fieldsSchema = z.object({
  NODE_ENV: z.string().default('development'),
  ROLE: z.enum(['all', 'web', 'worker']).default('all'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Unset: an embedded Postgres under DATA_DIR. Unset REDIS_URL: queues and sessions in Postgres.
  DATABASE_URL: optionalString,
  REDIS_URL: optionalString,
  DATA_DIR: z.string().default('.data'),
  EMBEDDED_POSTGRES_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  DEMO_POOL_GRAMS: z.coerce.number().int().min(0).default(1000),
  QUEUE_PREFIX: z.string().regex(/^[a-zA-Z0-9_-]+$/).default('gold'),

  MPESA_ENVIRONMENT: z.enum(['emulator', 'sandbox', 'production']),
  MPESA_BASE_URL: optionalString.pipe(z.url().optional()),
  MPESA_CONSUMER_KEY: z.string().min(1),
  MPESA_CONSUMER_SECRET: z.string().min(1),
  MPESA_BUSINESS_SHORTCODE: z.string().regex(/^\d{5,7}$/, 'must be 5 to 7 digits'),
  MPESA_PASSKEY: z.string().min(1),
  MPESA_CALLBACK_URL: z.url().refine((u) => new URL(u).pathname.split('/').filter(Boolean).length >= 2, {
    message: 'needs a path with at least two segments, the last one secret (e.g. https://host/mpesa/callback/<secret>)',
  }),
  MPESA_TRANSACTION_TYPE: z.enum(['CustomerPayBillOnline', 'CustomerBuyGoodsOnline']).default('CustomerPayBillOnline'),
  MPESA_PARTY_B: optionalString.pipe(z.string().regex(/^\d{5,7}$/, 'must be 5 to 7 digits').optional()),
  MPESA_HTTP_TIMEOUT_MS: positiveInt(15000),

  // B2C (selling gold for an M-Pesa payout).
  MPESA_B2C_SHORTCODE: optionalString.pipe(z.string().regex(/^\d{5,7}$/, 'must be 5 to 7 digits').optional()),
  MPESA_INITIATOR_NAME: optionalString,
  // Not trimmed: a password is what it is.
  MPESA_INITIATOR_PASSWORD: z.string().optional().transform((v) => (v === undefined || v === '' ? undefined : v)),
  MPESA_B2C_CERT_PATH: optionalString,
  MPESA_B2C_RESULT_URL: optionalCallbackUrl,
  MPESA_B2C_TIMEOUT_URL: optionalCallbackUrl,
  MPESA_B2C_STATUS_RESULT_URL: optionalCallbackUrl,
  PAYOUT_RESULT_WAIT_SECONDS: positiveInt(300),

  // Paybill (C2B): both URLs or neither (C2B off); the shortcode defaults to the business shortcode.
  MPESA_C2B_SHORTCODE: optionalString.pipe(z.string().regex(/^\d{5,7}$/, 'must be 5 to 7 digits').optional()),
  MPESA_C2B_VALIDATION_URL: optionalCallbackUrl,
  MPESA_C2B_CONFIRMATION_URL: optionalCallbackUrl,
  PAYOUT_STATUS_CHECKS: positiveInt(6),

  AT_USERNAME: z.string().min(1),
  AT_API_KEY: z.string().min(1),
  AT_SENDER_ID: optionalString,
  AT_API_URL: optionalString.pipe(z.url().optional()),
  AT_EMULATOR: z.literal('true').optional(),
  // The last path segment of Africa's Talking's three callbacks (/ussd/<it>, ...): the only thing
  // that tells its requests from anyone else's. Required outside emulator mode (checked below).
  AT_CALLBACK_SECRET: optionalString.pipe(z.string().regex(CALLBACK_SECRET_CHARS, 'must be at least 16 characters from A-Z a-z 0-9 _ - (e.g. openssl rand -hex 16)').optional()),
  AT_CALLBACK_IP_ALLOWLIST: ipList,

  USSD_SERVICE_CODE: z.string().regex(/^\*[\d*]+#$/, 'must look like *384*1#'),
  USSD_SESSION_TTL_SECONDS: z.coerce.number().int().min(180).default(300),

  // Gold prices (src/prices): `fixed` from the two variables below, or `http` polling PRICE_URL.
  PRICE_PROVIDER: z.enum(['fixed', 'http']).default('fixed'),
  GOLD_PRICE_KES_PER_GRAM: kesPerGram,
  GOLD_SELL_PRICE_KES_PER_GRAM: kesPerGram,
  PRICE_URL: optionalString.pipe(z.url().optional()),
  PRICE_POLL_SECONDS: positiveInt(60),
  PRICE_MAX_AGE_SECONDS: positiveInt(300),
  // A quote this far (percent) from the last accepted one pauses trading instead of being used.
  PRICE_MAX_MOVE_PERCENT: z.coerce.number().int().min(1).max(100).default(10),
  // A sell quote locked on the amount screen and older than this at confirm is quoted again.
  QUOTE_TTL_SECONDS: positiveInt(60),

  // Wallet PIN and the USSD menu.
  PIN_LOCK_SECONDS: positiveInt(1800),
  USSD_RESUME_SECONDS: positiveInt(120),
  BUY_MIN_KES: wholeKes(10),
  BUY_MAX_KES: wholeKes(150000),
  BUY_DAILY_LIMIT_KES: wholeKes(300000),
  SELL_MIN_KES: wholeKes(10),
  SELL_MAX_KES: wholeKes(150000),
  SELL_DAILY_LIMIT_KES: wholeKes(150000),

  JOB_ATTEMPTS: positiveInt(6),
  JOB_BACKOFF_MS: positiveInt(2000),
  // Buy jobs one worker process runs at once: their reservations group-commit (reserve-batch.ts), so the more
  // run at once, the bigger the batches. Each holds at most one STK Push request open.
  BUY_WORKER_CONCURRENCY: positiveInt(64),
  OUTBOX_RELAY_INTERVAL_MS: positiveInt(1000),
  // A worker that dies holds its jobs this long before another worker takes them over (BullMQ's lock).
  JOB_LOCK_DURATION_MS: z.coerce.number().int().min(1000).default(30000),

  // Reconciliation of STK payments without a callback (docs/RELIABILITY.md).
  RECONCILE_INTERVAL_MS: z.coerce.number().int().min(200).default(30000),
  RECONCILE_AFTER_SECONDS: z.coerce.number().int().min(0).default(180),
  RECONCILE_RETRY_SECONDS: z.coerce.number().int().min(0).default(30),
  RECONCILE_GIVE_UP_SECONDS: z.coerce.number().int().min(1).default(900),
  RECONCILE_MATCH_WINDOW_SECONDS: z.coerce.number().int().min(1).default(86400),
  // Paid STK callbacks settled together, at most this many per transaction (1 = one by one, as before the batcher).
  STK_SETTLE_BATCH_MAX: z.coerce.number().int().min(1).max(1000).default(64),

  // Security and abuse limits (docs/RELIABILITY.md, "Security and abuse").
  TRUST_PROXY: optionalString.transform((v, ctx) => {
    const parsed = parseTrustProxy(v);
    if (typeof parsed === 'string') {
      ctx.addIssue({ code: 'custom', message: parsed });
      return z.NEVER;
    }
    return parsed;
  }),
  MPESA_CALLBACK_IP_ALLOWLIST: ipList,
  STK_PUSHES_PER_HOUR: positiveInt(10),
  USSD_REQUESTS_PER_MINUTE: positiveInt(30),

  // Ops surface (src/ops, src/http/routes/ops-*.ts). No token: the ops routes are not mounted at all.
  OPS_API_TOKEN: optionalString.pipe(z.string().min(24, 'must be at least 24 characters (e.g. openssl rand -hex 24)').optional()),
  OPS_ALLOW_TEST_STK: z.enum(['true', 'false']).default('false'),
  OPS_QUERY_TIMEOUT_MS: positiveInt(20000),
  METRICS_TOKEN: optionalString.pipe(z.string().min(16, 'must be at least 16 characters').optional()),
  // Bull Board can delete jobs and the reconciliation schedule: read-only unless asked for.
  OPS_QUEUES_WRITABLE: z.enum(['0', '1']).default('0'),
  SHUTDOWN_DRAIN_MS: z.coerce.number().int().min(0).max(120000).default(0),
  WORKER_HTTP_PORT: optionalString.pipe(
    z.string().regex(/^\d{1,5}$/, 'must be a port number').transform(Number).refine((n) => n <= 65535, 'must be a port number').optional(),
  ),
});

export type Env = z.input<typeof fieldsSchema>;
export type ParsedEnv = z.output<typeof fieldsSchema>;
