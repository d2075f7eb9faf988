import type { Catalog } from './en';

/**
 * Kiswahili (as spoken in Kenya). Typed as the English catalog, so a text added there without a
 * Swahili one here fails the type check. Same limits: 160 GSM-7 characters per screen and per SMS.
 */
export const sw: Catalog = {
  ussd: {
    homeTitle: 'Akiba ya Dhahabu',
    homeMenu: '1 Nunua dhahabu\n2 Uza dhahabu\n3 Dhahabu yangu\n4 Taarifa fupi\n5 Bei ya dhahabu\n6 Akaunti yangu',
    offerLanguage: '7 English',
    offerResume: '8 Endelea ulipoachia',
    back: '0 Rudi',
    backHome: '0 Rudi 00 Mwanzo',
    invalidChoice: 'Chaguo si sahihi.',
    buyAmount: (min: string, max: string) => `Weka kiasi cha KES cha kununua dhahabu\n(chini ${min}, juu ${max})\n0 Rudi`,
    buyAmountPaybill: (min: string, max: string, paybill: string) =>
      `Weka kiasi cha KES cha kununua dhahabu\n(chini ${min}, juu ${max})\nAu lipa Paybill ${paybill}, akaunti = namba yako\n0 Rudi`,
    amountNotNumber: 'Weka shilingi kamili tu, mfano 500.',
    amountTooSmall: (min: string) => `Kiwango cha chini ni KES ${min}.`,
    amountTooLarge: (max: string) => `Kiwango cha juu ni KES ${max}.`,
    buyConfirm: (kes: string, grams: string, price: string) =>
      `Nunua dhahabu ${grams} g kwa KES ${kes}\nBei KES ${price}/g\n1 Thibitisha\n2 Ghairi`,
    buySubmitted: (kes: string) => `Ombi limepokelewa. Utapata ombi la M-Pesa la kulipa KES ${kes}. Weka PIN yako ya M-Pesa kukamilisha.`,
    buyCancelled: 'Ununuzi umeghairiwa. Hujatozwa chochote.',
    buyDailyLimit: (limit: string, remaining: string) =>
      `Umezidi kikomo cha kununua cha leo cha KES ${limit}. Leo bado unaweza kununua KES ${remaining}. Hujatozwa chochote.`,
    sellDailyLimit: (limit: string, remaining: string) =>
      `Umezidi kikomo cha kuuza cha leo cha KES ${limit}. Leo bado unaweza kuuza KES ${remaining}. Dhahabu yako haijaguswa.`,
    sellUnavailable: 'Kuuza dhahabu hakupatikani kwa sasa. Tafadhali jaribu tena baadaye. Dhahabu yako iko salama.',
    priceUpdated: 'Bei imebadilika.',
    priceUnavailable: 'Bei haipatikani sasa. Jaribu baadaye.',

    sellAmount: (min: string, max: string) => `Weka kiasi cha KES unachotaka kupokea\n(chini ${min}, juu ${max})\n0 Rudi`,
    sellConfirm: (kes: string, grams: string, price: string) =>
      `Uza dhahabu ${grams} g upokee KES ${kes}\nBei KES ${price}/g\nWeka PIN ya akiba kuthibitisha\n0 Rudi`,
    sellSubmitted: (kes: string) => `Ombi la kuuza limepokelewa. KES ${kes} zitatumwa kwa M-Pesa yako hivi punde. Tutakuthibitishia kwa SMS.`,
    sellWorthOnly: (kes: string) => `Dhahabu yako ina thamani ya KES ${kes}.`,
    sellNoGold: 'Bado huna dhahabu ya kuuza.',

    enterPin: 'Weka PIN yako ya akiba (tarakimu 4)\n0 Rudi',
    pinFormat: 'Weka tarakimu 4.',
    wrongPin: (left: number) => (left === 1 ? 'PIN si sahihi. Umebakiza jaribio 1.' : `PIN si sahihi. Umebakiza majaribio ${left}.`),
    walletLocked: (until: string) => `PIN imekosewa mara nyingi. Akiba imefungwa hadi saa ${until}.`,
    newPin: 'Tengeneza PIN ya akiba ya tarakimu 4. Inalinda dhahabu yako.\n0 Rudi',
    newPinChange: 'Weka PIN mpya ya tarakimu 4\n0 Rudi',
    pinGuessable: 'Ni rahisi kukisia. Epuka 1234, 1111 na tarakimu 4 za mwisho za simu yako.',
    repeatPin: 'Weka PIN hiyo tena\n0 Rudi',
    pinMismatch: 'PIN hazikulingana. Jaribu tena.',
    pinSaved: 'PIN imewekwa.',
    pinChanged: 'PIN ya akiba yako imebadilishwa.',

    myGold: (grams: string) => `Dhahabu yako: ${grams} g`,
    myGoldValue: (kes: string, price: string) => `Thamani KES ${kes} kwa KES ${price}/g`,
    myGoldNoValue: 'Thamani: bei haipatikani sasa',
    pendingBuy: (grams: string) => `Inanunuliwa: ${grams} g`,
    pendingSell: (grams: string) => `Inauzwa: ${grams} g`,

    statementTitle: 'Miamala ya mwisho (g, KES)',
    statementEmpty: 'Bado hakuna miamala.',
    statementRow: (date: string, kind: 'buy' | 'sell', grams: string, kes: string) => `${date} ${kind === 'buy' ? 'Nunua' : 'Uza'} ${grams}g ${kes}`,
    statementSmsOption: '1 Tuma 10 za mwisho kwa SMS',
    statementSent: 'Taarifa yako itakufikia kwa SMS hivi punde.',

    prices: (buy: string, sell: string, at: string) => `Bei ya dhahabu kwa gramu\nKununua: KES ${buy}\nKuuza: KES ${sell}\nIliwekwa ${at}`,

    account: (hasPin: boolean) => `Akaunti yangu\n1 ${hasPin ? 'Badilisha PIN' : 'Weka PIN'}\n2 Lugha\n0 Rudi`,
    chooseLanguage: 'Chagua lugha\n1 English\n2 Kiswahili\n0 Rudi',
    languageSaved: 'Lugha: Kiswahili.',

    notMpesaNumber: 'Samahani, huduma hii inahitaji laini ya Safaricom yenye M-Pesa.',
    wrongServiceCode: 'Samahani, namba hii ya huduma haipatikani.',
    unavailable: 'Samahani, huduma ina shughuli nyingi. Tafadhali jaribu tena baada ya dakika chache.',
    invalidRequest: 'Samahani, ombi hilo halikusomeka. Tafadhali piga tena.',
    tooManyRequests: 'Maombi mengi mno kutoka simu hii. Subiri dakika moja, kisha piga tena.',
    paymentPending: 'Una malipo ya M-Pesa yanayosubiri. Yakamilishe au uyaghairi, kisha piga tena. Hujatozwa kitu kipya.',
    tooManyPayments: (minutes: string) => `Umetuma maombi mengi ya malipo. Tafadhali jaribu tena baada ya dakika ${minutes}. Hujatozwa chochote.`,
  },
  sms: {
    buyReceipt: (p: { receipt: string; grams: string; kes: string; price: string; balance: string }) =>
      `Ununuzi wa dhahabu umethibitishwa. M-Pesa ${p.receipt}. ${p.grams} g kwa KES ${p.kes}, bei KES ${p.price}/g. Salio la dhahabu ${p.balance} g.`,
    buyFailed: (p: { kes: string; reason: string }) => `Ununuzi wako wa dhahabu wa KES ${p.kes} haukufanikiwa: ${p.reason} Hujatozwa.`,
    buyReceiptNoRef: (p: { grams: string; kes: string; price: string; balance: string }) =>
      `Ununuzi wa dhahabu umethibitishwa. ${p.grams} g kwa KES ${p.kes}, bei KES ${p.price}/g. Salio la dhahabu ${p.balance} g.`,
    buyExpired: (p: { kes: string }) =>
      `Hatukupata uthibitisho wa M-Pesa kwa ununuzi wako wa dhahabu wa KES ${p.kes}, kwa hivyo umefungwa. Kama ulitozwa, bado utapata dhahabu yako na SMS.`,
    buyLateReceipt: (p: { receipt: string; grams: string; kes: string; balance: string }) =>
      `Malipo yako ya M-Pesa ${p.receipt} yametufikia kwa kuchelewa. Ununuzi umethibitishwa: ${p.grams} g kwa KES ${p.kes}. Salio la dhahabu ${p.balance} g.`,
    buyLateReview: (p: { receipt: string; kes: string }) =>
      `Tumepokea malipo yako ya M-Pesa ${p.receipt} ya KES ${p.kes} lakini bado hatujaongeza dhahabu. Tutaiongeza au kukurudishia pesa ndani ya siku 1 ya kazi.`,
    sellReceipt: (p: { receipt: string; grams: string; kes: string; price: string; balance: string }) =>
      `Mauzo ya dhahabu yamelipwa. M-Pesa ${p.receipt}. Umeuza ${p.grams} g kwa KES ${p.kes}, bei KES ${p.price}/g. Salio la dhahabu ${p.balance} g.`,
    sellFailed: (p: { kes: string; grams: string; reason: string }) =>
      `Mauzo yako ya dhahabu ya KES ${p.kes} hayakufanikiwa: ${p.reason} Dhahabu yako ${p.grams} g imerudi kwenye akiba yako.`,
    sellReasons: {
      recipient: 'laini hii haiwezi kupokea malipo ya M-Pesa.',
      unavailable: 'malipo yamesitishwa kwa muda. Jaribu tena baadaye.',
      generic: 'M-Pesa haikuweza kutuma pesa.',
    },
    pinLocked: (p: { attempts: string; until: string }) =>
      `Akiba yako ya dhahabu imefungwa baada ya PIN kukosewa mara ${p.attempts}. Itafunguliwa saa ${p.until}. Kama si wewe, linda simu yako.`,
    statementTitle: 'Taarifa ya dhahabu (g, KES):',
    statementRow: (date: string, kind: 'buy' | 'sell', grams: string, kes: string) => `${date} ${kind === 'buy' ? 'Nunua' : 'Uza'} ${grams}g ${kes}`,
    statementEmpty: 'Bado hakuna miamala.',
    statementBalance: (grams: string) => `Salio ${grams} g`,
    reasons: {
      cancelled: 'ulighairi ombi la M-Pesa.',
      insufficientFunds: 'pesa hazitoshi kwenye M-Pesa.',
      wrongPin: 'PIN ya M-Pesa haikuwa sahihi.',
      timeout: 'ombi la M-Pesa halikujibiwa kwa wakati.',
      poolEmpty: 'dhahabu imeisha kwa sasa. Jaribu tena baadaye.',
      generic: 'M-Pesa haikuweza kukamilisha malipo.',
    },
  },
};
