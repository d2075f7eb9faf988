/**
 * Phone numbers. Africa's Talking sends `+2547XXXXXXXX`; Daraja wants `2547XXXXXXXX` or `2541XXXXXXXX`.
 * Which Kenyan numbers are mobile is libphonenumber-js's (full metadata) to say: for a number in the usual forms its
 * ranges are written out below and held to the library by a test; we only add the M-Pesa rule on top, a Kenyan
 * mobile number in the 7xx or 1xx ranges.
 */
export type Msisdn = string & { readonly __brand: 'Msisdn' };

/**
 * The Kenyan mobile ranges of libphonenumber-js's full metadata, for a number already written the usual way: the first
 * three digits of the 9-digit national number decide (test/unit/msisdn.test.ts holds every 4-digit prefix, in every
 * usual form, against the library, so an upgrade that moves or splits a range fails there). Every USSD screen asks, for
 * a different phone each session: parsing with the library cost ~20 µs, and a cache of its answers kept one entry per
 * phone alive long enough to be promoted to the old generation, which is what grows the web process's heap.
 */
const KE_MOBILE_NATIONAL = /^(?:1(?:0[0-8]|1\d|2[014]|3[05-9]|4[0-6]|8\d)|7\d\d)\d{6}$/;
/** +254…, 254… or 0… followed by the 9-digit national number: how Africa's Talking and Daraja write them. */
const USUAL_FORM = /^(?:\+?254|0)(\d{9})$/;

export function toMpesaMsisdn(raw: string): Msisdn | null {
  const usual = USUAL_FORM.exec(raw);
  if (usual) return KE_MOBILE_NATIONAL.test(usual[1]!) ? (`254${usual[1]}` as Msisdn) : null;
  return parseWithLibrary(raw);
}

/**
 * Anything written another way (spaces, dashes, brackets, a C2B number without its prefix): the library decides.
 * Loaded on first use, as the web process rarely needs it: that first request pays about 30 ms, once per process, and
 * the process about 10 MB of RSS (its full metadata).
 */
export function parseWithLibrary(raw: string): Msisdn | null {
  const { parsePhoneNumberFromString } = require('libphonenumber-js/max') as typeof import('libphonenumber-js/max');
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
