import { z } from 'zod';
import { B2C_VARIABLES, DARAJA_HOSTS, LOOPBACK, MIN_SECRET_LENGTH, type ParsedEnv } from './fields';
import { callbackRoute } from './shape';

/** The rules across fields: what one variable requires of another, and what production refuses. */
export function checkEnv(env: ParsedEnv, ctx: z.RefinementCtx): void {
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
}

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
