import pino, { Logger } from 'pino';
import { maskMsisdn, maskPhoneNumbersIn } from './msisdn';

export type { Logger };

/**
 * Structured JSON logs. Secrets never reach a log: the redaction below is the safety net, the
 * first line of defence is not passing them (phone numbers go through maskMsisdn before logging).
 * A second net masks any phone number left in a logged string (a database error quoting a row, a
 * vendor's message), in the message and in every field.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: undefined,
      redact: {
        paths: [
          'password', '*.password', 'Password', '*.Password', 'pin', '*.pin', 'token', '*.token',
          'access_token', '*.access_token', 'authorization', '*.authorization', 'headers.authorization',
          'apiKey', '*.apiKey', 'apikey', '*.apikey', 'passkey', '*.passkey', 'consumerSecret', '*.consumerSecret',
          'text', '*.text', 'phoneNumber', '*.phoneNumber', 'PhoneNumber', '*.PhoneNumber',
          'Authorization', '*.Authorization', 'SecurityCredential', '*.SecurityCredential',
          'initiatorPassword', '*.initiatorPassword', 'callbackSecret', '*.callbackSecret',
        ],
        censor: '[redacted]',
      },
      formatters: { log: (fields) => maskPhones(fields) as Record<string, unknown> },
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((a) => (typeof a === 'string' ? maskPhoneNumbersIn(a) : a)) as Parameters<typeof method>);
        },
      },
    },
    destination,
  );
}

const MSISDN_NUMBER = /^254[17]\d{8}$/;

function maskPhones(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return maskPhoneNumbersIn(value);
  // Daraja sends PhoneNumber as a JSON number.
  if (typeof value === 'number') return MSISDN_NUMBER.test(String(value)) ? maskMsisdn(String(value)) : value;
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return { type: value.name, message: maskPhoneNumbersIn(value.message), stack: maskPhoneNumbersIn(value.stack ?? '') };
  if (Array.isArray(value)) return value.map((v) => maskPhones(v, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskPhones(v, depth + 1)]));
}
