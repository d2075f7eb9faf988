import { CallbackPoster } from './callback-poster';
import type { Logger } from '../../lib/logger';
import { maskMsisdn } from '../../lib/msisdn';
import { darajaTimestamp } from '../../vendors/daraja-time';
import { RESULT_DESCRIPTIONS, SCRIPTED_OUTCOMES, type Delivery, type StkResultCode } from './test-numbers';
import type { StkPushBody } from './stk-requests';
import { checkoutRequestId, dashedId, receiptNumber, uniqueFrom } from './wire';

export interface Timings {
  promptTimeoutMs: number;
  callbackDelayMs: number;
  lateCallbackDelayMs: number;
}

export interface StkFinal {
  resultCode: StkResultCode;
  resultDesc: string;
  /** Success only. */
  receipt?: string;
  completedAt: Date;
}

export interface StkSession {
  merchantRequestId: string;
  checkoutRequestId: string;
  phone: string;
  amount: number;
  accountReference: string;
  transactionDesc: string;
  businessShortCode: string;
  callbackUrl: string;
  createdAt: Date;
  /** Set for prompts a person answers through the phone-simulator API. */
  humanPromptExpiresAt: Date | null;
  final: StkFinal | null;
}

/**
 * Every STK Push the emulator accepted, and what becomes of it. A session is open until it has a final
 * result; while open it locks the subscriber, as M-Pesa allows one STK session per phone.
 */
export class StkSessions {
  private readonly byCheckoutId = new Map<string, StkSession>();
  private readonly openByPhone = new Map<string, StkSession>();
  private readonly usedMerchantIds = new Set<string>();
  private readonly usedCheckoutIds = new Set<string>();
  private readonly usedReceipts = new Set<string>();
  private readonly poster: CallbackPoster;

  constructor(
    private readonly timings: Timings,
    private readonly now: () => Date,
    private readonly log: Logger,
  ) {
    this.poster = new CallbackPoster(log);
  }

  isLocked(phone: string): boolean {
    return this.openByPhone.has(phone);
  }

  find(checkoutId: string): StkSession | undefined {
    return this.byCheckoutId.get(checkoutId);
  }

  /** An open prompt waiting for a person, or undefined (unknown, scripted, or already decided). */
  findOpenPrompt(checkoutId: string): StkSession | undefined {
    const s = this.byCheckoutId.get(checkoutId);
    return s && s.humanPromptExpiresAt && !s.final ? s : undefined;
  }

  openPromptsFor(phone: string): StkSession[] {
    const s = this.openByPhone.get(phone);
    return s && s.humanPromptExpiresAt ? [s] : [];
  }

  /** Records an accepted push and schedules its scripted outcome, or opens a human prompt. */
  start(body: StkPushBody): StkSession {
    const createdAt = this.now();
    const scripted = SCRIPTED_OUTCOMES.get(body.PhoneNumber);
    const session: StkSession = {
      merchantRequestId: uniqueFrom(this.usedMerchantIds, dashedId),
      checkoutRequestId: uniqueFrom(this.usedCheckoutIds, () => checkoutRequestId(createdAt)),
      phone: body.PhoneNumber,
      amount: body.Amount,
      accountReference: body.AccountReference,
      transactionDesc: body.TransactionDesc,
      businessShortCode: body.BusinessShortCode,
      callbackUrl: body.CallBackURL,
      createdAt,
      humanPromptExpiresAt: scripted ? null : new Date(createdAt.getTime() + this.timings.promptTimeoutMs),
      final: null,
    };
    this.byCheckoutId.set(session.checkoutRequestId, session);
    this.openByPhone.set(session.phone, session);
    if (scripted) {
      this.later(this.delayFor(scripted.delivery), () => this.settle(session, scripted.resultCode, scripted.delivery));
    } else {
      this.later(this.timings.promptTimeoutMs, () => this.settle(session, 1037, 'callback'));
    }
    this.log.info({ checkoutRequestId: session.checkoutRequestId, msisdn: maskMsisdn(session.phone), amount: session.amount, human: !scripted }, 'emulator: stk push accepted');
    return session;
  }

  /** The person at the phone decided; returns the final result, or null if the prompt had already closed. */
  decide(session: StkSession, resultCode: StkResultCode): StkFinal | null {
    return this.settle(session, resultCode, 'callback');
  }

  close(): void {
    this.poster.close();
  }

  private delayFor(delivery: Delivery): number {
    if (delivery === 'late') return this.timings.lateCallbackDelayMs;
    if (delivery === 'unanswered') return this.timings.promptTimeoutMs;
    return this.timings.callbackDelayMs;
  }

  /** Gives an open session its final result (once), unlocks the phone and delivers the callback. */
  private settle(session: StkSession, resultCode: StkResultCode, delivery: Delivery): StkFinal | null {
    if (session.final) return null;
    const completedAt = this.now();
    session.final = {
      resultCode,
      resultDesc: RESULT_DESCRIPTIONS[resultCode],
      completedAt,
      ...(resultCode === 0 ? { receipt: uniqueFrom(this.usedReceipts, () => receiptNumber(completedAt)) } : {}),
    };
    this.openByPhone.delete(session.phone);
    this.log.info({ checkoutRequestId: session.checkoutRequestId, resultCode, delivery }, 'emulator: stk session final');
    if (delivery !== 'lost') void this.deliver(session, delivery === 'duplicated' ? 2 : 1);
    return session.final;
  }

  /** Like Safaricom: one attempt each, no retry; failures are only logged. */
  private async deliver(session: StkSession, times: number): Promise<void> {
    await this.poster.post(session.callbackUrl, callbackBody(session), { checkoutRequestId: session.checkoutRequestId, callback: 'stk' }, times);
  }

  private later(ms: number, fn: () => void): void {
    this.poster.later(ms, fn);
  }
}

/** Daraja's exact callback shape; CallbackMetadata only on success, Balance without a Value. */
export function callbackBody(session: StkSession) {
  const final = session.final;
  if (!final) throw new Error('callbackBody needs a settled session');
  return {
    Body: {
      stkCallback: {
        MerchantRequestID: session.merchantRequestId,
        CheckoutRequestID: session.checkoutRequestId,
        ResultCode: final.resultCode,
        ResultDesc: final.resultDesc,
        ...(final.receipt
          ? {
              CallbackMetadata: {
                Item: [
                  { Name: 'Amount', Value: session.amount },
                  { Name: 'MpesaReceiptNumber', Value: final.receipt },
                  { Name: 'Balance' },
                  { Name: 'TransactionDate', Value: Number(darajaTimestamp(final.completedAt)) },
                  { Name: 'PhoneNumber', Value: Number(session.phone) },
                ],
              },
            }
          : {}),
      },
    },
  };
}
