import { z } from 'zod';
import { parseKesToCents } from '../lib/units';

/** Prices as the service deals at them: quotes in integer cents, where they come from, and the jump rule. */

/** A buy and a sell price, in integer cents per gram, and when the source set them. */
export interface PriceQuote {
  buyCentsPerGram: number;
  sellCentsPerGram: number;
  /** ISO 8601: when the price was set at its source. */
  asOf: string;
}

/** Where prices come from. `quote` answers null when there is no price fresh enough to deal at. */
export interface PriceSource {
  readonly kind: 'fixed' | 'http';
  quote(now?: Date): Promise<PriceQuote | null>;
}

export interface PriceSettings {
  provider: 'fixed' | 'http';
  buyCentsPerGram: number | null;
  sellCentsPerGram: number | null;
  url: string | null;
  pollSeconds: number;
  maxAgeSeconds: number;
  /** A polled quote this far (percent) from the last accepted one pauses trading instead of being used. */
  maxMovePercent: number;
}

/** A polled quote that moved too far from the last accepted one: trading is paused, nothing was used. */
export class PriceJump extends Error {
  /** `since`: when this pause began (polls while paused keep it), one alert per pause. */
  constructor(readonly last: PriceQuote, readonly quote: PriceQuote, readonly maxMovePercent: number, readonly since: string = quote.asOf) {
    super(`price feed moved more than ${maxMovePercent}% from the last accepted quote: trading paused`);
    this.name = 'PriceJump';
  }
}

/**
 * True when buy or sell moved more than `percent` from `last` (integer math: |new - old| * 100 > old * percent).
 * A feed that suddenly says KES 1/g would let anyone buy the pool cheaply and sell it back at the
 * restored price; a real move that large is rare enough for a person to confirm.
 */
export function movedTooFar(last: PriceQuote, next: PriceQuote, percent: number): boolean {
  const jumped = (before: number, after: number) => Math.abs(after - before) * 100 > before * percent;
  return jumped(last.buyCentsPerGram, next.buyCentsPerGram) || jumped(last.sellCentsPerGram, next.sellCentsPerGram);
}

/** PRICE_PROVIDER=fixed: the configured prices, set when the service started; they do not age. */
export class FixedPrices implements PriceSource {
  readonly kind = 'fixed';
  private readonly setAt = new Date().toISOString();
  constructor(private readonly buyCentsPerGram: number, private readonly sellCentsPerGram: number) {}
  async quote(): Promise<PriceQuote> {
    return { buyCentsPerGram: this.buyCentsPerGram, sellCentsPerGram: this.sellCentsPerGram, asOf: this.setAt };
  }
}

/**
 * The JSON that PRICE_URL must answer. Prices are decimal STRINGS ("8500.50"), parsed to cents
 * without ever becoming floating point; `asOf` (optional, ISO 8601 with a zone) is when the source
 * set them, and defaults to the moment we fetched them.
 */
const feedAnswer = z.object({
  buyKesPerGram: z.string(),
  sellKesPerGram: z.string(),
  asOf: z.iso.datetime({ offset: true }).optional(),
});

/** Parses one answer of the price feed, or says what is wrong with it. */
export function parseFeedAnswer(body: unknown, fetchedAt: Date): PriceQuote | string {
  const parsed = feedAnswer.safeParse(body);
  if (!parsed.success) return 'expected {"buyKesPerGram":"8500.00","sellKesPerGram":"8245.00","asOf":"<ISO 8601>"}';
  const buy = parseKesToCents(parsed.data.buyKesPerGram);
  const sell = parseKesToCents(parsed.data.sellKesPerGram);
  if (!buy || !sell) return 'prices must be positive KES amounts with at most 2 decimals';
  // Selling above the buying price would let anyone buy and sell back at a profit.
  if (sell > buy) return 'the sell price is above the buy price';
  const asOf = parsed.data.asOf ? new Date(parsed.data.asOf) : fetchedAt;
  if (asOf.getTime() > fetchedAt.getTime() + 5 * 60_000) return 'asOf is in the future';
  return { buyCentsPerGram: buy, sellCentsPerGram: sell, asOf: asOf.toISOString() };
}
