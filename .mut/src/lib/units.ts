/**
 * Units and rounding, in one place. Gold is integer micrograms (ug), money integer KES cents,
 * prices integer cents per gram. Every conversion rounds in the house's favour.
 */

export const UG_PER_GRAM = 1_000_000;
export const CENTS_PER_KES = 100;

/** "8500", "8500.5", "8500.50" -> 850050. Anything else (signs, exponents, 3 decimals) -> null. */
export function parseKesToCents(text: string): number | null {
  const m = /^(\d{1,9})(?:\.(\d{1,2}))?$/.exec(text.trim());
  if (!m) return null;
  return Number(m[1]) * CENTS_PER_KES + Number((m[2] ?? '').padEnd(2, '0'));
}

/** "2.5" grams -> 2500000 ug; at most 6 decimals (one microgram). */
export function parseGramsToMicrograms(text: string): number | null {
  const m = /^(\d{1,9})(?:\.(\d{1,6}))?$/.exec(text.trim());
  if (!m) return null;
  return Number(m[1]) * UG_PER_GRAM + Number((m[2] ?? '').padEnd(6, '0'));
}

/** Gold a buyer gets for a payment: rounded down, so the pool never gives away a fraction it was not paid for. */
export function microgramsForCents(amountCents: number, priceCentsPerGram: number): number {
  assertSafeInt(amountCents, 'amountCents');
  assertSafeInt(priceCentsPerGram, 'priceCentsPerGram');
  if (priceCentsPerGram <= 0) throw new RangeError('price must be positive');
  return toSafeNumber((BigInt(amountCents) * BigInt(UG_PER_GRAM)) / BigInt(priceCentsPerGram));
}

/** Gold a seller must give up to receive `amountCents`: rounded UP, so the pool never pays for gold it did not get. */
export function microgramsForPayout(amountCents: number, priceCentsPerGram: number): number {
  assertSafeInt(amountCents, 'amountCents');
  assertSafeInt(priceCentsPerGram, 'priceCentsPerGram');
  if (priceCentsPerGram <= 0) throw new RangeError('price must be positive');
  const numerator = BigInt(amountCents) * BigInt(UG_PER_GRAM);
  const price = BigInt(priceCentsPerGram);
  return toSafeNumber((numerator + price - 1n) / price);
}

/** What gold is worth at a price, in cents: rounded DOWN (a valuation or a payout never overstates). */
export function centsForMicrograms(micrograms: number, priceCentsPerGram: number): number {
  assertSafeInt(micrograms, 'micrograms');
  assertSafeInt(priceCentsPerGram, 'priceCentsPerGram');
  return toSafeNumber((BigInt(micrograms) * BigInt(priceCentsPerGram)) / BigInt(UG_PER_GRAM));
}

/** Grams with exactly 4 decimals, truncated (never shows more gold than there is): 1176470 -> "1.1764". */
export function formatGrams(micrograms: number): string {
  assertSafeInt(micrograms, 'micrograms');
  const sign = micrograms < 0 ? '-' : '';
  const abs = Math.abs(micrograms);
  const whole = Math.floor(abs / UG_PER_GRAM);
  const tenThousandths = Math.floor((abs % UG_PER_GRAM) / 100);
  return `${sign}${whole}.${String(tenThousandths).padStart(4, '0')}`;
}

/** KES with thousands separators, cents only when there are some: 850050 -> "8,500.50", 50000 -> "500". */
export function formatKes(cents: number): string {
  assertSafeInt(cents, 'cents');
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(cents);
  const whole = String(Math.floor(abs / CENTS_PER_KES)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const rest = abs % CENTS_PER_KES;
  return rest === 0 ? `${sign}${whole}` : `${sign}${whole}.${String(rest).padStart(2, '0')}`;
}

function assertSafeInt(n: number, name: string): void {
  if (!Number.isSafeInteger(n)) throw new RangeError(`${name} must be a safe integer, got ${n}`);
}

function toSafeNumber(n: bigint): number {
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('amount out of safe integer range');
  return Number(n);
}
