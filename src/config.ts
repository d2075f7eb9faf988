import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { parseIpList, parseIpRange } from './lib/ip';
import { projectRoot } from './lib/project-root';
import { parseKesToCents } from './lib/units';

/**
 * The only reader of process.env. Everything else receives a Config.
 * A bad environment stops start-up with one message naming every bad variable.
 */

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/gold_wallet';

/** For tools that need only the database (knex CLI, pool:fund), not a full service configuration. */
export function readDatabaseUrl(env: Record<string, string | undefined> = process.env): string {
  return env.DATABASE_URL || DEFAULT_DATABASE_URL;
}

/** Safaricom's published sandbox passkey for shortcode 174379: what the emulator checks passwords against. */
const SANDBOX_PASSKEY = 'bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919';
export const EMULATOR_CALLBACK_SECRET = 'emulator-callback';

/**
 * Emulator mode is never an accident. It is used only when MPESA_ENVIRONMENT=emulator is set, or when
 * nothing at all is configured (no DATABASE_URL, no M-Pesa credentials: `npm start` on a bare machine,
 * the embedded sandbox); these are the values it then uses. A service given a DATABASE_URL (a real
 * deployment) without MPESA_ENVIRONMENT is taken as `sandbox`, so each missing M-Pesa variable stops
 * start-up by name instead of silently approving its own prompts. NODE_ENV=production never runs the
 * emulators (refused in the schema below).
 */
function withEmulatorDefaults(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const given = (name: string) => (env[name] ?? '').trim() !== '';
  const noMpesaCredentials = !['MPESA_CONSUMER_KEY', 'MPESA_CONSUMER_SECRET', 'MPESA_PASSKEY'].some(given);
  const bareMachine = noMpesaCredentials && !given('DATABASE_URL');
  const environment = given('MPESA_ENVIRONMENT') ? env.MPESA_ENVIRONMENT : bareMachine ? 'emulator' : 'sandbox';
  if (environment !== 'emulator') return { ...env, MPESA_ENVIRONMENT: environment };
  const port = given('PORT') ? env.PORT : '3000';
  const self = `http://127.0.0.1:${port}`;
  const noAtCredentials = !given('AT_USERNAME') && !given('AT_API_KEY');
  return {
    MPESA_CONSUMER_KEY: 'emulator-consumer-key',
    MPESA_CONSUMER_SECRET: 'emulator-consumer-secret',
    MPESA_BUSINESS_SHORTCODE: '174379',
    MPESA_PASSKEY: SANDBOX_PASSKEY,
    // Daraja sandbox's published B2C test initiator; the emulator checks the credential against it.
    MPESA_B2C_SHORTCODE: '600000',
    MPESA_INITIATOR_NAME: 'testapi',
    MPESA_INITIATOR_PASSWORD: 'Safaricom999!*!',
    USSD_SERVICE_CODE: '*384*1#',
    GOLD_PRICE_KES_PER_GRAM: '8500',
    // Someone trying the sandbox buys many times an hour from the same few test numbers.
    STK_PUSHES_PER_HOUR: '100',
    ...Object.fromEntries(Object.entries(env).filter(([, v]) => (v ?? '').trim() !== '')),
    MPESA_ENVIRONMENT: 'emulator',
    // The emulators live in this very process; the service always points itself at them.
    MPESA_BASE_URL: `${self}/emulators/daraja`,
    MPESA_CALLBACK_URL: `${self}/mpesa/callback/${EMULATOR_CALLBACK_SECRET}`,
    ...emulatorB2cUrls(self),
    ...emulatorC2bUrls(self),
    // The emulator's key pair is generated at start-up (src/sandbox): no certificate file.
    MPESA_B2C_CERT_PATH: undefined,
    ...(noAtCredentials ? { AT_USERNAME: 'emulator', AT_API_KEY: 'emulator-api-key', AT_API_URL: `${self}/emulators/at`, AT_EMULATOR: 'true' } : {}),
  };
}

function emulatorB2cUrls(self: string) {
  return {
    MPESA_B2C_RESULT_URL: `${self}/mpesa/b2c/result/${EMULATOR_CALLBACK_SECRET}`,
    MPESA_B2C_TIMEOUT_URL: `${self}/mpesa/b2c/timeout/${EMULATOR_CALLBACK_SECRET}`,
    MPESA_B2C_STATUS_RESULT_URL: `${self}/mpesa/b2c/status/${EMULATOR_CALLBACK_SECRET}`,
  };
}

/** Paybill (C2B) in emulator mode: the emulator's simulate endpoint calls these (src/emulators/daraja/c2b-*.ts). */
function emulatorC2bUrls(self: string) {
  return {
    MPESA_C2B_VALIDATION_URL: `${self}/c2b/validation/${EMULATOR_CALLBACK_SECRET}`,
    MPESA_C2B_CONFIRMATION_URL: `${self}/c2b/confirmation/${EMULATOR_CALLBACK_SECRET}`,
  };
}

const LOOPBACK = /^https?:\/\/(localhost|127\.|\[::1\]|0\.0\.0\.0)/i;

const DARAJA_HOSTS = {
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
const MIN_SECRET_LENGTH = 16;
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
const B2C_VARIABLES = [
  'MPESA_B2C_SHORTCODE',
  'MPESA_INITIATOR_NAME',
  'MPESA_INITIATOR_PASSWORD',
  'MPESA_B2C_CERT_PATH',
  'MPESA_B2C_RESULT_URL',
  'MPESA_B2C_TIMEOUT_URL',
  'MPESA_B2C_STATUS_RESULT_URL',
] as const;

const envSchema = z
  .object({
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
    OUTBOX_RELAY_INTERVAL_MS: positiveInt(1000),
    // A worker that dies holds its jobs this long before another worker takes them over (BullMQ's lock).
    JOB_LOCK_DURATION_MS: z.coerce.number().int().min(1000).default(30000),

    // Reconciliation of STK payments without a callback (docs/RELIABILITY.md).
    RECONCILE_INTERVAL_MS: z.coerce.number().int().min(200).default(30000),
    RECONCILE_AFTER_SECONDS: z.coerce.number().int().min(0).default(180),
    RECONCILE_RETRY_SECONDS: z.coerce.number().int().min(0).default(30),
    RECONCILE_GIVE_UP_SECONDS: z.coerce.number().int().min(1).default(900),
    RECONCILE_MATCH_WINDOW_SECONDS: z.coerce.number().int().min(1).default(86400),

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
  })
  .superRefine((env, ctx) => {
    if (env.RECONCILE_GIVE_UP_SECONDS <= env.RECONCILE_AFTER_SECONDS) {
      ctx.addIssue({ code: 'custom', path: ['RECONCILE_GIVE_UP_SECONDS'], message: 'must be greater than RECONCILE_AFTER_SECONDS' });
    }
    if (env.RECONCILE_MATCH_WINDOW_SECONDS < env.RECONCILE_GIVE_UP_SECONDS) {
      ctx.addIssue({ code: 'custom', path: ['RECONCILE_MATCH_WINDOW_SECONDS'], message: 'must be at least RECONCILE_GIVE_UP_SECONDS' });
    }
    if (env.BUY_MIN_KES > env.BUY_MAX_KES) {
      ctx.addIssue({ code: 'custom', path: ['BUY_MIN_KES'], message: 'must not exceed BUY_MAX_KES' });
    }
    checkPriceSettings(env, ctx);
    if (env.BUY_MAX_KES > 250000) {
      ctx.addIssue({ code: 'custom', path: ['BUY_MAX_KES'], message: 'M-Pesa accepts at most KES 250,000 per transaction' });
    }
    if (env.SELL_MIN_KES < 10) {
      ctx.addIssue({ code: 'custom', path: ['SELL_MIN_KES'], message: 'M-Pesa B2C pays at least KES 10' });
    }
    if (env.SELL_MIN_KES > env.SELL_MAX_KES) {
      ctx.addIssue({ code: 'custom', path: ['SELL_MIN_KES'], message: 'must not exceed SELL_MAX_KES' });
    }
    if (env.SELL_MAX_KES > 250000) {
      ctx.addIssue({ code: 'custom', path: ['SELL_MAX_KES'], message: 'M-Pesa B2C pays at most KES 250,000 per transaction' });
    }
    checkB2cSettings(env, ctx);
    checkC2bSettings(env, ctx);
    if (env.MPESA_TRANSACTION_TYPE === 'CustomerBuyGoodsOnline' && !env.MPESA_PARTY_B) {
      ctx.addIssue({ code: 'custom', path: ['MPESA_PARTY_B'], message: 'is required (the till number) for CustomerBuyGoodsOnline' });
    }
    if (env.MPESA_ENVIRONMENT === 'emulator' && env.NODE_ENV === 'production') {
      // The emulator approves any prompt its caller likes: in production that is free gold from real books.
      ctx.addIssue({ code: 'custom', path: ['MPESA_ENVIRONMENT'], message: 'emulator mode is refused with NODE_ENV=production: set MPESA_ENVIRONMENT=production with the M-Pesa and Africa\'s Talking settings (README, Going live)' });
    }
    checkCallbackSecrets(env, ctx);
    if (env.MPESA_ENVIRONMENT === 'production') {
      // A price over http can be rewritten on the way: a feed at KES 1/g would sell the pool for nothing.
      if (env.PRICE_URL && !env.PRICE_URL.startsWith('https://')) {
        ctx.addIssue({ code: 'custom', path: ['PRICE_URL'], message: 'must be https in production' });
      }
      if (!env.MPESA_CALLBACK_URL.startsWith('https://')) {
        ctx.addIssue({ code: 'custom', path: ['MPESA_CALLBACK_URL'], message: 'must be https in production' });
      }
      // Production must never talk to an emulator (or to Africa's Talking's sandbox).
      if (env.MPESA_BASE_URL && env.MPESA_BASE_URL.replace(/\/+$/, '') !== DARAJA_HOSTS.production) {
        ctx.addIssue({ code: 'custom', path: ['MPESA_BASE_URL'], message: `must be ${DARAJA_HOSTS.production} (or unset) in production` });
      }
      if (env.AT_API_URL && (LOOPBACK.test(env.AT_API_URL) || env.AT_API_URL.includes('/emulators/'))) {
        ctx.addIssue({ code: 'custom', path: ['AT_API_URL'], message: 'points at an emulator: not allowed in production' });
      }
      if (env.AT_USERNAME === 'sandbox') {
        ctx.addIssue({ code: 'custom', path: ['AT_USERNAME'], message: "is Africa's Talking's sandbox: not allowed in production" });
      }
    }
    if (!env.DATABASE_URL && env.ROLE !== 'all') {
      ctx.addIssue({ code: 'custom', path: ['DATABASE_URL'], message: 'is required for ROLE=web or ROLE=worker (the embedded Postgres is for a single all-in-one process)' });
    }
    if (env.MPESA_ENVIRONMENT === 'emulator' && env.ROLE !== 'all') {
      // The emulators are mounted in the process's own web server: a worker would call a port nobody serves.
      ctx.addIssue({ code: 'custom', path: ['MPESA_ENVIRONMENT'], message: 'emulator runs inside one all-in-one process (ROLE=all); split roles need Daraja settings (sandbox or production)' });
    }
  });

export type Env = z.input<typeof envSchema>;

type ParsedEnv = z.output<typeof envSchema>;

/**
 * B2C is all or nothing, but for MPESA_B2C_CERT_PATH: Safaricom's sandbox and production certificates
 * ship in certs/ (chosen by MPESA_ENVIRONMENT), and in emulator mode the sandbox generates a key pair.
 * Every Daraja callback needs a path prefix of its own: the routes are mounted by prefix and answer
 * 404 for a wrong secret, so two callbacks under one prefix would shadow each other.
 */
function checkB2cSettings(env: ParsedEnv, ctx: z.RefinementCtx) {
  // The certificate is Safaricom's, shipped for sandbox and production (certs/): the path only overrides it.
  const needed = B2C_VARIABLES.filter((name) => name !== 'MPESA_B2C_CERT_PATH');
  const given = B2C_VARIABLES.filter((name) => env[name] !== undefined);
  if (given.length === 0) return;
  for (const name of needed) {
    if (env[name] === undefined) ctx.addIssue({ code: 'custom', path: [name], message: `is required with the other B2C settings (${given.join(', ')}); set all of them, or none to switch selling off` });
  }
  const urls = { MPESA_CALLBACK_URL: env.MPESA_CALLBACK_URL, MPESA_B2C_RESULT_URL: env.MPESA_B2C_RESULT_URL, MPESA_B2C_TIMEOUT_URL: env.MPESA_B2C_TIMEOUT_URL, MPESA_B2C_STATUS_RESULT_URL: env.MPESA_B2C_STATUS_RESULT_URL };
  const seen = new Map<string, string>();
  for (const [name, url] of Object.entries(urls)) {
    if (!url) continue;
    if (env.MPESA_ENVIRONMENT === 'production' && !url.startsWith('https://')) ctx.addIssue({ code: 'custom', path: [name], message: 'must be https in production' });
    const prefix = callbackRoute(url).pathPrefix;
    const other = seen.get(prefix);
    if (other) ctx.addIssue({ code: 'custom', path: [name], message: `needs a path of its own: ${other} already uses ${prefix}/<secret>` });
    else seen.set(prefix, name);
  }
}

/**
 * Daraja's callbacks are unsigned: the last path segment of each callback URL is the only thing that
 * tells Safaricom from anyone else. Outside the emulator it must be long enough not to be guessed (a
 * segment like `callback` is refused). AT_CALLBACK_SECRET's own format is checked where it is declared.
 */
function checkCallbackSecrets(env: ParsedEnv, ctx: z.RefinementCtx) {
  if (env.MPESA_ENVIRONMENT === 'emulator') return;
  const urls = { MPESA_CALLBACK_URL: env.MPESA_CALLBACK_URL, MPESA_B2C_RESULT_URL: env.MPESA_B2C_RESULT_URL, MPESA_B2C_TIMEOUT_URL: env.MPESA_B2C_TIMEOUT_URL, MPESA_B2C_STATUS_RESULT_URL: env.MPESA_B2C_STATUS_RESULT_URL };
  for (const [name, url] of Object.entries(urls)) {
    // A URL with no secret segment at all is already refused by its own schema.
    if (url && new URL(url).pathname.split('/').filter(Boolean).length >= 2 && callbackRoute(url).secret.length < MIN_SECRET_LENGTH) {
      ctx.addIssue({ code: 'custom', path: [name], message: `its last path segment is the secret: at least ${MIN_SECRET_LENGTH} characters (e.g. openssl rand -hex 16)` });
    }
  }
}

/** Safaricom's register URL filters out URLs that mention M-Pesa or Safaricom (its C2B documentation). */
const C2B_FORBIDDEN_WORDS = /m-?pesa|safaricom/i;

/**
 * Paybill (C2B): both URLs or neither. Each is a callback like the others: its own path prefix (also
 * apart from the STK and B2C ones), https in production, and a secret last segment long enough not to
 * be guessed (at least 16 characters outside the emulator). Safaricom refuses to register URLs that
 * contain "mpesa" or "safaricom", so those are refused here too, at start-up rather than at registration.
 */
function checkC2bSettings(env: ParsedEnv, ctx: z.RefinementCtx) {
  const c2b = { MPESA_C2B_VALIDATION_URL: env.MPESA_C2B_VALIDATION_URL, MPESA_C2B_CONFIRMATION_URL: env.MPESA_C2B_CONFIRMATION_URL };
  const given = Object.entries(c2b).filter(([, url]) => url !== undefined);
  if (given.length === 0) return;
  for (const [name, url] of Object.entries(c2b)) {
    if (url === undefined) ctx.addIssue({ code: 'custom', path: [name], message: `is required with ${given[0]![0]}; set both to switch Pay by Paybill on, or neither` });
  }
  const others = [env.MPESA_CALLBACK_URL, env.MPESA_B2C_RESULT_URL, env.MPESA_B2C_TIMEOUT_URL, env.MPESA_B2C_STATUS_RESULT_URL].filter((u): u is string => !!u);
  const taken = new Set(others.map((u) => callbackRoute(u).pathPrefix));
  for (const [name, url] of given as Array<[string, string]>) {
    const { pathPrefix, secret } = callbackRoute(url);
    if (env.MPESA_ENVIRONMENT === 'production' && !url.startsWith('https://')) ctx.addIssue({ code: 'custom', path: [name], message: 'must be https in production' });
    if (env.MPESA_ENVIRONMENT !== 'emulator' && secret.length < 16) ctx.addIssue({ code: 'custom', path: [name], message: 'its last path segment is the secret: at least 16 characters (e.g. openssl rand -hex 16)' });
    if (env.MPESA_ENVIRONMENT !== 'emulator' && C2B_FORBIDDEN_WORDS.test(url)) ctx.addIssue({ code: 'custom', path: [name], message: 'must not contain "mpesa" or "safaricom": Safaricom refuses to register such URLs' });
    if (taken.has(pathPrefix)) ctx.addIssue({ code: 'custom', path: [name], message: `needs a path of its own: another Daraja callback already uses ${pathPrefix}/<secret>` });
    taken.add(pathPrefix);
  }
}

/** `fixed` needs the buy price (the sell price defaults from it); `http` needs the URL. */
function checkPriceSettings(env: ParsedEnv, ctx: z.RefinementCtx) {
  if (env.PRICE_PROVIDER === 'http') {
    if (!env.PRICE_URL) ctx.addIssue({ code: 'custom', path: ['PRICE_URL'], message: 'is required with PRICE_PROVIDER=http' });
    return;
  }
  if (env.GOLD_PRICE_KES_PER_GRAM === undefined) {
    ctx.addIssue({ code: 'custom', path: ['GOLD_PRICE_KES_PER_GRAM'], message: 'is required with PRICE_PROVIDER=fixed (e.g. 8500 or 8500.50)' });
  } else if (env.GOLD_SELL_PRICE_KES_PER_GRAM !== undefined && env.GOLD_SELL_PRICE_KES_PER_GRAM > env.GOLD_PRICE_KES_PER_GRAM) {
    ctx.addIssue({ code: 'custom', path: ['GOLD_SELL_PRICE_KES_PER_GRAM'], message: 'must not exceed GOLD_PRICE_KES_PER_GRAM (anyone could buy and sell back at a profit)' });
  }
}

/** The route of a callback URL: mounted at its path minus the last segment, which is the shared secret. */
function callbackRoute(url: string): { pathPrefix: string; secret: string } {
  const segments = new URL(url).pathname.split('/').filter(Boolean);
  return { pathPrefix: '/' + segments.slice(0, -1).join('/'), secret: segments[segments.length - 1]! };
}

/**
 * Safaricom's public certificates for the initiator password, as shipped in certs/ (see certs/README.md
 * for where each comes from). MPESA_B2C_CERT_PATH replaces them, e.g. when Safaricom rotates one.
 */
export function bundledCertificatePath(environment: 'sandbox' | 'production'): string {
  return path.join(projectRoot(), 'certs', `mpesa-${environment}.cer`);
}

/** The certificate file's text, or a problem for the start-up message. */
function readCertificate(file: string, name: string): { pem: string } | { problem: string } {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    return { problem: `${name}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
  }
  if (!/-----BEGIN (CERTIFICATE|PUBLIC KEY|RSA PUBLIC KEY)-----/.test(pem)) {
    return { problem: `${name}: ${file} is not a PEM certificate (expected -----BEGIN CERTIFICATE-----)` };
  }
  return { pem };
}

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

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * AT_CALLBACK_SECRET outside emulator mode. Checked apart from the schema so that it is named together
 * with every other missing variable (the schema's cross-checks run only once each field is valid).
 */
function missingAtSecret(env: Record<string, string | undefined>): string[] {
  const environment = env.MPESA_ENVIRONMENT?.trim();
  if (environment === 'emulator' || (env.AT_CALLBACK_SECRET ?? '').trim() !== '') return [];
  // Without it anyone who can reach /ussd could speak for any phone (set a PIN, sell, lock a customer out).
  return [`AT_CALLBACK_SECRET: is required with MPESA_ENVIRONMENT=${environment}: the secret last path segment of Africa's Talking's callback URLs (at least 16 characters from A-Z a-z 0-9 _ -, e.g. openssl rand -hex 16)`];
}

export function loadConfig(env: Record<string, string | undefined> = process.env) {
  const effective = withStatusResultUrl(withEmulatorDefaults(env));
  const parsed = envSchema.safeParse(effective);
  const missing = missingAtSecret(effective);
  if (!parsed.success || missing.length > 0) {
    throw new ConfigError([...(parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.') || '(environment)'}: ${i.message}`)), ...missing]);
  }
  const e = parsed.data;
  // Emulator mode: a key pair made at start-up stands in (src/server.ts); no file is read.
  const certificateFile = !e.MPESA_B2C_SHORTCODE || e.MPESA_ENVIRONMENT === 'emulator' ? null : (e.MPESA_B2C_CERT_PATH ?? bundledCertificatePath(e.MPESA_ENVIRONMENT));
  const certificate = certificateFile ? readCertificate(certificateFile, e.MPESA_B2C_CERT_PATH ? 'MPESA_B2C_CERT_PATH' : `the ${e.MPESA_ENVIRONMENT} certificate shipped in certs/`) : null;
  if (certificate && 'problem' in certificate) throw new ConfigError([certificate.problem]);
  const callbackUrl = new URL(e.MPESA_CALLBACK_URL);
  const segments = callbackUrl.pathname.split('/').filter(Boolean);
  return {
    env: e.NODE_ENV,
    role: e.ROLE,
    port: e.PORT,
    logLevel: e.LOG_LEVEL,
    /** null: start the embedded Postgres (runService fills this in). */
    databaseUrl: e.DATABASE_URL ?? null,
    /** null: no Redis; queues and sessions run on Postgres. */
    redisUrl: e.REDIS_URL ?? null,
    dataDir: e.DATA_DIR,
    embeddedPostgresPort: e.EMBEDDED_POSTGRES_PORT,
    demoPoolGrams: e.DEMO_POOL_GRAMS,
    queuePrefix: e.QUEUE_PREFIX,
    mpesa: {
      environment: e.MPESA_ENVIRONMENT,
      baseUrl: (e.MPESA_BASE_URL ?? (e.MPESA_ENVIRONMENT === 'production' ? DARAJA_HOSTS.production : DARAJA_HOSTS.sandbox)).replace(/\/+$/, ''),
      consumerKey: e.MPESA_CONSUMER_KEY,
      consumerSecret: e.MPESA_CONSUMER_SECRET,
      shortcode: e.MPESA_BUSINESS_SHORTCODE,
      passkey: e.MPESA_PASSKEY,
      callbackUrl: e.MPESA_CALLBACK_URL,
      // The callback route is mounted at the URL's path; its last segment is the shared secret.
      callbackPathPrefix: '/' + segments.slice(0, -1).join('/'),
      callbackSecret: segments[segments.length - 1]!,
      transactionType: e.MPESA_TRANSACTION_TYPE,
      partyB: e.MPESA_PARTY_B ?? e.MPESA_BUSINESS_SHORTCODE,
      httpTimeoutMs: e.MPESA_HTTP_TIMEOUT_MS,
    },
    at: {
      username: e.AT_USERNAME,
      apiKey: e.AT_API_KEY,
      senderId: e.AT_SENDER_ID,
      apiUrl: e.AT_API_URL?.replace(/\/+$/, ''),
      emulator: e.AT_EMULATOR === 'true',
      /**
       * The last path segment of /ussd/<it>, /ussd/events/<it> and /sms/delivery-reports/<it>. null only in
       * emulator mode without AT_CALLBACK_SECRET: runService then fills in the sandbox's own (src/sandbox/at-secret.ts).
       */
      callbackSecret: e.AT_CALLBACK_SECRET ?? null,
      /** Empty: Africa's Talking's callbacks accepted from any address (the secret path still applies). */
      callbackIpAllowlist: e.AT_CALLBACK_IP_ALLOWLIST,
    },
    ussd: {
      serviceCode: e.USSD_SERVICE_CODE,
      sessionTtlSeconds: e.USSD_SESSION_TTL_SECONDS,
      /** A session that drops mid-flow can be continued by redialling within this time. */
      resumeSeconds: e.USSD_RESUME_SECONDS,
    },
    wallet: {
      /** Three wrong wallet PINs in a row lock the wallet this long. */
      pinLockSeconds: e.PIN_LOCK_SECONDS,
    },
    gold: {
      /** The fixed buy price (PRICE_PROVIDER=fixed); null with the http provider. */
      priceCentsPerGram: e.GOLD_PRICE_KES_PER_GRAM ?? null,
    },
    prices: {
      provider: e.PRICE_PROVIDER,
      buyCentsPerGram: e.GOLD_PRICE_KES_PER_GRAM ?? null,
      sellCentsPerGram:
        e.GOLD_SELL_PRICE_KES_PER_GRAM ??
        (e.GOLD_PRICE_KES_PER_GRAM === undefined ? null : Math.floor((e.GOLD_PRICE_KES_PER_GRAM * DEFAULT_SELL_PRICE_PERCENT) / 100)),
      url: e.PRICE_URL ?? null,
      pollSeconds: e.PRICE_POLL_SECONDS,
      maxAgeSeconds: e.PRICE_MAX_AGE_SECONDS,
      /** A quote that moves more than this percent from the last accepted one pauses trading (ops alert). */
      maxMovePercent: e.PRICE_MAX_MOVE_PERCENT,
      /** A sell quote older than this at confirm is re-quoted on a fresh confirm screen. */
      quoteTtlSeconds: e.QUOTE_TTL_SECONDS,
    },
    buy: {
      minKes: e.BUY_MIN_KES,
      maxKes: e.BUY_MAX_KES,
      /** Per customer per Nairobi calendar day, all non-failed buy orders together. */
      dailyLimitKes: e.BUY_DAILY_LIMIT_KES,
    },
    sell: {
      minKes: e.SELL_MIN_KES,
      maxKes: e.SELL_MAX_KES,
      dailyLimitKes: e.SELL_DAILY_LIMIT_KES,
    },
    /** null: no B2C settings, selling is switched off. */
    b2c: e.MPESA_B2C_SHORTCODE
      ? {
          shortcode: e.MPESA_B2C_SHORTCODE,
          initiatorName: e.MPESA_INITIATOR_NAME!,
          initiatorPassword: e.MPESA_INITIATOR_PASSWORD!,
          /** Safaricom's certificate, read once here; null in emulator mode (the sandbox generates a key pair). */
          certificatePem: certificate && 'pem' in certificate ? certificate.pem : null,
          /** Where it came from, for the start-up log: MPESA_B2C_CERT_PATH, or the one shipped in certs/. */
          certificateSource: !certificate ? null : e.MPESA_B2C_CERT_PATH ? ('MPESA_B2C_CERT_PATH' as const) : ('bundled' as const),
          resultUrl: e.MPESA_B2C_RESULT_URL!,
          timeoutUrl: e.MPESA_B2C_TIMEOUT_URL!,
          statusResultUrl: e.MPESA_B2C_STATUS_RESULT_URL!,
          resultRoute: callbackRoute(e.MPESA_B2C_RESULT_URL!),
          timeoutRoute: callbackRoute(e.MPESA_B2C_TIMEOUT_URL!),
          statusResultRoute: callbackRoute(e.MPESA_B2C_STATUS_RESULT_URL!),
        }
      : null,
    /** null: no C2B URLs, Pay by Paybill is switched off (its routes are not mounted). */
    c2b:
      e.MPESA_C2B_VALIDATION_URL && e.MPESA_C2B_CONFIRMATION_URL
        ? {
            shortcode: e.MPESA_C2B_SHORTCODE ?? e.MPESA_BUSINESS_SHORTCODE,
            validationUrl: e.MPESA_C2B_VALIDATION_URL,
            confirmationUrl: e.MPESA_C2B_CONFIRMATION_URL,
            validationRoute: callbackRoute(e.MPESA_C2B_VALIDATION_URL),
            confirmationRoute: callbackRoute(e.MPESA_C2B_CONFIRMATION_URL),
          }
        : null,
    payouts: {
      /** After Daraja accepts a payout, ask Transaction Status if no result has come by then. */
      resultWaitSeconds: e.PAYOUT_RESULT_WAIT_SECONDS,
      /** Transaction Status checks per payout before it goes to review. */
      statusChecks: e.PAYOUT_STATUS_CHECKS,
    },
    jobs: {
      attempts: e.JOB_ATTEMPTS,
      backoffMs: e.JOB_BACKOFF_MS,
      outboxRelayIntervalMs: e.OUTBOX_RELAY_INTERVAL_MS,
      lockDurationMs: e.JOB_LOCK_DURATION_MS,
    },
    reconcile: {
      /** How often the reconciliation job runs (a BullMQ job scheduler). */
      intervalMs: e.RECONCILE_INTERVAL_MS,
      /** A payment accepted this long ago without a callback is asked about with STK Query. */
      afterSeconds: e.RECONCILE_AFTER_SECONDS,
      /** Base of the backoff between Queries while M-Pesa says "being processed" (doubles, at most x16). */
      retrySeconds: e.RECONCILE_RETRY_SECONDS,
      /** No final answer this long after the push: the reservation expires and the customer is told. */
      giveUpSeconds: e.RECONCILE_GIVE_UP_SECONDS,
      /** A success callback with a CheckoutRequestID we never stored is matched to a push this recent. */
      matchWindowSeconds: e.RECONCILE_MATCH_WINDOW_SECONDS,
    },
    http: {
      /** Express's `trust proxy`: false (X-Forwarded-For ignored), a hop count, or the proxies' addresses. */
      trustProxy: e.TRUST_PROXY,
      /** Empty: callbacks accepted from any address (the secret path still applies). */
      callbackIpAllowlist: e.MPESA_CALLBACK_IP_ALLOWLIST,
    },
    limits: {
      stkPushesPerHour: e.STK_PUSHES_PER_HOUR,
      ussdRequestsPerMinute: e.USSD_REQUESTS_PER_MINUTE,
    },
    ops: {
      /** Bearer token of the ops routes; null: they are not mounted (404). */
      apiToken: e.OPS_API_TOKEN ?? null,
      /** POST /mpesa/test-stk is refused in production unless this is set. */
      allowTestStk: e.OPS_ALLOW_TEST_STK === 'true' || e.MPESA_ENVIRONMENT !== 'production',
      /** How long GET /mpesa/status/:id?live=1 waits for its query job before answering 504. */
      queryTimeoutMs: e.OPS_QUERY_TIMEOUT_MS,
      /**
       * Bearer token for GET /metrics (the ops token is accepted too). With neither, /metrics is open in
       * emulator mode and not served at all (404) otherwise: pool balances and order counts are not public.
       */
      metricsToken: e.METRICS_TOKEN ?? null,
      /** OPS_QUEUES_WRITABLE=1: Bull Board may retry, clean, remove and pause; otherwise it is read-only. */
      queuesWritable: e.OPS_QUEUES_WRITABLE === '1',
      /** After SIGTERM, /ready answers 503 this long before the server stops taking connections. */
      shutdownDrainMs: e.SHUTDOWN_DRAIN_MS,
      /** A ROLE=worker process answers /live, /ready and /metrics on this port; null: no HTTP at all. */
      workerHttpPort: e.WORKER_HTTP_PORT ?? null,
    },
  };
}

export type Config = ReturnType<typeof loadConfig>;

/** A config whose database is known (after the embedded Postgres, if any, has started). */
export type RunConfig = Config & { databaseUrl: string };

/**
 * In emulator mode the service calls itself; once it listens (PORT=0 picks a free port), the
 * emulator URLs are rebuilt for the real port.
 */
export function bindEmulatorUrls<C extends Config>(config: C, port: number): C {
  if (config.mpesa.environment !== 'emulator') return config;
  const self = `http://127.0.0.1:${port}`;
  return {
    ...config,
    mpesa: { ...config.mpesa, baseUrl: `${self}/emulators/daraja`, callbackUrl: `${self}/mpesa/callback/${EMULATOR_CALLBACK_SECRET}` },
    b2c: config.b2c ? bindB2cUrls(config.b2c, self) : null,
    c2b: config.c2b ? bindC2bUrls(config.c2b, self) : null,
    at: config.at.emulator ? { ...config.at, apiUrl: `${self}/emulators/at` } : config.at,
  };
}

function bindB2cUrls(b2c: NonNullable<Config['b2c']>, self: string): NonNullable<Config['b2c']> {
  const urls = emulatorB2cUrls(self);
  return { ...b2c, resultUrl: urls.MPESA_B2C_RESULT_URL, timeoutUrl: urls.MPESA_B2C_TIMEOUT_URL, statusResultUrl: urls.MPESA_B2C_STATUS_RESULT_URL };
}

function bindC2bUrls(c2b: NonNullable<Config['c2b']>, self: string): NonNullable<Config['c2b']> {
  const urls = emulatorC2bUrls(self);
  return { ...c2b, validationUrl: urls.MPESA_C2B_VALIDATION_URL, confirmationUrl: urls.MPESA_C2B_CONFIRMATION_URL };
}
