import { randomInt } from 'node:crypto';
import type { Response } from 'express';
import { darajaTimestamp } from '../../vendors/daraja-time';

/**
 * Identifiers and envelopes shaped like Safaricom's, so that whatever parses real Daraja answers parses
 * ours unchanged. Ids are random rather than counters: the service stores them under unique
 * constraints, and an emulator restarted against the same database must not reissue one.
 */

/** Daraja's HTTP error envelope, e.g. `{"requestId":"22759-3566117-1","errorCode":"500.001.1001",...}`. */
export function sendEnvelope(res: Response, httpStatus: number, errorCode: string, errorMessage: string): void {
  res.status(httpStatus).json({ requestId: dashedId(), errorCode, errorMessage });
}

/** Daraja blames one field at a time, always with HTTP 400 and 400.002.02. */
export function sendInvalidField(res: Response, field: string): void {
  sendEnvelope(res, 400, '400.002.02', `Bad Request - Invalid ${field}`);
}

/** The shape of requestId and MerchantRequestID: `29115-34620561-1`. */
export function dashedId(): string {
  return `${randomInt(10_000, 100_000)}-${randomInt(10_000_000, 100_000_000)}-1`;
}

/** `ws_CO_` + DDMMYYYYHHmmss (EAT) + random digits, like `ws_CO_191220191020363925`. */
export function checkoutRequestId(now: Date): string {
  const ts = darajaTimestamp(now); // YYYYMMDDHHmmss
  const ddmmyyyy = `${ts.slice(6, 8)}${ts.slice(4, 6)}${ts.slice(0, 4)}`;
  return `ws_CO_${ddmmyyyy}${ts.slice(8)}${String(randomInt(0, 1_000_000)).padStart(6, '0')}`;
}

const RECEIPT_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/**
 * M-Pesa receipts are 10 uppercase alphanumerics whose first three characters encode the EAT date
 * (year letter with 2019 = N, month letter A-L, day 1-9 then A-V), e.g. NLJ7RT61SV on 19 Dec 2019.
 * Mimicking that keeps receipts plausible in SMS texts; the other seven characters are random.
 */
export function receiptNumber(now: Date): string {
  const ts = darajaTimestamp(now);
  const year = Number(ts.slice(0, 4));
  const month = Number(ts.slice(4, 6));
  const day = Number(ts.slice(6, 8));
  const yearChar = LETTERS[(((year - 2006) % 26) + 26) % 26]!;
  const monthChar = LETTERS[month - 1]!;
  const dayChar = day < 10 ? String(day) : LETTERS[day - 10]!;
  let rest = '';
  for (let i = 0; i < 7; i++) rest += RECEIPT_ALPHABET[randomInt(0, RECEIPT_ALPHABET.length)]!;
  return `${yearChar}${monthChar}${dayChar}${rest}`;
}

/** Draws from `make` until it yields a value not in `used`, then remembers it. */
export function uniqueFrom(used: Set<string>, make: () => string): string {
  for (;;) {
    const value = make();
    if (!used.has(value)) {
      used.add(value);
      return value;
    }
  }
}

/** Parses YYYYMMDDHHmmss as East Africa Time; null unless it is a real calendar instant. */
export function parseEatTimestamp(value: string): Date | null {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(value);
  if (!m) return null;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h - 3, mi, s));
  // Date.UTC rolls 20240231 over to March; the round trip rejects such dates.
  return darajaTimestamp(date) === value ? date : null;
}

/** 0712345678, +254712345678, 254712345678 and 712345678 all become 254712345678; null otherwise. */
export function normaliseMsisdn(raw: string): string | null {
  const digits = raw.replace(/[\s-]/g, '').replace(/^\+/, '');
  const national = /^0[17]\d{8}$/.test(digits) ? digits.slice(1) : /^[17]\d{8}$/.test(digits) ? digits : null;
  const msisdn = national ? `254${national}` : digits;
  return /^254[17]\d{8}$/.test(msisdn) ? msisdn : null;
}

/** B2C and Transaction Status ConversationIDs: `AG_` + EAT date + `_0000` + 16 hex, like `AG_20191219_00004e48cf7e3533f581`. */
export function conversationId(now: Date): string {
  let hex = '';
  for (let i = 0; i < 16; i++) hex += '0123456789abcdef'[randomInt(0, 16)]!;
  return `AG_${darajaTimestamp(now).slice(0, 8)}_0000${hex}`;
}

/** B2C's TransactionCompletedDateTime: `DD.MM.YYYY HH:mm:ss` in East Africa Time, e.g. `26.11.2026 10:48:52`. */
export function darajaDateTime(now: Date): string {
  const ts = darajaTimestamp(now);
  return `${ts.slice(6, 8)}.${ts.slice(4, 6)}.${ts.slice(0, 4)} ${ts.slice(8, 10)}:${ts.slice(10, 12)}:${ts.slice(12, 14)}`;
}
