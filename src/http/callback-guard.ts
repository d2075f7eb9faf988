import { createHash, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import express, { type RequestHandler, type Response } from 'express';
import { ipMatcher, type IpRange } from '../lib/ip';
import { holdsUnstorableText } from '../lib/storable-text';
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
  const matches = secretMatcher(o.expectedSecret);
  guards.push((req, res, next) => (matches(String(req.params.secret ?? '')) ? next() : res.status(404).json({ error: 'not_found' })));
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
  return secretMatcher(expected)(given);
}

/** `secretMatches` against one expected secret, its digest computed once (a route checks it on every request). */
export function secretMatcher(expected: string): (given: string) => boolean {
  // Hash both sides so the comparison takes the same time whatever the lengths.
  const b = createHash('sha256').update(expected).digest();
  return (given) => timingSafeEqual(createHash('sha256').update(given).digest(), b);
}

/** `/mpesa/callback/<secret>` -> `/mpesa/callback/***` (and `/ussd/<secret>` -> `/ussd/***`): the secret never reaches a log. */
export function maskSecretSegment(path: string): string {
  return path.replace(/\/[^/]*$/, '/***');
}

/** Daraja's callbacks are a few kB at most; anything larger is refused (413) before it is parsed. */
export const CALLBACK_BODY_LIMIT = 16 * 1024;

/**
 * The JSON parser of every callback route: at most CALLBACK_BODY_LIMIT, and nothing Postgres cannot store
 * (holdsUnstorableText: a NUL, half a surrogate pair, in any key or string): such a body would fail at every retry,
 * so it is refused at once (400, as a body that is not JSON) rather than answered 503.
 */
export const callbackJson: RequestHandler[] = [
  express.json({ limit: CALLBACK_BODY_LIMIT }),
  (req, _res, next) => {
    if (!holdsUnstorableText(req.body)) return next();
    next(Object.assign(new Error('a callback body Postgres cannot store (NUL or half a surrogate pair)'), { status: 400, type: 'entity.parse.failed' }));
  },
];

// body-parser's own test of the first character that is not JSON whitespace.
const FIRST_CHAR = /^[\x20\x09\x0a\x0d]*([^\x20\x09\x0a\x0d])/;

/**
 * `application/json`, alone or with `charset=utf-8`: the only media type a callback fast path reads itself. Only
 * HTTP's own whitespace (space, tab): JavaScript's \s also takes U+00A0, which express's parsers do not.
 */
const PLAIN_JSON = /^application\/json[ \t]*(?:;[ \t]*charset[ \t]*=[ \t]*(?:utf-8|"utf-8")[ \t]*)?$/i;

/**
 * Whether this request is one callbackJson reads as plain JSON (a subset of those: UTF-8, not compressed, of a
 * declared length within the limit). Only then may a route answered before express read the body itself
 * (stk-callback-fast-path.ts); any other request (chunked, gzip, another charset or type, too large) is express's,
 * which answers as it always did.
 */
export function isPlainCallbackJson(headers: http.IncomingHttpHeaders): boolean {
  const length = headers['content-length'];
  const encoding = headers['content-encoding'];
  return PLAIN_JSON.test(headers['content-type'] ?? '') && (encoding === undefined || encoding.toLowerCase() === 'identity') &&
    headers['transfer-encoding'] === undefined && length !== undefined && /^\d{1,5}$/.test(length) && Number(length) <= CALLBACK_BODY_LIMIT;
}

/**
 * A plain JSON body (isPlainCallbackJson) as callbackJson reads it: the same value, or `undefined` where callbackJson
 * fails the request with 400 `entity.parse.failed` (text Postgres cannot store, a body that is not an object or array, bad JSON).
 */
export function parsePlainCallbackJson(body: Buffer): unknown {
  let text = body.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // body-parser's decoder drops a byte order mark
  if (text.length === 0) return {}; // body-parser's special case for an empty body
  const first = FIRST_CHAR.exec(text)?.[1];
  if (first !== '{' && first !== '[') return undefined; // strict: only objects and arrays
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return holdsUnstorableText(value) ? undefined : value;
}
