import { z } from 'zod';
import { darajaPassword } from '../../vendors/daraja-time';
import { parseEatTimestamp } from './wire';

/**
 * STK Push and STK Query bodies, validated the way Daraja does: the first wrong field is named in
 * "Bad Request - Invalid <Field>". Field checks run in the documented field order, so the field
 * blamed is predictable. Numbers may come as JSON numbers or digit strings (Daraja takes both).
 */

const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;
export const MAX_STK_AMOUNT_KES = 250_000;

export const digitString = z.union([z.string(), z.number().int().nonnegative().transform(String)]);
export const shortcode = digitString.pipe(z.string().regex(/^\d{5,7}$/));
export const msisdn = digitString.pipe(z.string().regex(/^254[17]\d{8}$/));
// Whole KES only: 10.5 and "10.5" are refused, never rounded.
const wholeKes = z
  .union([z.number().int(), z.string().regex(/^\d{1,9}$/).transform(Number)])
  .pipe(z.number().int().min(1).max(MAX_STK_AMOUNT_KES));
export const httpUrl = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
});

/** Field rules that need the emulator's configuration and clock. */
function envelopeFields(shortcodeExpected: string, now: () => Date) {
  return {
    BusinessShortCode: shortcode.refine((v) => v === shortcodeExpected),
    Password: z.string().min(1),
    Timestamp: z.string().refine((value) => {
      const at = parseEatTimestamp(value);
      return at !== null && Math.abs(at.getTime() - now().getTime()) <= MAX_CLOCK_SKEW_MS;
    }),
  };
}

export function stkPushSchema(shortcodeExpected: string, now: () => Date) {
  return z
    .object({
      ...envelopeFields(shortcodeExpected, now),
      TransactionType: z.enum(['CustomerPayBillOnline', 'CustomerBuyGoodsOnline']),
      Amount: wholeKes,
      PartyA: msisdn,
      PartyB: shortcode,
      PhoneNumber: msisdn,
      CallBackURL: httpUrl,
      AccountReference: z.string().min(1).max(12),
      TransactionDesc: z.string().min(1).max(13),
    })
    // The prompt goes to PhoneNumber and the debit to PartyA; we only emulate paying from one's own phone.
    .refine((b) => b.PartyA === b.PhoneNumber, { path: ['PartyA'] });
}

export function stkQuerySchema(shortcodeExpected: string, now: () => Date) {
  return z.object({ ...envelopeFields(shortcodeExpected, now), CheckoutRequestID: z.string().min(1).max(100) });
}

export type StkPushBody = z.infer<ReturnType<typeof stkPushSchema>>;
export type StkQueryBody = z.infer<ReturnType<typeof stkQuerySchema>>;

/** The field Daraja would name for a failed parse; the whole payload when it is not an object. */
export function blamedField(error: z.ZodError): string {
  const field = error.issues[0]?.path[0];
  return typeof field === 'string' ? field : 'Request Payload';
}

/**
 * Password = base64(shortcode + passkey + Timestamp). Checked after the fields, because a wrong one is not
 * a field error on Daraja: it answers HTTP 500 500.001.1001 "Wrong credentials" (REFERENCE.md:
 * "a mismatch reads as wrong credentials"), which is also what a Timestamp differing from the one
 * inside the Password produces.
 */
export function passwordMatches(body: { BusinessShortCode: string; Password: string; Timestamp: string }, passkey: string): boolean {
  return body.Password === darajaPassword(body.BusinessShortCode, passkey, body.Timestamp);
}
