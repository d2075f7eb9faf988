/** The phone simulator CLI's arguments, and what a typed line means (a service code dials). */

export const USAGE = 'usage: npm run phone -- [2547XXXXXXXX] [--url http://127.0.0.1:$PORT] [--secret <AT_CALLBACK_SECRET>]';

/** Where `npm start` listens: PORT, as the service reads it, else 3000. */
export const defaultUrl = (port: string | undefined) => `http://127.0.0.1:${port?.trim() || '3000'}`;

export const DEFAULT_PHONE = '254712345678';

export interface Args {
  phone: string;
  url: string;
  /** AT_CALLBACK_SECRET; null: learnt from /simulator/config. */
  secret: string | null;
}

export function parseArgs(argv: string[], env: { AT_CALLBACK_SECRET?: string | undefined; PORT?: string | undefined }): Args | string {
  let phone: string | undefined;
  let url = defaultUrl(env.PORT);
  let secret = env.AT_CALLBACK_SECRET?.trim() || null;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--secret') {
      const value = argv[++i];
      if (!value) return '--secret needs a value';
      secret = value;
    } else if (arg.startsWith('--secret=')) {
      secret = arg.slice('--secret='.length);
    } else if (arg === '--url') {
      const value = argv[++i];
      if (!value) return '--url needs a value';
      url = value;
    } else if (arg.startsWith('--url=')) {
      url = arg.slice('--url='.length);
    } else if (arg === '-h' || arg === '--help') {
      return '';
    } else if (arg.startsWith('-')) {
      return `unknown option ${arg}`;
    } else if (phone === undefined) {
      phone = arg;
    } else {
      return `unexpected argument ${arg}`;
    }
  }
  const msisdn = normalisePhone(phone ?? DEFAULT_PHONE);
  if (!msisdn) return `not a Kenyan mobile number: ${phone}`;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return `--url must be http(s): ${url}`;
  } catch {
    return `not a URL: ${url}`;
  }
  if (secret !== null && !/^[A-Za-z0-9_-]+$/.test(secret)) return 'the secret has only A-Z a-z 0-9 _ - characters';
  return { phone: msisdn, url: url.replace(/\/+$/, ''), secret };
}

/**
 * What a line typed while no session is open means: Enter dials the service's code, and so does typing
 * a USSD code (`*384*1#`), as one would on a phone (another code is dialled too: the service then
 * says it is not its code). Anything else is not a dial.
 */
export function dialCodeOf(line: string, serviceCode: string | null): { dial: string | null } | null {
  const typed = line.replace(/\s+/g, '');
  if (typed === '') return { dial: serviceCode };
  return /^\*[\d*]+#$/.test(typed) ? { dial: typed } : null;
}

/** 0712…, 254712…, +254712… -> 254712…, as the emulators key their phones. */
export function normalisePhone(raw: string): string | null {
  let digits = raw.replace(/\D/g, '');
  if (/^0[17]\d{8}$/.test(digits)) digits = `254${digits.slice(1)}`;
  else if (/^[17]\d{8}$/.test(digits)) digits = `254${digits}`;
  return /^254[17]\d{8}$/.test(digits) ? digits : null;
}
