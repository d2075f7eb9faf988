/** B2C ResultCodes the emulator produces, with Daraja's own descriptions. */
export const B2C_RESULT_DESCRIPTIONS = {
  0: 'The service request is processed successfully.',
  1: 'The balance is insufficient for the transaction.',
  2001: 'The initiator information is invalid.',
} as const;

export type B2cResultCode = keyof typeof B2C_RESULT_DESCRIPTIONS;

/**
 * How a payout's outcome reaches the merchant:
 *  - result: one Result callback to ResultURL after callbackDelayMs;
 *  - duplicated: the identical Result callback posted twice;
 *  - timeout: NO result; a queue-timeout body goes to QueueTimeOutURL instead, although the payout
 *    went through: only Transaction Status tells the truth;
 *  - lost: nothing is ever posted; only Transaction Status tells the truth.
 */
export type B2cDelivery = 'result' | 'duplicated' | 'timeout' | 'lost';

export interface B2cScriptedOutcome {
  resultCode: B2cResultCode;
  delivery: B2cDelivery;
  behaviour: string;
}

/**
 * Receiving numbers (PartyB) with a fixed outcome, distinct from the STK paying numbers so one table can
 * never be mistaken for the other. Any number not listed is paid: one success Result.
 */
export const B2C_SCRIPTED_OUTCOMES: ReadonlyMap<string, B2cScriptedOutcome> = new Map<string, B2cScriptedOutcome>([
  ['254708374149', { resultCode: 0, delivery: 'result', behaviour: 'paid: one success Result (receipt, amount, receiver name) after callbackDelayMs; any unlisted number behaves the same' }],
  ['254700000101', { resultCode: 2001, delivery: 'result', behaviour: 'fails: Result with ResultCode 2001 "The initiator information is invalid." after callbackDelayMs' }],
  ['254700000102', { resultCode: 1, delivery: 'result', behaviour: 'fails: Result with ResultCode 1, utility account balance insufficient, after callbackDelayMs' }],
  ['254700000103', { resultCode: 0, delivery: 'timeout', behaviour: 'TIMEOUT: paid, but no Result; a queue-timeout body goes to QueueTimeOutURL; Transaction Status reports Completed' }],
  ['254700000104', { resultCode: 0, delivery: 'duplicated', behaviour: 'paid, Result DUPLICATED: the identical success Result is posted twice' }],
  ['254700000105', { resultCode: 0, delivery: 'lost', behaviour: 'paid, Result LOST: nothing is posted anywhere; Transaction Status reports Completed' }],
]);

export const B2C_DEFAULT_OUTCOME: B2cScriptedOutcome = { resultCode: 0, delivery: 'result', behaviour: 'paid' };

export const EMULATOR_B2C_TEST_NUMBERS: ReadonlyArray<{ msisdn: string; behaviour: string }> = [...B2C_SCRIPTED_OUTCOMES].map(([msisdn, o]) => ({
  msisdn,
  behaviour: o.behaviour,
}));
