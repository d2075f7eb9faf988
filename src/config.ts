import { z } from 'zod';
import { parseKesToCents } from './lib/units';

/**
 * The only reader of process.env. Everything else receives a Config.
 * A bad environment stops start-up with one message naming every bad variable.
 */

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/gold_wallet';

/** For tools that need only the database (knex CLI), not a full service configuration. */
export function readDatabaseUrl(env: Record<string, string | undefined> = process.env): string {
  return env.DATABASE_URL || DEFAULT_DATABASE_URL;
}

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
    DATABASE_URL: z.string().default(DEFAULT_DATABASE_URL),
    REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
    QUEUE_PREFIX: z.string().regex(/^[a-zA-Z0-9_-]+$/).default('gold'),

    MPESA_ENVIRONMENT: z.enum(['sandbox', 'production']).default('sandbox'),
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
    if (env.MPESA_ENVIRONMENT === 'production' && !env.MPESA_CALLBACK_URL.startsWith('https://')) {
      ctx.addIssue({ code: 'custom', path: ['MPESA_CALLBACK_URL'], message: 'must be https in production' });
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
  const parsed = envSchema.safeParse(env);
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
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    queuePrefix: e.QUEUE_PREFIX,
    mpesa: {
      environment: e.MPESA_ENVIRONMENT,
      baseUrl: (e.MPESA_BASE_URL ?? DARAJA_HOSTS[e.MPESA_ENVIRONMENT]).replace(/\/+$/, ''),
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
