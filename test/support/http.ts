import { AT_SECRET, CALLBACK_PATH, SERVICE_CODE } from './harness';

let sessionCounter = 0;
export const newSessionId = () => `ATUid_${Date.now()}_${++sessionCounter}`;

/**
 * One Africa's Talking USSD request, form-encoded as AT sends it, to /ussd/<secret>: the secret is
 * baseEnv's AT_CALLBACK_SECRET unless `atSecret` says otherwise (a sandbox's own, from its banner).
 */
export async function ussd(url: string, p: { sessionId: string; text: string; phoneNumber?: string; serviceCode?: string; atSecret?: string }) {
  const res = await fetch(`${url}/ussd/${p.atSecret ?? AT_SECRET}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      sessionId: p.sessionId,
      serviceCode: p.serviceCode ?? SERVICE_CODE,
      phoneNumber: p.phoneNumber ?? '+254712345678',
      networkCode: '63902',
      text: p.text,
    }),
  });
  return { status: res.status, contentType: res.headers.get('content-type'), text: await res.text() };
}

/** Walks a whole USSD dialogue the way AT sends it: text grows by `*input` at each step. */
export async function dial(url: string, inputs: string[], opts: { phoneNumber?: string; sessionId?: string; atSecret?: string } = {}) {
  const sessionId = opts.sessionId ?? newSessionId();
  const screens: string[] = [];
  const typed: string[] = [];
  const extra = { ...(opts.phoneNumber ? { phoneNumber: opts.phoneNumber } : {}), ...(opts.atSecret ? { atSecret: opts.atSecret } : {}) };
  screens.push((await ussd(url, { sessionId, text: '', ...extra })).text);
  for (const input of inputs) {
    typed.push(input);
    screens.push((await ussd(url, { sessionId, text: typed.join('*'), ...extra })).text);
  }
  return { sessionId, screens, last: screens[screens.length - 1]! };
}

export async function postCallback(url: string, body: unknown, path = CALLBACK_PATH) {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}
