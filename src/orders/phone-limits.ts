import type { Config } from '../config';
import type { Backends } from '../infra/backends';
import type { Limiter } from '../infra/limiter';

/**
 * Per-phone abuse limits, keyed by the M-Pesa MSISDN (2547XXXXXXXX). The third limit, one open STK
 * payment per phone, is a database fact (placeBuyOrder, index orders_one_open_buy_per_msisdn).
 */
export interface PhoneLimits {
  /** USSD_REQUESTS_PER_MINUTE: every request from a valid M-Pesa number counts, repeats included. */
  ussdRequests: Limiter;
  /** STK_PUSHES_PER_HOUR: every buy order placed (each gets at most one STK Push). */
  stkPushes: Limiter;
}

/** The USSD request counter's key prefix (the limiter's name below), shared with the one-script path in src/infra/ussd-turns.ts. */
export const USSD_LIMIT_PREFIX = (queuePrefix: string) => `${queuePrefix}:limit:ussd-requests`;

export function createPhoneLimits(backends: Pick<Backends, 'limiter'>, limits: Config['limits']): PhoneLimits {
  return {
    ussdRequests: backends.limiter('ussd-requests', limits.ussdRequestsPerMinute, 60),
    stkPushes: backends.limiter('stk-pushes', limits.stkPushesPerHour, 3600),
  };
}
