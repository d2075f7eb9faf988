import pino, { Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs. Secrets never reach a log: the redaction below is the safety net, the
 * first line of defence is not passing them (phone numbers go through maskMsisdn before logging).
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
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
