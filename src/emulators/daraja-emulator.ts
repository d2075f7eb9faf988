import express, { Router, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from '../lib/logger';
import { B2cPayouts } from './daraja/b2c-payouts';
import { b2cHandlers } from './daraja/b2c-routes';
import { C2bPaybill } from './daraja/c2b-paybill';
import { c2bHandlers, paybillPhoneRouter } from './daraja/c2b-routes';
import { InitiatorCheck } from './daraja/initiator';
import { EmulatedOAuth } from './daraja/oauth';
import { promptRouter } from './daraja/prompt-routes';
import { stkHandlers } from './daraja/stk-routes';
import { StkSessions } from './daraja/stk-sessions';
import { sendEnvelope } from './daraja/wire';

export { EMULATOR_TEST_NUMBERS, HUMAN_PROMPT_BEHAVIOUR } from './daraja/test-numbers';
export { EMULATOR_B2C_TEST_NUMBERS } from './daraja/b2c-test-numbers';
export { WRONG_PIN } from './daraja/prompt-routes';

export interface DarajaEmulatorOptions {
  consumerKey: string;
  consumerSecret: string;
  shortcode: string;
  passkey: string;
  /** PINs are never logged, phone numbers only through maskMsisdn. */
  log: Logger;
  now?: () => Date;
  /** How long a human prompt waits before 1037 (default 60 s). */
  promptTimeoutMs?: number;
  /** Delay before scripted outcomes post their callback (default 1.5 s). */
  callbackDelayMs?: number;
  /** For the late-callback number (default 4 min, past the service's ~3 min pending window). */
  lateCallbackDelayMs?: number;
  /** B2C PartyA (and Transaction Status PartyA) must be this shortcode when set; any shortcode otherwise. */
  b2cShortcode?: string;
  /** Initiator checks (loose when unset): a wrong one is accepted, then answered with Result 2001. */
  initiatorName?: string;
  initiatorPassword?: string;
  /** Private key matching the public key the service encrypts its SecurityCredential with. */
  initiatorPrivateKeyPem?: string;
  /** The B2C utility account; a payout above what is left fails with ResultCode 1 (default 10,000,000 KES). */
  b2cUtilityBalanceKes?: number;
  /** C2B URLs already registered at start, as if `npm run mpesa:register-c2b` had run against the emulator. */
  c2bRegistration?: { shortcode: string; validationUrl: string; confirmationUrl: string };
}

export interface DarajaEmulator {
  router: Router;
  /** Clears every timer and aborts callbacks in flight. */
  close(): void;
}

/**
 * An in-memory Safaricom Daraja for local runs and tests: OAuth, STK Push, STK Query and the STK
 * callback, B2C with its Result / queue-timeout callbacks, and Transaction Status, on Daraja's paths and
 * wire shapes, so the service talks to it exactly as to the sandbox. STK outcomes are scripted by paying
 * number (EMULATOR_TEST_NUMBERS); any other number opens a prompt a phone simulator answers through
 * /prompts. B2C outcomes are scripted by receiving number (EMULATOR_B2C_TEST_NUMBERS); others are paid.
 */
export function createDarajaEmulator(opts: DarajaEmulatorOptions): DarajaEmulator {
  const now = opts.now ?? (() => new Date());
  const log = opts.log.child({ component: 'daraja-emulator' });
  const oauth = new EmulatedOAuth({ consumerKey: opts.consumerKey, consumerSecret: opts.consumerSecret }, now);
  const sessions = new StkSessions(
    {
      promptTimeoutMs: opts.promptTimeoutMs ?? 60_000,
      callbackDelayMs: opts.callbackDelayMs ?? 1_500,
      lateCallbackDelayMs: opts.lateCallbackDelayMs ?? 240_000,
    },
    now,
    log,
  );
  const stk = stkHandlers({ shortcode: opts.shortcode, passkey: opts.passkey, now, sessions });
  const payouts = new B2cPayouts({ callbackDelayMs: opts.callbackDelayMs ?? 1_500, utilityBalanceKes: opts.b2cUtilityBalanceKes ?? 10_000_000 }, now, log);
  const initiator = new InitiatorCheck({
    ...(opts.initiatorName !== undefined ? { initiatorName: opts.initiatorName } : {}),
    ...(opts.initiatorPassword !== undefined ? { initiatorPassword: opts.initiatorPassword } : {}),
    ...(opts.initiatorPrivateKeyPem !== undefined ? { initiatorPrivateKeyPem: opts.initiatorPrivateKeyPem } : {}),
  });
  const b2c = b2cHandlers({ b2cShortcode: opts.b2cShortcode, initiator, payouts });
  const paybill = new C2bPaybill({ callbackDelayMs: opts.callbackDelayMs ?? 1_500 }, now, log);
  if (opts.c2bRegistration) {
    const r = opts.c2bRegistration;
    paybill.register({ ShortCode: r.shortcode, ResponseType: 'Completed', ValidationURL: r.validationUrl, ConfirmationURL: r.confirmationUrl });
  }
  const c2b = c2bHandlers(paybill);

  const router = Router();
  router.get('/oauth/v1/generate', oauth.generate);
  // As on Daraja's gateway, the token is checked before the body is even parsed.
  const api = [oauth.requireBearer, express.json({ limit: '64kb' })];
  router.post('/mpesa/stkpush/v1/processrequest', ...api, stk.push);
  router.post('/mpesa/stkpushquery/v1/query', ...api, stk.query);
  router.post('/mpesa/b2c/v3/paymentrequest', ...api, b2c.payment);
  router.post('/mpesa/transactionstatus/v1/query', ...api, b2c.status);
  router.post('/mpesa/c2b/v1/registerurl', ...api, c2b.registerUrl);
  router.post('/mpesa/c2b/v2/registerurl', ...api, c2b.registerUrl);
  router.post('/mpesa/c2b/v1/simulate', ...api, c2b.simulate);
  router.use('/mpesa', darajaErrorEnvelope(log));
  router.use(promptRouter(sessions));
  router.use(paybillPhoneRouter(paybill));

  return {
    router,
    close: () => {
      sessions.close();
      payouts.close();
      paybill.close();
    },
  };
}

/** Body-parser failures and surprises, answered in Daraja's envelope rather than express's HTML page. */
function darajaErrorEnvelope(log: Logger) {
  return (err: { status?: number; type?: string; message?: string }, _req: Request, res: Response, _next: NextFunction) => {
    if (err.status && err.status >= 400 && err.status < 500) return sendEnvelope(res, 400, '400.002.02', 'Bad Request - Invalid JSON');
    log.error({ err: err.message }, 'emulator: unexpected error');
    sendEnvelope(res, 500, '500.003.1001', 'Internal Server Error');
  };
}
