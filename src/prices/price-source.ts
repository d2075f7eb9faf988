import axios from 'axios';
import { z } from 'zod';
import type { KeyValueStore } from '../infra/kv-store';
import type { Logger } from '../lib/logger';
import { parseKesToCents } from '../lib/units';

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

/**
 * What the feed keeps in the shared store: the last ACCEPTED quote, and, while trading is paused, the
 * quote that jumped too far from it (kept for the operator to look at and accept).
 */
interface StoredPrices extends PriceQuote {
  paused?: { quote: PriceQuote; at: string };
}

/** A polled quote that moved too far from the last accepted one: trading is paused, nothing was used. */
export class PriceJump extends Error {
  constructor(readonly last: PriceQuote, readonly quote: PriceQuote, readonly maxMovePercent: number) {
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

/**
 * PRICE_PROVIDER=http: a background loop fetches PRICE_URL every PRICE_POLL_SECONDS and keeps the
 * latest good quote in the shared KeyValueStore, so every process (web and worker) reads the same
 * one and no USSD request ever waits on the feed. A quote older than PRICE_MAX_AGE_SECONDS is not
 * dealt at: buying, selling and the price screen say the price is unavailable.
 */
export class HttpPriceFeed implements PriceSource {
  readonly kind = 'http';
  constructor(
    private readonly kv: KeyValueStore,
    private readonly keyPrefix: string,
    private readonly url: string,
    private readonly pollSeconds: number,
    private readonly maxAgeSeconds: number,
    private readonly maxMovePercent: number,
  ) {}

  private get key() {
    return `${this.keyPrefix}:prices:latest`;
  }

  /** The quote to deal at: null when none is fresh enough, or while trading is paused after a jump. */
  async quote(now = new Date()): Promise<PriceQuote | null> {
    const stored = await this.stored();
    if (!stored || stored.paused) return null;
    const { paused: _none, ...quote } = stored;
    return now.getTime() - new Date(quote.asOf).getTime() > this.maxAgeSeconds * 1000 ? null : quote;
  }

  /** The last accepted quote and, while trading is paused, the quote that jumped (for operators). */
  async status(): Promise<{ accepted: PriceQuote | null; paused: { quote: PriceQuote; at: string } | null }> {
    const stored = await this.stored();
    if (!stored) return { accepted: null, paused: null };
    const { paused, ...accepted } = stored;
    return { accepted, paused: paused ?? null };
  }

  /**
   * One poll: fetch, check, store. Throws with a reason when the feed's answer cannot be used, and
   * PriceJump (after pausing trading) when it moved more than PRICE_MAX_MOVE_PERCENT from the last
   * accepted quote. A later answer back within that band of the accepted quote resumes trading.
   */
  async poll(now = () => new Date()): Promise<PriceQuote> {
    const res = await axios.get(this.url, { timeout: Math.min(10_000, this.pollSeconds * 1000), headers: { accept: 'application/json' }, validateStatus: () => true });
    if (res.status !== 200) throw new Error(`price feed answered HTTP ${res.status}`);
    const quote = parseFeedAnswer(res.data, now());
    if (typeof quote === 'string') throw new Error(`price feed answer not usable: ${quote}`);
    const stored = await this.stored();
    if (stored) {
      const { paused: _was, ...last } = stored;
      if (movedTooFar(last, quote, this.maxMovePercent)) {
        await this.store({ ...last, paused: { quote, at: now().toISOString() } });
        throw new PriceJump(last, quote, this.maxMovePercent);
      }
    }
    await this.store(quote);
    return quote;
  }

  /**
   * An operator's word that the paused quote is real (the market did move): it becomes the accepted
   * quote and trading resumes. Null when nothing is paused.
   */
  async acceptPaused(): Promise<PriceQuote | null> {
    const stored = await this.stored();
    if (!stored?.paused) return null;
    await this.store(stored.paused.quote);
    return stored.paused.quote;
  }

  private async stored(): Promise<StoredPrices | null> {
    const raw = await this.kv.get(this.key);
    return raw ? (JSON.parse(raw) as StoredPrices) : null;
  }

  private async store(prices: StoredPrices): Promise<void> {
    // Kept well beyond the maximum age: the last accepted quote is the baseline for the next jump check.
    await this.kv.set(this.key, JSON.stringify(prices), Math.max(this.maxAgeSeconds * 10, 86_400) * 1000);
  }

  /**
   * Polls now and then every PRICE_POLL_SECONDS. With several processes, a short lock in the shared
   * store lets one of them poll per interval.
   */
  startPolling(log: Logger, onJump: (jump: PriceJump) => Promise<void> = async () => {}): { close(): void } {
    const periodMs = this.pollSeconds * 1000;
    const lockKey = `${this.keyPrefix}:prices:poll-lock`;
    const me = `${process.pid}-${Math.random().toString(36).slice(2)}`;
    let running = false;
    const tick = async () => {
      if (running) return;
      running = true;
      try {
        if (!(await this.kv.setIfAbsent(lockKey, me, Math.max(500, periodMs - 250)))) return;
        const q = await this.poll();
        log.debug({ buy: q.buyCentsPerGram, sell: q.sellCentsPerGram, asOf: q.asOf }, 'gold price updated');
      } catch (err) {
        if (err instanceof PriceJump) await onJump(err).catch((e: Error) => log.error({ err: e.message }, 'price jump alert failed'));
        else log.warn({ err: (err as Error).message }, 'gold price poll failed');
      } finally {
        running = false;
      }
    };
    void tick();
    const timer = setInterval(tick, periodMs);
    return { close: () => clearInterval(timer) };
  }
}

export function createPriceSource(settings: PriceSettings, kv: KeyValueStore, keyPrefix: string): PriceSource {
  if (settings.provider === 'http') return new HttpPriceFeed(kv, keyPrefix, settings.url!, settings.pollSeconds, settings.maxAgeSeconds, settings.maxMovePercent);
  return new FixedPrices(settings.buyCentsPerGram!, settings.sellCentsPerGram!);
}
