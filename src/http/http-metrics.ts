import type { RequestHandler } from 'express';
import type { Metrics } from '../infra/metrics';
import { QUEUES_PATH } from './routes/ops-queues';

/**
 * Latency of every request, labelled by the route PATTERN that answered it (`/mpesa/callback/:secret`,
 * never the secret itself), so the number of series stays fixed whatever clients send.
 */
export function httpMetrics(metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const start = process.hrtime.bigint();
    res.once('finish', () => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      metrics.observe('http_request_duration_seconds', { route: routeOf(req), method: req.method, status: res.statusCode }, seconds);
    });
    next();
  };
}

function routeOf(req: Parameters<RequestHandler>[0]): string {
  // Bull Board's own routes and static files: one series for the whole dashboard.
  if (req.originalUrl.startsWith(QUEUES_PATH)) return QUEUES_PATH;
  const pattern = (req.route as { path?: unknown } | undefined)?.path;
  return typeof pattern === 'string' ? `${req.baseUrl}${pattern}` : 'unmatched';
}
