/**
 * English texts. Every USSD screen must fit 160 characters with its CON/END prefix, in plain GSM-7;
 * every SMS one 160-character segment. The tests walk them all to check.
 */
export const en = {
  ussd: {
    // Main menu. The title gives way to a one-line reason when the screen is full.
    homeTitle: 'Gold Savings',
    homeMenu: '1 Buy gold\n2 Sell gold\n3 My gold\n4 Statement\n5 Gold price\n6 My account',
    // Offered on the very first dial: the OTHER language, named in itself.
    offerLanguage: '7 Kiswahili',
    offerResume: '8 Continue where you left off',
    back: '0 Back',
    backHome: '0 Back 00 Home',
    invalidChoice: 'Invalid choice.',
    buyAmount: (min: string, max: string) => `Enter amount in KES to buy gold\n(min ${min}, max ${max})\n0 Back`,
    // Pay by Paybill (C2B) on: the same screen tells savers they can pay from the M-Pesa menu instead.
    buyAmountPaybill: (min: string, max: string, paybill: string) =>
      `Enter amount in KES to buy gold\n(min ${min}, max ${max})\nOr pay Paybill ${paybill}, account = your number\n0 Back`,
    amountNotNumber: 'Enter whole shillings only, e.g. 500.',
    amountTooSmall: (min: string) => `Minimum is KES ${min}.`,
    amountTooLarge: (max: string) => `Maximum is KES ${max}.`,
    buyConfirm: (kes: string, grams: string, price: string) =>
      `Buy ${grams} g of gold for KES ${kes}\nPrice KES ${price}/g\n1 Confirm\n2 Cancel`,
    buySubmitted: (kes: string) => `Request received. You will get an M-Pesa prompt to pay KES ${kes}. Enter your M-Pesa PIN to complete.`,
    buyCancelled: 'Purchase cancelled. Nothing was charged.',
    buyDailyLimit: (limit: string, remaining: string) => `Over today's buy limit of KES ${limit}. You can still buy KES ${remaining} today. Nothing was charged.`,
    sellDailyLimit: (limit: string, remaining: string) => `Over today's sell limit of KES ${limit}. You can still sell KES ${remaining} today. Your gold was not touched.`,
    sellUnavailable: 'Selling gold is not available right now. Please try again later. Your gold is safe.',
    priceUpdated: 'Price updated.',
    priceUnavailable: 'Gold price unavailable. Try later.',

    sellAmount: (min: string, max: string) => `Enter amount in KES to receive\n(min ${min}, max ${max})\n0 Back`,
    sellConfirm: (kes: string, grams: string, price: string) =>
      `Sell ${grams} g of gold for KES ${kes}\nPrice KES ${price}/g\nEnter wallet PIN to confirm\n0 Back`,
    sellSubmitted: (kes: string) => `Sale received. KES ${kes} will be sent to your M-Pesa shortly. We will confirm by SMS.`,
    sellWorthOnly: (kes: string) => `Your gold is worth KES ${kes}.`,
    sellNoGold: 'You have no gold to sell yet.',

    enterPin: 'Enter your 4-digit wallet PIN\n0 Back',
    pinFormat: 'Enter 4 digits.',
    wrongPin: (left: number) => (left === 1 ? 'Wrong PIN. 1 try left.' : `Wrong PIN. ${left} tries left.`),
    walletLocked: (until: string) => `Too many wrong PINs. Your wallet is locked until ${until}.`,
    newPin: 'Create a 4-digit wallet PIN. It keeps your gold safe.\n0 Back',
    newPinChange: 'Enter your new 4-digit PIN\n0 Back',
    pinGuessable: "Too easy to guess. Avoid 1234, 1111 and your phone's last 4 digits.",
    repeatPin: 'Enter the same PIN again\n0 Back',
    pinMismatch: 'The PINs did not match. Try again.',
    pinSaved: 'PIN set.',
    pinChanged: 'Your wallet PIN has been changed.',

    myGold: (grams: string) => `My gold: ${grams} g`,
    myGoldValue: (kes: string, price: string) => `Worth KES ${kes} at KES ${price}/g`,
    myGoldNoValue: 'Value: price unavailable now',
    pendingBuy: (grams: string) => `Buying: ${grams} g (pending)`,
    pendingSell: (grams: string) => `Selling: ${grams} g (pending)`,

    statementTitle: 'Last movements (g, KES)',
    statementEmpty: 'No movements yet.',
    statementRow: (date: string, kind: 'buy' | 'sell', grams: string, kes: string) => `${date} ${kind === 'buy' ? 'Buy' : 'Sell'} ${grams}g ${kes}`,
    statementSmsOption: '1 Send last 10 by SMS',
    statementSent: 'Your statement will arrive by SMS shortly.',

    prices: (buy: string, sell: string, at: string) => `Gold price per gram\nBuy: KES ${buy}\nSell: KES ${sell}\nSet ${at}`,

    account: (hasPin: boolean) => `My account\n1 ${hasPin ? 'Change PIN' : 'Set PIN'}\n2 Language\n0 Back`,
    chooseLanguage: 'Choose language\n1 English\n2 Kiswahili\n0 Back',
    languageSaved: 'Language: English.',

    notMpesaNumber: 'Sorry, this service needs a Safaricom M-Pesa line.',
    wrongServiceCode: 'Sorry, this service code is not available.',
    unavailable: 'Sorry, the service is busy. Please try again in a few minutes.',
    invalidRequest: 'Sorry, that request could not be read. Please dial again.',
    tooManyRequests: 'Too many requests from this phone. Please wait a minute, then dial again.',
    paymentPending: 'You already have an M-Pesa payment waiting. Complete or cancel that prompt, then dial again. Nothing new was charged.',
    tooManyPayments: (minutes: string) => `You have made too many payment requests. Please try again in ${minutes} min. Nothing was charged.`,
  },
  sms: {
    buyReceipt: (p: { receipt: string; grams: string; kes: string; price: string; balance: string }) =>
      `Gold purchase confirmed. M-Pesa ref ${p.receipt}. ${p.grams} g for KES ${p.kes} at KES ${p.price}/g. Gold balance ${p.balance} g.`,
    buyFailed: (p: { kes: string; reason: string }) => `Your gold purchase of KES ${p.kes} did not go through: ${p.reason} You were not charged.`,
    // Settled by STK Query, which carries no M-Pesa receipt number.
    buyReceiptNoRef: (p: { grams: string; kes: string; price: string; balance: string }) =>
      `Gold purchase confirmed. ${p.grams} g for KES ${p.kes} at KES ${p.price}/g. Gold balance ${p.balance} g.`,
    buyExpired: (p: { kes: string }) =>
      `We got no M-Pesa confirmation for your gold purchase of KES ${p.kes}, so it was closed. If you were charged, you will still get your gold and an SMS.`,
    buyLateReceipt: (p: { receipt: string; grams: string; kes: string; balance: string }) =>
      `Your M-Pesa payment ${p.receipt} reached us late. Your gold purchase is confirmed after all: ${p.grams} g for KES ${p.kes}. Gold balance ${p.balance} g.`,
    buyLateReview: (p: { receipt: string; kes: string }) =>
      `We received your M-Pesa payment ${p.receipt} of KES ${p.kes} but could not add your gold yet. Our team will credit it or refund you within 1 working day.`,
    sellReceipt: (p: { receipt: string; grams: string; kes: string; price: string; balance: string }) =>
      `Gold sale paid. M-Pesa ref ${p.receipt}. Sold ${p.grams} g for KES ${p.kes} at KES ${p.price}/g. Gold balance ${p.balance} g.`,
    sellFailed: (p: { kes: string; grams: string; reason: string }) =>
      `Your gold sale of KES ${p.kes} did not go through: ${p.reason} Your ${p.grams} g of gold is back in your wallet.`,
    sellReasons: {
      recipient: 'this line cannot receive M-Pesa payments.',
      unavailable: 'payouts are paused. Try again later.',
      generic: 'M-Pesa could not send the money.',
    },
    pinLocked: (p: { attempts: string; until: string }) =>
      `Your gold wallet was locked after ${p.attempts} wrong PINs. It opens again at ${p.until}. If this was not you, keep your phone safe.`,
    statementTitle: 'Gold statement (g, KES):',
    statementRow: (date: string, kind: 'buy' | 'sell', grams: string, kes: string) => `${date} ${kind === 'buy' ? 'Buy' : 'Sell'} ${grams}g ${kes}`,
    statementEmpty: 'No movements yet.',
    statementBalance: (grams: string) => `Balance ${grams} g`,
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
