import { VendorError } from '../lib/errors';

/** Daraja's error envelope; the gateway sometimes answers HTML or plain text instead. */
export interface DarajaEnvelope {
  requestId?: string;
  errorCode?: string;
  errorMessage?: string;
}

const RETRYABLE_CODES = new Set([
  '500.001.1001', // unable to lock subscriber / being processed (also "wrong credentials": bounded retries cover it)
  '500.003.02', // spike arrest, answered as HTTP 500 rather than 429
  '500.003.03', // quota
]);

/** The one place that turns a non-success Daraja answer into retry / permanent / invalid_token. */
export function classifyDarajaFailure(httpStatus: number, body: unknown): VendorError {
  const env = (typeof body === 'object' && body !== null ? body : {}) as DarajaEnvelope;
  const code = env.errorCode ?? `http_${httpStatus}`;
  const message = env.errorMessage ?? (typeof body === 'string' ? body.slice(0, 120) : 'no message');
  if (code === '404.001.03' || /invalid access token/i.test(message)) {
    return new VendorError('daraja', 'invalid_token', code, message, httpStatus);
  }
  if (httpStatus >= 300 && httpStatus < 400) {
    // A redirect (never followed: a payment request is not re-sent elsewhere). Whatever answered it may have
    // handed the request on first, as a gateway's error page may: maybe processed, like one (a push then waits for
    // its callback, a payout asks Transaction Status), unless it carries Daraja's own refusal.
    return new VendorError('daraja', 'retry', code, message, httpStatus, env.errorCode === undefined);
  }
  if (RETRYABLE_CODES.has(code) || httpStatus >= 500 || httpStatus === 429 || httpStatus === 408) {
    // Daraja's own error envelope is a refusal: nothing was done. A 5xx WITHOUT it is a gateway's page
    // (502/503/504 HTML or plain text): the gateway may have handed the request on before failing, so
    // Daraja may still act on it. For a push (no idempotency key) that means "maybe sent": never blindly again.
    const gatewayPage = httpStatus >= 500 && env.errorCode === undefined;
    return new VendorError('daraja', 'retry', code, message, httpStatus, gatewayPage);
  }
  return new VendorError('daraja', 'permanent', code, message, httpStatus);
}

/** Failures that happen before a single byte of the request can have left: nothing was delivered. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH', 'ERR_INVALID_URL', 'token_wait_timeout']);

/**
 * A request that got no answer. Only a failure to connect proves the request was never delivered;
 * a timeout, a reset or anything unrecognised may have come after Daraja received it (maybeProcessed).
 */
export function networkFailure(err: unknown): VendorError {
  const e = err as { code?: string; message?: string };
  const code = e.code ?? 'network';
  return new VendorError('daraja', 'retry', code, e.message ?? 'network error', undefined, !NOT_SENT_CODES.has(code));
}

/** The same failure, known not to have reached Daraja's API (e.g. it happened while fetching the token). */
export function notSent(err: VendorError): VendorError {
  return err.maybeProcessed ? new VendorError(err.vendor, err.kind, err.code, err.message.slice(`${err.vendor} ${err.code}: `.length), err.httpStatus, false) : err;
}

/**
 * Anything a Daraja call (or the work around it) threw, as a VendorError: the one rule for every caller.
 * The client's own VendorErrors pass through. Our own request checks (RangeError: a bad amount, a text
 * too long) are thrown before any request leaves: permanent, certainly not sent. Anything else may have
 * happened after the request left: retry, maybe processed (a push or payout is then never sent blindly).
 */
export function asDarajaError(err: unknown): VendorError {
  if (err instanceof VendorError) return err;
  if (err instanceof RangeError) return new VendorError('daraja', 'permanent', 'invalid_request', err.message, undefined, false);
  return new VendorError('daraja', 'retry', 'unexpected', (err as Error)?.message ?? String(err), undefined, true);
}

export function parseBody(raw: unknown): unknown {
  if (typeof raw !== 'string') return raw;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}
