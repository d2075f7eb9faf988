/**
 * English texts. Every USSD screen must fit 160 characters with its CON/END prefix, in plain GSM-7;
 * every SMS one 160-character segment. The tests walk them all to check.
 */
export const en = {
  ussd: {
    home: 'Gold Savings\n1 Buy gold',
    invalidChoice: 'Invalid choice.',
    buyAmount: (min: string, max: string) => `Enter amount in KES to buy gold\n(min ${min}, max ${max})\n0 Back`,
    amountNotNumber: 'Enter whole shillings only, e.g. 500.',
    amountTooSmall: (min: string) => `Minimum is KES ${min}.`,
    amountTooLarge: (max: string) => `Maximum is KES ${max}.`,
    buyConfirm: (kes: string, grams: string, price: string) =>
      `Buy ${grams} g of gold for KES ${kes}\nPrice KES ${price}/g\n1 Confirm\n2 Cancel`,
    buySubmitted: (kes: string) => `Request received. You will get an M-Pesa prompt to pay KES ${kes}. Enter your M-Pesa PIN to complete.`,
    buyCancelled: 'Purchase cancelled. Nothing was charged.',
    notMpesaNumber: 'Sorry, this service needs a Safaricom M-Pesa line.',
    wrongServiceCode: 'Sorry, this service code is not available.',
    unavailable: 'Sorry, the service is busy. Please try again in a few minutes.',
  },
  sms: {
    buyReceipt: (p: { receipt: string; grams: string; kes: string; price: string; balance: string }) =>
      `Gold purchase confirmed. M-Pesa ref ${p.receipt}. ${p.grams} g for KES ${p.kes} at KES ${p.price}/g. Gold balance ${p.balance} g.`,
    buyFailed: (p: { kes: string; reason: string }) => `Your gold purchase of KES ${p.kes} did not go through: ${p.reason} You were not charged.`,
    reasons: {
      cancelled: 'you cancelled the M-Pesa request.',
      insufficientFunds: 'not enough money in M-Pesa.',
      wrongPin: 'the M-Pesa PIN was wrong.',
      timeout: 'the M-Pesa prompt was not answered in time.',
      poolEmpty: 'gold is sold out right now. Try again later.',
      generic: 'M-Pesa could not complete the payment.',
    },
  },
};

export type Catalog = typeof en;
