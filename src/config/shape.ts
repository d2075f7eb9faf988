import { DARAJA_HOSTS, DEFAULT_SELL_PRICE_PERCENT, type ParsedEnv } from './fields';

/** The route of a callback URL: mounted at its path minus the last segment, which is the shared secret. */
export function callbackRoute(url: string): { pathPrefix: string; secret: string } {
  const segments = new URL(url).pathname.split('/').filter(Boolean);
  return { pathPrefix: '/' + segments.slice(0, -1).join('/'), secret: segments[segments.length - 1]! };
}

/** The Config the code reads, shaped from the parsed environment: the names, units and nesting it uses. */
export function shapeConfig(e: ParsedEnv, certificate: { pem: string } | null) {
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
      /** Buy jobs per worker process at once (their reservations are batched together). */
      buyConcurrency: e.BUY_WORKER_CONCURRENCY,
    },
    settlement: {
      /** Concurrent paid STK callbacks settled in one transaction, at most (src/payments/buy/settle-stk-batch.ts). */
      stkBatchMax: e.STK_SETTLE_BATCH_MAX,
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
