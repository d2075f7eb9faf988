import { z } from 'zod';

/** Daraja's STK callback, validated strictly. Items may come without a Value (Balance). */
const itemSchema = z.object({ Name: z.string(), Value: z.union([z.string(), z.number()]).optional() });

export const stkCallbackSchema = z.object({
  Body: z.object({
    stkCallback: z.object({
      MerchantRequestID: z.string().min(1).max(100),
      CheckoutRequestID: z.string().min(1).max(100),
      // A number in callbacks, a string in Query answers: accept both, keep an integer.
      ResultCode: z.union([z.number().int(), z.string().regex(/^-?\d{1,9}$/).transform(Number)]),
      ResultDesc: z.string().max(500).default(''),
      CallbackMetadata: z.object({ Item: z.array(itemSchema).max(20) }).optional(),
    }),
  }),
});

export interface StkResult {
  merchantRequestId: string;
  checkoutRequestId: string;
  resultCode: number;
  resultDesc: string;
  /** Present on success only. */
  paid?: { amount: string | undefined; receipt: string | undefined; transactionDate: string | undefined; phone: string | undefined };
}

export function toStkResult(body: z.infer<typeof stkCallbackSchema>): StkResult {
  const cb = body.Body.stkCallback;
  const items = new Map((cb.CallbackMetadata?.Item ?? []).map((i) => [i.Name, i.Value === undefined ? undefined : String(i.Value)]));
  return {
    merchantRequestId: cb.MerchantRequestID,
    checkoutRequestId: cb.CheckoutRequestID,
    resultCode: cb.ResultCode,
    resultDesc: cb.ResultDesc,
    ...(cb.CallbackMetadata
      ? {
          paid: {
            amount: items.get('Amount'),
            receipt: items.get('MpesaReceiptNumber'),
            transactionDate: items.get('TransactionDate'),
            phone: items.get('PhoneNumber'),
          },
        }
      : {}),
  };
}
