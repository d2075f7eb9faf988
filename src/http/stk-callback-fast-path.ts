import type http from 'node:http';
import type { Services } from '../services';
import { CALLBACK_BODY_LIMIT, isPlainCallbackJson, parsePlainCallbackJson } from './callback-guard';
import { clientWentAway, readBody, secretRoute, timeRequest } from './fast-path';
import { answerStkCallback, stkCallbackPath } from './routes/mpesa-callbacks';

/**
 * Daraja's STK callbacks answered before express, as POST /ussd is (ussd-fast-path.ts): under load the service
 * settles well over a thousand a second, and express's router, middleware chain and body parser were about a
 * seventh of the web process's CPU for each. Only the plain case is taken: POST <callback path>/<secret> with the
 * right secret (constant time), no IP allowlist, and a body callbackJson would read as plain UTF-8 JSON of a
 * declared length within the limit. Everything else (a wrong secret, an allowlist to check, chunked or compressed
 * bodies, another charset or type, any other path) goes to express before a byte of the body is read, and express
 * answers it exactly as before. The answers are express's too: answerStkCallback, and 400 `entity.parse.failed`
 * where callbackJson would refuse the body.
 */
export function stkCallbackFastPath(s: Services, express: http.RequestListener): http.RequestListener {
  const { callbackSecret } = s.config.mpesa;
  if (!callbackSecret || s.config.http.callbackIpAllowlist.length > 0) return express;
  const path = stkCallbackPath(s);
  const route = `${path}:secret`; // the label express's httpMetrics gives the route
  const ours = secretRoute(path, callbackSecret);
  return (req, res) => {
    if (!ours(req) || !isPlainCallbackJson(req.headers)) {
      express(req, res);
      return;
    }
    timeRequest(s.metrics, route, res);
    readBody(req, CALLBACK_BODY_LIMIT).then((body) => {
      // Cannot happen (node holds a body to its declared length, checked above); express's answer if it did.
      if (body === null) return { status: 413, body: { error: 'entity.too.large' } };
      const payload = parsePlainCallbackJson(body);
      return payload === undefined ? { status: 400, body: { error: 'entity.parse.failed' } } : answerStkCallback(s, payload);
    }).then(({ status, body }) => send(res, status, body), (err: unknown) => {
      if (clientWentAway(req)) return void res.destroy();
      // What express's last error handler answers for a failure that is not the client's.
      s.log.error({ err: (err as Error).message }, 'unhandled error');
      send(res, 500, { error: 'internal_error' });
    });
  };
}

function send(res: http.ServerResponse, status: number, body: object): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}
