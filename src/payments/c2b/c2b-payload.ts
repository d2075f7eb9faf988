import { z } from 'zod';
import { toMpesaMsisdn, type Msisdn } from '../../lib/msisdn';
import { parseKesToCents } from '../../lib/units';

/**
 * What Daraja posts to the C2B validation and confirmation URLs (the same fields for both), e.g.
 * {"TransactionType":"Pay Bill","TransID":"SL41AB2CDE","TransTime":"20261204101530","TransAmount":"100.00",
 *  "BusinessShortCode":"174379","BillRefNumber":"0712345678","InvoiceNumber":"","OrgAccountBalance":"",
 *  "ThirdPartyTransID":"","MSISDN":"2547 ***** 126","FirstName":"JANE","MiddleName":"","LastName":""}
 * v2 masks (or hashes) the MSISDN, so nothing here relies on it: the account number names the wallet.
 * Only what we need is required; the rest is kept in the raw payload as it came.
 */
const text = (max: number) => z.union([z.string(), z.number()]).transform(String).pipe(z.string().max(max));
// Daraja sends null (or nothing) for fields it has no value for: a payment is never refused for that.
const optionalText = (max: number) => text(max).nullish().transform((v) => v ?? undefined);

/** M-Pesa transaction ids are 10 uppercase alphanumerics; a little slack for other formats. */
export const TRANS_ID = /^[A-Z0-9]{6,20}$/;

export const c2bPayloadSchema = z.object({
  TransactionType: optionalText(50),
  TransID: z.string().regex(TRANS_ID, 'not an M-Pesa transaction id'),
  TransTime: optionalText(20),
  // A decimal such as "100.00"; a number is accepted too, but never used as a float (parsed as text).
  TransAmount: text(20).pipe(z.string().regex(/^(?!0+(\.0+)?$)\d{1,9}(\.\d{1,2})?$/, 'not a positive amount')),
  BusinessShortCode: text(20),
  // The account number the payer typed: may be anything (that is what validation is for), or nothing.
  BillRefNumber: optionalText(100).transform((v) => v ?? ''),
  MSISDN: optionalText(100),
  FirstName: optionalText(100),
});

export type C2bPayload = z.output<typeof c2bPayloadSchema>;

/** The wallet an account number names: a Kenyan mobile number written any usual way, spaces allowed. */
export function walletMsisdn(billRefNumber: string): Msisdn | null {
  const compact = billRefNumber.replace(/[\s-]/g, '');
  if (!/^\+?\d{9,12}$/.test(compact)) return null;
  return toMpesaMsisdn(compact);
}

/** TransAmount in integer cents ("100.00" -> 10000); never through a float. */
export function amountCents(payload: C2bPayload): number {
  return parseKesToCents(payload.TransAmount)!;
}

export type AmountProblem = 'not_whole' | 'below_minimum' | 'above_maximum';

/** A Paybill payment buys gold like a USSD buy: whole KES within BUY_MIN_KES..BUY_MAX_KES. */
export function amountProblem(cents: number, limits: { minKes: number; maxKes: number }): AmountProblem | null {
  if (cents % 100 !== 0) return 'not_whole';
  if (cents < limits.minKes * 100) return 'below_minimum';
  if (cents > limits.maxKes * 100) return 'above_maximum';
  return null;
}

/** Daraja's validation answers: accept, or reject with its result codes (the payer's M-Pesa says why). */
export const C2B_ACCEPT = { ResultCode: '0', ResultDesc: 'Accepted' } as const;
export const C2B_REJECT_ACCOUNT = { ResultCode: 'C2B00012', ResultDesc: 'Rejected' } as const;
export const C2B_REJECT_AMOUNT = { ResultCode: 'C2B00013', ResultDesc: 'Rejected' } as const;
export const C2B_REJECT_SHORTCODE = { ResultCode: 'C2B00015', ResultDesc: 'Rejected' } as const;

/**
 * The validation decision, pure: nothing is recorded (validation moves no money; the confirmation
 * does). Safaricom calls it only when external validation is enabled on the shortcode. A payment to
 * another shortcode is not ours to accept (C2B00015).
 */
export function validateC2b(payload: C2bPayload, limits: { minKes: number; maxKes: number }, shortcode: string) {
  if (payload.BusinessShortCode !== shortcode) return C2B_REJECT_SHORTCODE;
  if (!walletMsisdn(payload.BillRefNumber)) return C2B_REJECT_ACCOUNT;
  const cents = amountCents(payload);
  if (amountProblem(cents, limits)) return C2B_REJECT_AMOUNT;
  return C2B_ACCEPT;
}
