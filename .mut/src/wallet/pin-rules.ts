/** What a wallet PIN must look like. Pure: the menu machine checks it before anything is stored. */

export const PIN_PATTERN = /^\d{4}$/;

/**
 * Refused as too easy to guess: all digits equal (1111), straight runs up or down (1234, 0123,
 * 9876), and the last four digits of the saver's own phone number (anyone holding the phone sees it).
 */
export function isGuessablePin(pin: string, msisdn: string): boolean {
  if (!PIN_PATTERN.test(pin)) return true;
  const d = [...pin].map(Number);
  const steps = d.slice(1).map((x, i) => x - d[i]!);
  if (steps.every((s) => s === 0) || steps.every((s) => s === 1) || steps.every((s) => s === -1)) return true;
  return msisdn.endsWith(pin);
}
