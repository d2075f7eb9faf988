import axios from 'axios';
import type { Config } from '../../config';
import type { KeyValueStore } from '../../infra/kv-store';
import { classifyDarajaFailure, networkFailure, parseBody } from '../../vendors/daraja-errors';
import { DarajaTokenCache } from '../../vendors/daraja-token';

export interface C2bRegistrationAnswer {
  ok: boolean;
  httpStatus: number;
  /** Daraja's answer as it came (e.g. {"OriginatorCoversationID":"…","ResponseCode":"0","ResponseDescription":"Success"}). */
  body: unknown;
}

/**
 * Registers the C2B validation and confirmation URLs for the C2B shortcode with Daraja
 * (POST /mpesa/c2b/v2/registerurl, ResponseType Completed: if our validation URL cannot be reached,
 * M-Pesa completes the payment and the confirmation still brings it). Uses the SHARED Daraja token
 * (the same store as the service), since fetching a new token invalidates the one the service holds.
 * Called by `npm run mpesa:register-c2b`, never from a request.
 */
export async function registerC2bUrls(
  mpesa: Pick<Config['mpesa'], 'baseUrl' | 'consumerKey' | 'consumerSecret' | 'httpTimeoutMs'>,
  c2b: Pick<NonNullable<Config['c2b']>, 'shortcode' | 'validationUrl' | 'confirmationUrl'>,
  store: KeyValueStore,
  keyPrefix: string,
): Promise<C2bRegistrationAnswer> {
  // Redirects are answers here too, as in DarajaClient: never followed.
  const http = axios.create({ baseURL: mpesa.baseUrl, timeout: mpesa.httpTimeoutMs, transformResponse: [(raw) => raw], validateStatus: () => true, maxRedirects: 0 });
  const tokens = new DarajaTokenCache(store, http, mpesa, keyPrefix);
  const body = { ShortCode: c2b.shortcode, ResponseType: 'Completed', ConfirmationURL: c2b.confirmationUrl, ValidationURL: c2b.validationUrl };
  for (let attempt = 0; ; attempt++) {
    const token = await tokens.get();
    let res;
    try {
      res = await http.post('/mpesa/c2b/v2/registerurl', body, { headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' } });
    } catch (err) {
      throw networkFailure(err);
    }
    const parsed = parseBody(res.data);
    const responseCode = (parsed as { ResponseCode?: unknown } | null)?.ResponseCode;
    const ok = res.status >= 200 && res.status < 300 && String(responseCode) === '0';
    // An invalid token (another process replaced it meanwhile): refresh once and try again.
    if (!ok && attempt === 0 && classifyDarajaFailure(res.status, parsed).kind === 'invalid_token') {
      await tokens.invalidate(token);
      continue;
    }
    return { ok, httpStatus: res.status, body: parsed };
  }
}
