import type { RequestHandler } from 'express';
import { secretMatches } from '../callback-guard';

/**
 * The ops token (or any of several, e.g. /metrics takes METRICS_TOKEN or the ops token), as `Authorization: Bearer <token>` (scripts, other services) or as the password of
 * HTTP Basic auth (a browser on the Bull Board page: it asks once and then sends it with every asset).
 * Compared in constant time: both sides are hashed first, so neither length nor content leaks.
 */
export function requireToken(token: string | string[], opts: { realm: string; browser?: boolean }): RequestHandler {
  const tokens = Array.isArray(token) ? token : [token];
  if (tokens.length === 0) throw new Error('requireToken needs at least one token');
  return (req, res, next) => {
    const given = presented(req.headers.authorization);
    // Every token is compared (no early exit), so the time does not say which one came close.
    const matches = given === null ? [] : tokens.map((t) => secretMatches(given, t));
    if (matches.includes(true)) return next();
    res.setHeader('WWW-Authenticate', opts.browser ? `Basic realm="${opts.realm}", charset="UTF-8"` : `Bearer realm="${opts.realm}"`);
    res.status(401).json({ error: 'unauthorized' });
  };
}

function presented(header: string | undefined): string | null {
  if (!header) return null;
  const [scheme, value] = header.split(' ', 2) as [string, string | undefined];
  if (!value) return null;
  if (/^bearer$/i.test(scheme)) return value.trim();
  if (/^basic$/i.test(scheme)) {
    const decoded = Buffer.from(value.trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon >= 0 ? decoded.slice(colon + 1) : null;
  }
  return null;
}
