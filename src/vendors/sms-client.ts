import axios from 'axios';
import type { Config } from '../config';
import { VendorError } from '../lib/errors';
import { classifyEmptyAnswer, classifyRecipient, SmsNotSent } from './at-sms-status';

export interface SmsAccepted {
  messageId: string | null;
  statusCode: number;
  status: string;
  cost: string | null;
}

type AtSettings = Pick<Config['at'], 'username' | 'apiKey' | 'senderId' | 'apiUrl'>;

export interface SmsSender {
  /** Resolves when Africa's Talking accepted the message; rejects with a classified VendorError. */
  send(toE164: string, message: string): Promise<SmsAccepted>;
}

/**
 * Africa's Talking SMS through the official SDK, or, with AT_API_URL set, the same request (form
 * fields and apiKey header as the SDK sends them) to that host. Either way one mapping of the answer.
 */
export function createSmsSender(config: AtSettings): SmsSender {
  const post = config.apiUrl ? viaHttp(config) : viaSdk(config);
  return {
    async send(to, message) {
      let data: unknown;
      try {
        data = await post(to, message);
      } catch (err) {
        throw classifyAtError(err);
      }
      return mapRecipient(data);
    },
  };
}

function viaSdk(config: AtSettings) {
  // The SDK (~32 MB of RSS) is loaded on the first send: only the worker sends SMS, web processes never do.
  let sms: ReturnType<typeof import('africastalking')>['SMS'] | undefined;
  return (to: string, message: string) => {
    if (!sms) {
      const africastalking = require('africastalking') as typeof import('africastalking');
      sms = africastalking({ username: config.username, apiKey: config.apiKey }).SMS;
    }
    return sms.send({ to: [to], message, ...(config.senderId ? { from: config.senderId } : {}) }) as Promise<unknown>;
  };
}

function viaHttp(config: AtSettings) {
  return async (to: string, message: string) => {
    const form = new URLSearchParams({ username: config.username, to, message });
    if (config.senderId) form.set('from', config.senderId);
    form.set('bulkSMSMode', '1');
    const res = await axios.post(`${config.apiUrl}/version1/messaging`, form, {
      headers: { apikey: config.apiKey, Accept: 'application/json' },
      timeout: 15_000,
      validateStatus: () => true,
    });
    // As the SDK: only 201 counts as accepted.
    if (res.status !== 201) throw Object.assign(new Error(`HTTP ${res.status}`), { response: res });
    return res.data as unknown;
  };
}

/** The one recipient's entry, classified (at-sms-status.ts): sent, or a SmsNotSent saying why not. */
function mapRecipient(data: unknown): SmsAccepted {
  const recipient = (data as { SMSMessageData?: { Recipients?: Array<Record<string, unknown>>; Message?: string } })?.SMSMessageData
    ?.Recipients?.[0];
  if (!recipient) {
    const message = (data as { SMSMessageData?: { Message?: string } })?.SMSMessageData?.Message ?? '';
    throw classifyEmptyAnswer(String(message));
  }
  const code = Number(recipient.statusCode);
  const statusCode = recipient.statusCode === undefined || recipient.statusCode === null || !Number.isInteger(code) ? null : code;
  const status = String(recipient.status ?? '').slice(0, 100);
  const verdict = classifyRecipient(statusCode, status);
  if (verdict.kind !== 'sent') throw new SmsNotSent(verdict.kind, statusCode, status, verdict.kind === 'permanent' && verdict.accountProblem);
  return {
    messageId: typeof recipient.messageId === 'string' ? recipient.messageId : null,
    statusCode: statusCode ?? 0,
    status,
    cost: typeof recipient.cost === 'string' ? recipient.cost : null,
  };
}

function classifyAtError(err: unknown): VendorError {
  if (err instanceof VendorError) return err;
  const e = err as { response?: { status?: number; data?: unknown }; code?: string; message?: string; SMSMessageData?: unknown };
  // A refusal that still carries a recipient entry (409 DoNotDisturbRejection comes so, and the SDK
  // rejects any answer but 201 with its body): the entry decides.
  const answer = e?.SMSMessageData ? e : e?.response?.data;
  if ((answer as { SMSMessageData?: { Recipients?: unknown[] } } | undefined)?.SMSMessageData?.Recipients?.[0]) {
    try {
      mapRecipient(answer);
    } catch (refused) {
      if (refused instanceof VendorError) return refused;
    }
  }
  if (e?.SMSMessageData) {
    // The SDK rejects a 2xx that is not 201 with the body itself.
    return new VendorError('africastalking', 'retry', 'unexpected_2xx', 'answer was not 201 Created');
  }
  const status = e?.response?.status;
  if (status === undefined) {
    const validation = /must|required|invalid/i.test(e?.message ?? '') && !e?.code;
    return new VendorError('africastalking', validation ? 'permanent' : 'retry', e?.code ?? 'network', e?.message ?? 'network error');
  }
  // 401 is bad credentials: an operator must fix the key; keep retrying (bounded) so messages survive the fix.
  const body = typeof e.response?.data === 'string' ? e.response.data.slice(0, 120) : `HTTP ${status}`;
  return new VendorError('africastalking', status >= 400 && status < 500 && status !== 401 && status !== 429 ? 'permanent' : 'retry', `http_${status}`, body, status);
}
