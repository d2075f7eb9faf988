import { CallbackPoster } from './callback-poster';
import { randomInt } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from '../../lib/logger';
import { maskMsisdn } from '../../lib/msisdn';
import { darajaTimestamp } from '../../vendors/daraja-time';
import { httpUrl, msisdn, shortcode } from './stk-requests';
import { receiptNumber, uniqueFrom } from './wire';

/**
 * C2B (Pay by Paybill) in the Daraja emulator: URL registration per shortcode (v1 and v2 paths), and
 * the sandbox's "simulate" of a customer paying from the M-Pesa menu. As on M-Pesa: the registered
 * ValidationURL is asked first; only an accepting answer ("ResultCode":"0") completes the payment, and
 * then the ConfirmationURL gets the v2 confirmation (MSISDN masked). An unreachable validation URL
 * completes or cancels the payment as the registration's ResponseType says. One attempt per callback.
 */

export const registerUrlSchema = z.object({
  ShortCode: shortcode,
  ResponseType: z.enum(['Completed', 'Cancelled']),
  ConfirmationURL: httpUrl,
  ValidationURL: httpUrl,
});

export const simulateSchema = z.object({
  ShortCode: shortcode,
  CommandID: z.enum(['CustomerPayBillOnline', 'CustomerBuyGoodsOnline']),
  Amount: z.union([z.number().int(), z.string().regex(/^\d{1,9}$/).transform(Number)]).pipe(z.number().int().min(1).max(250_000)),
  Msisdn: msisdn,
  // Account number: Paybill only; free text as typed by the payer.
  BillRefNumber: z.string().max(100).optional(),
});

export type Registration = z.output<typeof registerUrlSchema>;
export type Simulation = z.output<typeof simulateSchema>;

/** "254712345126" -> "2547 ***** 126": how v2 confirmations show the payer. */
export function maskedPayer(msisdnText: string): string {
  return `${msisdnText.slice(0, 4)} ***** ${msisdnText.slice(-3)}`;
}

export class C2bPaybill {
  private readonly registrations = new Map<string, Registration>();
  private readonly transIds = new Set<string>();
  private readonly balances = new Map<string, number>();
  private readonly poster: CallbackPoster;

  constructor(private readonly opts: { callbackDelayMs: number }, private readonly now: () => Date, private readonly log: Logger) {
    this.poster = new CallbackPoster(log);
  }

  register(r: Registration): void {
    this.registrations.set(r.ShortCode, r);
  }

  registered(shortcodeText: string): Registration | undefined {
    return this.registrations.get(shortcodeText);
  }

  /** Accepts the payment request now; validation and confirmation follow after callbackDelayMs. */
  simulate(s: Simulation): { transId: string } | null {
    const registration = this.registrations.get(s.ShortCode);
    if (!registration) return null;
    const at = this.now();
    const transId = uniqueFrom(this.transIds, () => receiptNumber(at));
    const balance = (this.balances.get(s.ShortCode) ?? 0) + s.Amount;
    this.balances.set(s.ShortCode, balance);
    const payload = {
      TransactionType: s.CommandID === 'CustomerPayBillOnline' ? 'Pay Bill' : 'Buy Goods',
      TransID: transId,
      TransTime: darajaTimestamp(at),
      TransAmount: `${s.Amount}.00`,
      BusinessShortCode: s.ShortCode,
      BillRefNumber: s.CommandID === 'CustomerPayBillOnline' ? (s.BillRefNumber ?? '') : '',
      InvoiceNumber: '',
      OrgAccountBalance: `${balance}.00`,
      ThirdPartyTransID: '',
      MSISDN: maskedPayer(s.Msisdn),
      FirstName: PAYER_NAMES[randomInt(0, PAYER_NAMES.length)]!,
      MiddleName: '',
      LastName: '',
    };
    this.later(() => this.run(registration, payload, s.Msisdn));
    return { transId };
  }

  private async run(registration: Registration, payload: Record<string, string>, payer: string): Promise<void> {
    const context = { transId: payload.TransID, phone: maskMsisdn(payer) };
    const validation = await this.post(registration.ValidationURL, payload);
    const accepted = validation.reachable ? validation.resultCode === '0' : registration.ResponseType === 'Completed';
    this.log.info({ ...context, validation: validation.reachable ? validation.resultCode : 'unreachable', accepted }, 'emulator: c2b validation');
    if (!accepted || this.poster.isClosed) return;
    const confirmation = await this.post(registration.ConfirmationURL, payload);
    this.log.info({ ...context, status: confirmation.status }, 'emulator: c2b confirmation posted');
  }

  private async post(url: string, body: unknown): Promise<{ reachable: boolean; status?: number; resultCode?: string }> {
    const answer = await this.poster.request(url, body);
    if (!('status' in answer)) return { reachable: false };
    if (answer.status < 200 || answer.status >= 300) return { reachable: false, status: answer.status };
    const code = (answer.data as { ResultCode?: unknown } | undefined)?.ResultCode;
    return { reachable: true, status: answer.status, resultCode: code === undefined ? undefined : String(code) };
  }

  private later(fn: () => Promise<void>): void {
    this.poster.later(this.opts.callbackDelayMs, fn);
  }

  close(): void {
    this.poster.close();
  }
}

const PAYER_NAMES = ['JOHN', 'JANE', 'WANJIKU', 'OTIENO', 'AKINYI', 'KAMAU'];
