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
  if (RETRYABLE_CODES.has(code) || httpStatus >= 500 || httpStatus === 429 || httpStatus === 408) {
    return new VendorError('daraja', 'retry', code, message, httpStatus);
  }
  return new VendorError('daraja', 'permanent', code, message, httpStatus);
}

export function networkFailure(err: unknown): VendorError {
  const e = err as { code?: string; message?: string };
  return new VendorError('daraja', 'retry', e.code ?? 'network', e.message ?? 'network error');
}

export function parseBody(raw: unknown): unknown {
  if (typeof raw !== 'string') return raw;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}
