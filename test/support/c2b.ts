import { OPS_TOKEN } from './ops';

/** Pay by Paybill (C2B) in tests: the settings, and Daraja's v2 validation/confirmation body. */

export const C2B_SECRET = 'c2b-Secret-0a1b2c3d4e5f';
export const VALIDATION_PATH = `/c2b/validation/${C2B_SECRET}`;
export const CONFIRMATION_PATH = `/c2b/confirmation/${C2B_SECRET}`;
export const c2bEnv = () => ({
  MPESA_C2B_VALIDATION_URL: `https://wallet.example.com${VALIDATION_PATH}`,
  MPESA_C2B_CONFIRMATION_URL: `https://wallet.example.com${CONFIRMATION_PATH}`,
  OPS_API_TOKEN: OPS_TOKEN,
});

let transCounter = 0;
/** A fresh M-Pesa TransID, 10 uppercase alphanumerics like "SL41AB2CDE". */
export const nextTransId = () => `SL4${String(Date.now() % 100000).padStart(5, '0')}${(++transCounter).toString(36).toUpperCase().padStart(2, '0')}`;

/** A v2 confirmation (and validation) body as Daraja posts it: the MSISDN masked, amounts as decimal strings. */
export function c2bBody(p: { transId?: string; account: string; amount: string; msisdn?: string }) {
  return {
    TransactionType: 'Pay Bill',
    TransID: p.transId ?? nextTransId(),
    TransTime: '20261204101530',
    TransAmount: p.amount,
    BusinessShortCode: '174379',
    BillRefNumber: p.account,
    InvoiceNumber: '',
    OrgAccountBalance: '',
    ThirdPartyTransID: '',
    MSISDN: p.msisdn ?? '2547 ***** 126',
    FirstName: 'JANE',
    MiddleName: '',
    LastName: '',
  };
}

