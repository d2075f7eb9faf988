import { z } from 'zod';

/** Result codes that are words, not numbers (`SFC_IC0003`): a letter first, then letters, digits, `_` or `.`. */
const ALPHANUMERIC_RESULT_CODE = /^[A-Za-z][A-Za-z0-9_.]{0,39}$/;

/** Daraja's STK callback, validated strictly. Items may come without a Value (Balance). */
const itemSchema = z.object({ Name: z.string(), Value: z.union([z.string(), z.number()]).optional() });

export const stkCallbackSchema = z.object({
  Body: z.object({
    stkCallback: z.object({
      MerchantRequestID: z.string().min(1).max(100),
      CheckoutRequestID: z.string().min(1).max(100),
      // A number in callbacks, a string in Query answers: accept both, keep an integer. Now and then
      // an alphanumeric code ("SFC_IC0003" from a misconfigured till): a real, final failure, kept
      // as NON_NUMERIC_RESULT_CODE with the code itself put in front of ResultDesc (see toStkResult).
      ResultCode: z.union([z.number().int(), z.string().regex(/^-?\d{1,9}$/).transform(Number), z.string().regex(ALPHANUMERIC_RESULT_CODE)]),
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
    ...(typeof cb.ResultCode === 'number'
      ? { resultCode: cb.ResultCode, resultDesc: cb.ResultDesc }
      : { resultCode: NON_NUMERIC_RESULT_CODE, resultDesc: `${cb.ResultCode}: ${cb.ResultDesc}`.slice(0, 500) }),
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

// ---------------------------------------------------------------- B2C, Transaction Status, queue timeout

/**
 * Result codes of the asynchronous APIs: a number, a digit string, or now and then an alphanumeric code
 * (`SFC_IC0003`, "the operator does not exist", is reported for B2C). Rejecting the alphanumeric ones
 * would throw away a real, final failure, so they are kept, as text, with a numeric stand-in.
 */
export const NON_NUMERIC_RESULT_CODE = -1;

const resultCodeSchema = z
  .union([z.number().int(), z.string().regex(/^-?\d{1,9}$/), z.string().regex(ALPHANUMERIC_RESULT_CODE)])
  .transform((raw) => {
    const text = String(raw);
    return { code: /^-?\d{1,9}$/.test(text) ? Number(text) : NON_NUMERIC_RESULT_CODE, text };
  });

/** `{Key, Value?}`; Value is missing for empty entries (TransactionReason), a number or a string otherwise. */
const keyValueSchema = z.object({ Key: z.string().min(1).max(100), Value: z.union([z.string().max(1000), z.number()]).nullish() });

/** Daraja sends a single object instead of a one-element array: accept both, always give an array. */
const keyValuesSchema = z.union([z.array(keyValueSchema).max(50), keyValueSchema]).transform((v) => (Array.isArray(v) ? v : [v]));

function resultEnvelope<C extends z.ZodType<string | undefined>>(conversationId: C) {
  return z.object({
    Result: z.object({
      ResultType: z.union([z.number().int(), z.string().regex(/^\d{1,3}$/).transform(Number)]).optional(),
      ResultCode: resultCodeSchema,
      ResultDesc: z.string().max(500).default(''),
      OriginatorConversationID: z.string().min(1).max(100),
      ConversationID: conversationId,
      // A placeholder such as NLJ0000000 on failures; the receipt is a ResultParameter.
      TransactionID: z.string().max(100).optional(),
      ResultParameters: z.object({ ResultParameter: keyValuesSchema }).nullish(),
      ReferenceData: z.object({ ReferenceItem: keyValuesSchema.optional() }).nullish(),
    }),
  });
}

/** The B2C result posted to ResultURL. */
export const b2cResultSchema = resultEnvelope(z.string().min(1).max(100));
/** The Transaction Status result posted to its ResultURL: the same envelope, other ResultParameters. */
export const transactionStatusResultSchema = resultEnvelope(z.string().min(1).max(100));
/** The body posted to QueueTimeOutURL: the same envelope, with less in it. */
export const queueTimeoutSchema = resultEnvelope(z.string().min(1).max(100).optional());

type ResultEnvelope = z.infer<typeof queueTimeoutSchema>;

export interface B2cResult {
  originatorConversationId: string;
  conversationId: string;
  /** M-Pesa's transaction id; a placeholder (e.g. NLJ0000000) when the payout failed. */
  transactionId: string | undefined;
  /** 0 is the only success. NON_NUMERIC_RESULT_CODE for an alphanumeric code, see resultCodeText. */
  resultCode: number;
  resultCodeText: string;
  resultDesc: string;
  /** The following come on success only, as Daraja sent them. */
  amount?: string;
  /** `amount` as whole KES, when it is one (10, "10", "10.00"); undefined for a fractional amount. */
  amountKes?: number;
  receipt?: string;
  /** `2547******49 - JOHN DOE`: masked, display only. */
  receiverName?: string;
  /** `26.11.2026 10:48:52`, East Africa Time; parseDarajaDateTime turns it into a Date. */
  completedAt?: string;
}

export function toB2cResult(body: z.infer<typeof b2cResultSchema>): B2cResult {
  const r = body.Result;
  const p = parameters(r);
  return {
    originatorConversationId: r.OriginatorConversationID,
    conversationId: r.ConversationID,
    transactionId: r.TransactionID,
    resultCode: r.ResultCode.code,
    resultCodeText: r.ResultCode.text,
    resultDesc: r.ResultDesc,
    ...defined({
      amount: p.get('transactionamount'),
      amountKes: wholeKes(p.get('transactionamount')),
      receipt: p.get('transactionreceipt'),
      receiverName: p.get('receiverpartypublicname'),
      completedAt: p.get('transactioncompleteddatetime'),
    }),
  };
}

export interface TransactionStatusResult {
  /**
   * The Result's own OriginatorConversationID/ConversationID identify the STATUS QUERY (Daraja issued
   * them in its synchronous answer), not the transaction looked up: never correlate a payout on them.
   */
  queryOriginatorConversationId: string;
  queryConversationId: string;
  /** Whether the query ran; 0 with transactionStatus says what became of the transaction. */
  resultCode: number;
  resultCodeText: string;
  resultDesc: string;
  /** The transaction found; older answers spell the keys with spaces ("Originator Conversation ID"). */
  originatorConversationId?: string;
  conversationId?: string;
  receipt?: string;
  /** `Completed`, `Declined`, `Cancelled`, `Expired`, … as M-Pesa reports it. */
  transactionStatus?: string;
  amount?: string;
  amountKes?: number;
  /** YYYYMMDDHHmmss, East Africa Time. */
  finalisedTime?: string;
  creditPartyName?: string;
}

export function toTransactionStatusResult(body: z.infer<typeof transactionStatusResultSchema>): TransactionStatusResult {
  const r = body.Result;
  const p = parameters(r);
  return {
    queryOriginatorConversationId: r.OriginatorConversationID,
    queryConversationId: r.ConversationID,
    resultCode: r.ResultCode.code,
    resultCodeText: r.ResultCode.text,
    resultDesc: r.ResultDesc,
    ...defined({
      originatorConversationId: p.get('originatorconversationid'),
      conversationId: p.get('conversationid'),
      receipt: p.get('receiptno'),
      transactionStatus: p.get('transactionstatus'),
      amount: p.get('amount'),
      amountKes: wholeKes(p.get('amount')),
      finalisedTime: p.get('finalisedtime'),
      creditPartyName: p.get('creditpartyname'),
    }),
  };
}

export interface QueueTimeout {
  originatorConversationId: string;
  conversationId: string | undefined;
  resultDesc: string;
}

/**
 * A body at QueueTimeOutURL says only that the request waited too long in Daraja's queue: the payout
 * may still have gone through. Deliberately no result code here, so nobody reads it as a failure;
 * the outcome is settled by Transaction Status.
 */
export function toQueueTimeout(body: z.infer<typeof queueTimeoutSchema>): QueueTimeout {
  return { originatorConversationId: body.Result.OriginatorConversationID, conversationId: body.Result.ConversationID, resultDesc: body.Result.ResultDesc };
}

/** `26.11.2026 10:48:52` (East Africa Time, UTC+3) as an instant; null unless it is a real date. */
export function parseDarajaDateTime(value: string): Date | null {
  const m = /^(\d{2})\.(\d{2})\.(\d{4}) (\d{2}):(\d{2}):(\d{2})$/.exec(value);
  if (!m) return null;
  const [, d, mo, y, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  const at = new Date(Date.UTC(y, mo - 1, d, h - 3, mi, s));
  const eat = new Date(at.getTime() + 3 * 60 * 60 * 1000);
  // Date.UTC rolls 31.02 over into March; the round trip refuses such dates.
  const same = eat.getUTCFullYear() === y && eat.getUTCMonth() === mo - 1 && eat.getUTCDate() === d && eat.getUTCHours() === h && eat.getUTCMinutes() === mi;
  return same ? at : null;
}

/** ResultParameters by key, keys lowercased and without spaces: "Originator Conversation ID" = "OriginatorConversationID". */
function parameters(r: ResultEnvelope['Result']): Map<string, string> {
  const map = new Map<string, string>();
  for (const { Key, Value } of r.ResultParameters?.ResultParameter ?? []) {
    if (Value !== undefined && Value !== null) map.set(Key.replace(/\s+/g, '').toLowerCase(), String(Value));
  }
  return map;
}

function wholeKes(amount: string | undefined): number | undefined {
  const m = amount === undefined ? null : /^(\d{1,9})(?:\.0{1,2})?$/.exec(amount);
  return m ? Number(m[1]) : undefined;
}

/** Drops undefined entries, so results compare cleanly and optional fields are absent rather than undefined. */
function defined<T extends Record<string, unknown>>(o: T): Partial<{ [K in keyof T]: Exclude<T[K], undefined> }> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<{ [K in keyof T]: Exclude<T[K], undefined> }>;
}
