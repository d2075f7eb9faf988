import { z } from 'zod';
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
 * With no M-Pesa credentials at all, the service runs against its built-in emulators: these are the
 * values it then uses. Set any credential and you get the real Daraja sandbox (or production).
 */
function withEmulatorDefaults(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const given = (name: string) => (env[name] ?? '').trim() !== '';
  const noMpesaCredentials = !['MPESA_CONSUMER_KEY', 'MPESA_CONSUMER_SECRET', 'MPESA_PASSKEY'].some(given);
  const environment = given('MPESA_ENVIRONMENT') ? env.MPESA_ENVIRONMENT : noMpesaCredentials ? 'emulator' : 'sandbox';
  if (environment !== 'emulator') return { ...env, MPESA_ENVIRONMENT: environment };
  const port = given('PORT') ? env.PORT : '3000';
  const self = `http://127.0.0.1:${port}`;
  const noAtCredentials = !given('AT_USERNAME') && !given('AT_API_KEY');
  return {
    MPESA_CONSUMER_KEY: 'emulator-consumer-key',
    MPESA_CONSUMER_SECRET: 'emulator-consumer-secret',
    MPESA_BUSINESS_SHORTCODE: '174379',
    MPESA_PASSKEY: SANDBOX_PASSKEY,
    USSD_SERVICE_CODE: '*384*1#',
    GOLD_PRICE_KES_PER_GRAM: '8500',
    ...Object.fromEntries(Object.entries(env).filter(([, v]) => (v ?? '').trim() !== '')),
    MPESA_ENVIRONMENT: 'emulator',
    // The emulators live in this very process; the service always points itself at them.
    MPESA_BASE_URL: `${self}/emulators/daraja`,
    MPESA_CALLBACK_URL: `${self}/mpesa/callback/${EMULATOR_CALLBACK_SECRET}`,
    ...(noAtCredentials ? { AT_USERNAME: 'emulator', AT_API_KEY: 'emulator-api-key', AT_API_URL: `${self}/emulators/at`, AT_EMULATOR: 'true' } : {}),
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

    AT_USERNAME: z.string().min(1),
    AT_API_KEY: z.string().min(1),
    AT_SENDER_ID: optionalString,
    AT_API_URL: optionalString.pipe(z.url().optional()),
    AT_EMULATOR: z.literal('true').optional(),

    USSD_SERVICE_CODE: z.string().regex(/^\*[\d*]+#$/, 'must look like *384*1#'),
    USSD_SESSION_TTL_SECONDS: z.coerce.number().int().min(180).default(300),

    GOLD_PRICE_KES_PER_GRAM: z.string().transform((v, ctx) => {
      const cents = parseKesToCents(v);
      if (cents === null || cents <= 0) {
        ctx.addIssue({ code: 'custom', message: 'must be a positive KES amount with at most 2 decimals, e.g. 8500 or 8500.50' });
        return z.NEVER;
      }
      return cents;
    }),
    BUY_MIN_KES: wholeKes(10),
    BUY_MAX_KES: wholeKes(150000),

    JOB_ATTEMPTS: positiveInt(6),
    JOB_BACKOFF_MS: positiveInt(2000),
    OUTBOX_RELAY_INTERVAL_MS: positiveInt(1000),
  })
  .superRefine((env, ctx) => {
    if (env.BUY_MIN_KES > env.BUY_MAX_KES) {
      ctx.addIssue({ code: 'custom', path: ['BUY_MIN_KES'], message: 'must not exceed BUY_MAX_KES' });
    }
    if (env.BUY_MAX_KES > 250000) {
      ctx.addIssue({ code: 'custom', path: ['BUY_MAX_KES'], message: 'M-Pesa accepts at most KES 250,000 per transaction' });
    }
    if (env.MPESA_TRANSACTION_TYPE === 'CustomerBuyGoodsOnline' && !env.MPESA_PARTY_B) {
      ctx.addIssue({ code: 'custom', path: ['MPESA_PARTY_B'], message: 'is required (the till number) for CustomerBuyGoodsOnline' });
    }
    if (env.MPESA_ENVIRONMENT === 'production') {
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
  });

export type Env = z.input<typeof envSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function loadConfig(env: Record<string, string | undefined> = process.env) {
  const parsed = envSchema.safeParse(withEmulatorDefaults(env));
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.') || '(environment)'}: ${i.message}`));
  }
  const e = parsed.data;
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
    },
    ussd: {
      serviceCode: e.USSD_SERVICE_CODE,
      sessionTtlSeconds: e.USSD_SESSION_TTL_SECONDS,
    },
    gold: {
      priceCentsPerGram: e.GOLD_PRICE_KES_PER_GRAM,
    },
    buy: {
      minKes: e.BUY_MIN_KES,
      maxKes: e.BUY_MAX_KES,
    },
    jobs: {
      attempts: e.JOB_ATTEMPTS,
      backoffMs: e.JOB_BACKOFF_MS,
      outboxRelayIntervalMs: e.OUTBOX_RELAY_INTERVAL_MS,
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
    at: config.at.emulator ? { ...config.at, apiUrl: `${self}/emulators/at` } : config.at,
  };
}
