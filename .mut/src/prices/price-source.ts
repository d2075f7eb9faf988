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
  ) {}

  private get key() {
    return `${this.keyPrefix}:prices:latest`;
  }

  async quote(now = new Date()): Promise<PriceQuote | null> {
    const raw = await this.kv.get(this.key);
    if (!raw) return null;
    const quote = JSON.parse(raw) as PriceQuote;
    return now.getTime() - new Date(quote.asOf).getTime() > this.maxAgeSeconds * 1000 ? null : quote;
  }

  /** One poll: fetch, check, store. Throws with a reason when the feed's answer cannot be used. */
  async poll(now = () => new Date()): Promise<PriceQuote> {
    const res = await axios.get(this.url, { timeout: Math.min(10_000, this.pollSeconds * 1000), headers: { accept: 'application/json' }, validateStatus: () => true });
    if (res.status !== 200) throw new Error(`price feed answered HTTP ${res.status}`);
    const quote = parseFeedAnswer(res.data, now());
    if (typeof quote === 'string') throw new Error(`price feed answer not usable: ${quote}`);
    // Kept well beyond the maximum age: an old quote is still worth seeing in the store when debugging.
    await this.kv.set(this.key, JSON.stringify(quote), Math.max(this.maxAgeSeconds * 10, 86_400) * 1000);
    return quote;
  }

  /**
   * Polls now and then every PRICE_POLL_SECONDS. With several processes, a short lock in the shared
   * store lets one of them poll per interval.
   */
  startPolling(log: Logger): { close(): void } {
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
        log.warn({ err: (err as Error).message }, 'gold price poll failed');
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
  if (settings.provider === 'http') return new HttpPriceFeed(kv, keyPrefix, settings.url!, settings.pollSeconds, settings.maxAgeSeconds);
  return new FixedPrices(settings.buyCentsPerGram!, settings.sellCentsPerGram!);
}
