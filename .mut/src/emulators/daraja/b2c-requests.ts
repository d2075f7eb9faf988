import { z } from 'zod';
import { digitString, httpUrl, msisdn, shortcode } from './stk-requests';

/**
 * B2C and Transaction Status bodies, checked in the documented field order so the field Daraja blames
 * ("Bad Request - Invalid <Field>") is predictable. Initiator name and SecurityCredential are only
 * checked for shape here: a wrong one is not a field error on Daraja but an asynchronous Result with
 * ResultCode 2001 (see InitiatorCheck).
 */

export const B2C_MIN_KES = 10;
export const B2C_MAX_KES = 250_000;

const base64 = z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/).refine((v) => v.length % 4 === 0);
// Whole KES only: 10.5 and "10.5" are refused, never rounded.
const wholeKes = z
  .union([z.number().int(), z.string().regex(/^\d{1,9}$/).transform(Number)])
  .pipe(z.number().int().min(B2C_MIN_KES).max(B2C_MAX_KES));
const optionalText = z.string().max(100).optional();

/** PartyA must be the configured B2C shortcode when the emulator has one, any shortcode otherwise. */
function partyA(expected: string | undefined) {
  return shortcode.refine((v) => expected === undefined || v === expected);
}

export function b2cPaymentSchema(b2cShortcode: string | undefined) {
  return z.object({
    OriginatorConversationID: z.string().min(1).max(100),
    InitiatorName: z.string().min(1).max(100),
    SecurityCredential: base64,
    CommandID: z.enum(['BusinessPayment', 'SalaryPayment', 'PromotionPayment']),
    Amount: wholeKes,
    PartyA: partyA(b2cShortcode),
    PartyB: msisdn,
    Remarks: z.string().min(2).max(100),
    QueueTimeOutURL: httpUrl,
    ResultURL: httpUrl,
    Occassion: optionalText, // sic
  });
}

export function transactionStatusSchema(b2cShortcode: string | undefined) {
  return z
    .object({
      Initiator: z.string().min(1).max(100),
      SecurityCredential: base64,
      CommandID: z.literal('TransactionStatusQuery'),
      TransactionID: optionalText,
      OriginalConversationID: optionalText,
      PartyA: partyA(b2cShortcode),
      IdentifierType: digitString.pipe(z.enum(['1', '2', '4'])),
      ResultURL: httpUrl,
      QueueTimeOutURL: httpUrl,
      Remarks: z.string().min(2).max(100),
      Occasion: optionalText,
    })
    // Something must name the transaction: its receipt or the OriginatorConversationID it was sent with.
    .refine((b) => Boolean(b.TransactionID?.trim() || b.OriginalConversationID?.trim()), { path: ['TransactionID'] });
}

export type B2cPaymentBody = z.infer<ReturnType<typeof b2cPaymentSchema>>;
export type TransactionStatusBody = z.infer<ReturnType<typeof transactionStatusSchema>>;
