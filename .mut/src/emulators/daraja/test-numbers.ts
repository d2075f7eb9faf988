/** STK ResultCodes the emulator produces, with Daraja's own descriptions. */
export const RESULT_DESCRIPTIONS = {
  0: 'The service request is processed successfully.',
  1: 'The balance is insufficient for the transaction.',
  1025: 'An error occurred while sending a push request.',
  1032: 'Request cancelled by user',
  1037: 'DS timeout user cannot be reached',
  2001: 'The initiator information is invalid.',
} as const;

export type StkResultCode = keyof typeof RESULT_DESCRIPTIONS;

/**
 * How a scripted outcome reaches the merchant:
 *  - callback: one callback after callbackDelayMs;
 *  - lost: settled after callbackDelayMs but never posted, so only STK Query learns the result;
 *  - duplicated: the same callback posted twice after callbackDelayMs;
 *  - late: pending (Query says "being processed") for lateCallbackDelayMs, then one callback;
 *  - unanswered: pending for promptTimeoutMs, like a real prompt nobody answers, then one callback.
 */
export type Delivery = 'callback' | 'lost' | 'duplicated' | 'late' | 'unanswered';

export interface ScriptedOutcome {
  resultCode: StkResultCode;
  delivery: Delivery;
  behaviour: string;
}

/**
 * Paying numbers (the request's PhoneNumber) with a fixed outcome. All are in Safaricom's 07xx range so
 * the service's own phone validation accepts them. Any other number gets a human prompt.
 * 254711223344 answers 1025 ("push failed") rather than 9999: both mean the same, 1025 is the one
 * the sandbox commonly returns.
 */
export const SCRIPTED_OUTCOMES: ReadonlyMap<string, ScriptedOutcome> = new Map<string, ScriptedOutcome>([
  ['254708374149', { resultCode: 0, delivery: 'callback', behaviour: 'pays: success callback (ResultCode 0, with receipt) after callbackDelayMs' }],
  ['254711223344', { resultCode: 1025, delivery: 'callback', behaviour: 'push fails: callback ResultCode 1025 after callbackDelayMs' }],
  ['254700000001', { resultCode: 1032, delivery: 'callback', behaviour: 'cancels: callback ResultCode 1032 after callbackDelayMs' }],
  ['254700000002', { resultCode: 1, delivery: 'callback', behaviour: 'insufficient funds: callback ResultCode 1 after callbackDelayMs' }],
  ['254700000003', { resultCode: 2001, delivery: 'callback', behaviour: 'wrong PIN: callback ResultCode 2001 after callbackDelayMs' }],
  ['254700000004', { resultCode: 1037, delivery: 'unanswered', behaviour: 'never answers: pending for promptTimeoutMs, then callback ResultCode 1037' }],
  ['254700000005', { resultCode: 0, delivery: 'lost', behaviour: 'pays, callback LOST: none is sent; STK Query returns ResultCode "0" after callbackDelayMs' }],
  ['254700000006', { resultCode: 0, delivery: 'duplicated', behaviour: 'pays, callback DUPLICATED: the identical success callback is posted twice' }],
  ['254700000007', { resultCode: 0, delivery: 'late', behaviour: 'pays, callback LATE: Query says "being processed" until lateCallbackDelayMs, then success callback' }],
]);

export const HUMAN_PROMPT_BEHAVIOUR =
  'any other number: a human prompt stays open for the phone simulator (GET /prompts, POST /prompts/:id/pin or /cancel); PIN 9999 is a wrong PIN (2001); no decision within promptTimeoutMs gives 1037';

/** The scripted numbers only (every entry is a real MSISDN); HUMAN_PROMPT_BEHAVIOUR describes the rest. */
export const EMULATOR_TEST_NUMBERS: ReadonlyArray<{ msisdn: string; behaviour: string }> = [...SCRIPTED_OUTCOMES].map(([msisdn, o]) => ({
  msisdn,
  behaviour: o.behaviour,
}));
