import { RateLimiterMemory, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';

export type LimitDecision = { allowed: true } | { allowed: false; retryAfterMs: number };

/** A fixed-window count per key (a phone number), shared by every process through Redis or Postgres. */
export interface Limiter {
  /** Takes one point for `key`; refused once the key has used its points in the current window. */
  consume(key: string): Promise<LimitDecision>;
  /** Gives back the point a request took when that request ended up changing nothing. */
  refund(key: string): Promise<void>;
}

/**
 * rate-limiter-flexible does the counting. If its store (Redis or Postgres) fails, the library's
 * insurance limiter counts in this process's memory instead, so an outage neither blocks every
 * phone nor lifts the limits.
 */
export function memoryInsurance(points: number, durationSeconds: number): RateLimiterMemory {
  return new RateLimiterMemory({ points, duration: durationSeconds });
}

export function wrapLimiter(rl: RateLimiterAbstract): Limiter {
  return {
    async consume(key) {
      try {
        await rl.consume(key, 1);
        return { allowed: true };
      } catch (rejection) {
        if (rejection instanceof RateLimiterRes) return { allowed: false, retryAfterMs: rejection.msBeforeNext };
        throw rejection;
      }
    },
    async refund(key) {
      await rl.reward(key, 1);
    },
  };
}
