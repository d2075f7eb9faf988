import { parsePhoneNumberFromString } from 'libphonenumber-js/max';

/**
 * Phone numbers. Africa's Talking sends `+2547XXXXXXXX`; Daraja wants `2547XXXXXXXX` or `2541XXXXXXXX`.
 * libphonenumber-js (with full metadata) knows which Kenyan ranges are mobile, so we only add the
 * M-Pesa rule on top: a Kenyan mobile number in the 7xx or 1xx ranges.
 */
export type Msisdn = string & { readonly __brand: 'Msisdn' };

/**
 * Parsing with full metadata is the costliest step of a USSD screen, and a session sends the same
 * phoneNumber on every hop: remember the last few thousand answers (least recently used goes first).
 */
const PARSED_LIMIT = 5000;
const parsedPhones = new Map<string, Msisdn | null>();

export function toMpesaMsisdn(raw: string): Msisdn | null {
  const known = parsedPhones.get(raw);
  if (known !== undefined || parsedPhones.has(raw)) {
    parsedPhones.delete(raw);
    parsedPhones.set(raw, known ?? null);
    return known ?? null;
  }
  const msisdn = parseMpesaMsisdn(raw);
  if (parsedPhones.size >= PARSED_LIMIT) parsedPhones.delete(parsedPhones.keys().next().value!);
  parsedPhones.set(raw, msisdn);
  return msisdn;
}

function parseMpesaMsisdn(raw: string): Msisdn | null {
  const parsed = parsePhoneNumberFromString(raw.trim(), 'KE');
  if (!parsed || parsed.country !== 'KE' || !parsed.isValid()) return null;
  const national = parsed.nationalNumber;
  if (!/^[17]\d{8}$/.test(national)) return null;
  const type = parsed.getType();
  if (type !== undefined && type !== 'MOBILE' && type !== 'FIXED_LINE_OR_MOBILE') return null;
  return `254${national}` as Msisdn;
}

/** E.164 for Africa's Talking: 254712345678 -> +254712345678. */
export function toE164(msisdn: Msisdn): string {
  return `+${msisdn}`;
}

/** For logs: 254712345649 -> 2547******49. Never log a full number. */
export function maskMsisdn(value: string | null | undefined): string {
  if (!value) return '';
  const digits = value.replace(/\D/g, '');
  if (digits.length < 7) return '***';
  return `${digits.slice(0, 4)}${'*'.repeat(digits.length - 6)}${digits.slice(-2)}`;
}

/** A Kenyan mobile number written any of the usual ways: 2547…, +2547…, 07… (and 1… ranges). */
const KENYAN_MOBILE_IN_TEXT = /(?<!\d)(?:\+?254|0)[17]\d{8}(?!\d)/g;

/** Masks every phone number inside free text (an error message, a vendor's description). */
export function maskPhoneNumbersIn(text: string): string {
  return text.replace(KENYAN_MOBILE_IN_TEXT, (m) => maskMsisdn(m));
}
