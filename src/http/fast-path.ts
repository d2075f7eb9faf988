import type http from 'node:http';
import type { Metrics } from '../infra/metrics';
import { secretMatcher } from './callback-guard';

/**
 * What the routes answered before express share (ussd-fast-path.ts, stk-callback-fast-path.ts): which requests
 * they may take, their latency metric, and reading a body. A fast path takes only the plain case; everything else
 * goes to express, which answers it exactly as before.
 */

/**
 * `POST <prefix><secret>` and nothing else: no deeper path, no query string, the secret (percent-decoded, as
 * express decodes `:secret`) compared in constant time. Any other request is express's: its 404s, its
 * case-insensitive and trailing-slash matching, its 400 for a segment that does not decode, the other routes.
 */
export function secretRoute(prefix: string, secret: string): (req: http.IncomingMessage) => boolean {
  const matches = secretMatcher(secret);
  return (req) => {
    const url = req.url ?? '';
    if (req.method !== 'POST' || !url.startsWith(prefix) || url.indexOf('/', prefix.length) !== -1 || url.includes('?')) return false;
    const segment = decodeSegment(url.slice(prefix.length));
    return segment !== null && matches(segment);
  };
}

function decodeSegment(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/**
 * The client went away before its body was all sent (a reset, a dropped line, node's request timeout): nobody is
 * left to answer and it is no failure of the service, so nothing is logged, as express logs nothing for it.
 */
export function clientWentAway(req: http.IncomingMessage): boolean {
  return req.destroyed && !req.complete;
}

/** The latency series express's httpMetrics would record for the route pattern (never the secret itself). */
export function timeRequest(metrics: Metrics, route: string, res: http.ServerResponse): void {
  const start = process.hrtime.bigint();
  res.once('finish', () => {
    metrics.observe('http_request_duration_seconds', { route, method: 'POST', status: res.statusCode }, Number(process.hrtime.bigint() - start) / 1e9);
  });
}

/** The whole body, or null once it passes `limit` bytes (the rest is read and dropped, so the reply still goes out). */
export function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > limit) {
        refused = true;
        resolve(null);
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (!refused) resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
  });
}
