import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type RequestHandler, type Response } from 'express';
import { ipMatcher, type IpRange } from '../lib/ip';
import type { Logger } from '../lib/logger';
import type { Services } from '../services';

/**
 * What every vendor callback route (Daraja's and Africa's Talking's) puts in front of its body parser.
 * Neither vendor signs its callbacks:
 *  1. the optional IP allowlist: other addresses get 403, logged without the body or the secret;
 *  2. the secret last path segment, compared in constant time: a wrong one gets the same 404 as an
 *     unknown route.
 * The route's `:secret` parameter holds the segment. Nothing is read from the body before both pass.
 */
export function secretPathGuard(
  log: Logger,
  o: { allowlist: IpRange[]; allowlistVariable: string; expectedSecret: string; forbidden: (res: Response) => void },
): RequestHandler[] {
  const guards: RequestHandler[] = [];
  if (o.allowlist.length > 0) {
    const allowed = ipMatcher(o.allowlist);
    guards.push((req, res, next) => {
      if (allowed(req.ip)) return next();
      log.warn({ ip: req.ip, path: maskSecretSegment(req.path), forwardedFor: req.headers['x-forwarded-for'] !== undefined }, `callback refused: address not in ${o.allowlistVariable}`);
      o.forbidden(res);
    });
  }
  guards.push((req, res, next) => (secretMatches(String(req.params.secret ?? ''), o.expectedSecret) ? next() : res.status(404).json({ error: 'not_found' })));
  return guards;
}

/** Daraja's callbacks: MPESA_CALLBACK_IP_ALLOWLIST, and the secret of the route's own URL. */
export function callbackGuard(s: Pick<Services, 'config' | 'log'>, expectedSecret: string): RequestHandler[] {
  return secretPathGuard(s.log, {
    allowlist: s.config.http.callbackIpAllowlist,
    allowlistVariable: 'MPESA_CALLBACK_IP_ALLOWLIST',
    expectedSecret,
    forbidden: (res) => res.status(403).json({ ResultCode: 1, ResultDesc: 'Forbidden' }),
  });
}

/**
 * Africa's Talking's three callbacks (USSD, USSD events, SMS delivery reports): AT_CALLBACK_IP_ALLOWLIST
 * and AT_CALLBACK_SECRET. Without a secret (never after start-up: config requires it outside the
 * emulator, and the sandbox makes one) every request is a 404.
 */
export function atCallbackGuard(s: Pick<Services, 'config' | 'log'>): RequestHandler[] {
  const { callbackSecret, callbackIpAllowlist } = s.config.at;
  if (!callbackSecret) return [(_req, res) => void res.status(404).json({ error: 'not_found' })];
  return secretPathGuard(s.log, {
    allowlist: callbackIpAllowlist,
    allowlistVariable: 'AT_CALLBACK_IP_ALLOWLIST',
    expectedSecret: callbackSecret,
    forbidden: (res) => res.status(403).type('text/plain').send('Forbidden'),
  });
}

export function secretMatches(given: string, expected: string): boolean {
  // Hash both sides so the comparison takes the same time whatever the lengths.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** `/mpesa/callback/<secret>` -> `/mpesa/callback/***` (and `/ussd/<secret>` -> `/ussd/***`): the secret never reaches a log. */
export function maskSecretSegment(path: string): string {
  return path.replace(/\/[^/]*$/, '/***');
}

/** Daraja's callbacks are a few kB at most; anything larger is refused (413) before it is parsed. */
export const CALLBACK_BODY_LIMIT = '16kb';

const ESCAPED_NUL = /\\u0000/i;

/**
 * The JSON parser of every callback route: at most CALLBACK_BODY_LIMIT, and no NUL character (`\u0000`)
 * anywhere, which Postgres cannot store in text or jsonb: such a body would fail at every retry, so it
 * is refused at once (400) rather than answered 503.
 */
export const callbackJson: RequestHandler = express.json({
  limit: CALLBACK_BODY_LIMIT,
  verify: (_req, _res, buf) => {
    if (ESCAPED_NUL.test(buf.toString('utf8'))) throw Object.assign(new Error('NUL character in a callback body'), { status: 400, type: 'entity.parse.failed' });
  },
});
