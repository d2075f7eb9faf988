import axios from 'axios';
import type { KeyValueStore } from '../infra/kv-store';
import type { Logger } from '../lib/logger';
import { FixedPrices, movedTooFar, parseFeedAnswer, PriceJump, type PriceQuote, type PriceSettings, type PriceSource } from './price-quote';

/**
 * What the feed keeps in the shared store: the last ACCEPTED quote, and, while trading is paused, the
 * quote that jumped too far from it (kept for the operator to look at and accept).
 */
interface StoredPrices extends PriceQuote {
  paused?: { quote: PriceQuote; at: string; since?: string };
  /**
   * The lowest and highest accepted prices of each hour of the last DRIFT_WINDOW_HOURS: every poll is
   * measured against all of them, so a feed cannot walk the price in steps just inside the band, and no
   * window boundary resets the count.
   */
  bands?: HourBand[];
}

interface HourBand {
  hour: number;
  minBuy: number;
  maxBuy: number;
  minSell: number;
  maxSell: number;
}

/** Over any DRIFT_WINDOW_HOURS the price moves at most PRICE_MAX_MOVE_PERCENT in total, however small its steps. */
export const DRIFT_WINDOW_HOURS = 24;
const HOUR_MS = 3600_000;

const hourOf = (at: Date) => Math.floor(at.getTime() / HOUR_MS);

/** The bands of the window ending at `at`, with `quote` (accepted now) counted in its hour. */
function withAccepted(bands: HourBand[], quote: PriceQuote, at: Date): HourBand[] {
  const hour = hourOf(at);
  const kept = bands.filter((b) => b.hour > hour - DRIFT_WINDOW_HOURS && b.hour !== hour);
  const current = bands.find((b) => b.hour === hour);
  const buy = quote.buyCentsPerGram;
  const sell = quote.sellCentsPerGram;
  const merged = current
    ? { hour, minBuy: Math.min(current.minBuy, buy), maxBuy: Math.max(current.maxBuy, buy), minSell: Math.min(current.minSell, sell), maxSell: Math.max(current.maxSell, sell) }
    : { hour, minBuy: buy, maxBuy: buy, minSell: sell, maxSell: sell };
  return [...kept, merged];
}

/** The accepted low or high of the window that `quote` moved too far from, as a quote (for the alert); null: within the band of all. */
function driftedFrom(bands: HourBand[], quote: PriceQuote, percent: number, at: Date): PriceQuote | null {
  const hour = hourOf(at);
  for (const b of bands.filter((x) => x.hour > hour - DRIFT_WINDOW_HOURS)) {
    const asOf = new Date(b.hour * HOUR_MS).toISOString();
    for (const edge of [{ buyCentsPerGram: b.minBuy, sellCentsPerGram: b.minSell, asOf }, { buyCentsPerGram: b.maxBuy, sellCentsPerGram: b.maxSell, asOf }]) {
      if (movedTooFar(edge, quote, percent)) return edge;
    }
  }
  return null;
}

/**
 * The accepted quote is the baseline of every later jump check, so it is kept (almost) for good: a
 * feed that is down for days must not come back to no baseline, where any quote would be taken.
 */
const BASELINE_TTL_MS = 365 * 86_400_000;

/** What an operator answered when accepting a paused quote. */
export type AcceptPaused =
  | { ok: true; accepted: PriceQuote }
  | { ok: false; error: 'not_paused' }
  /** The paused quote is no longer the one the operator saw (a later poll replaced it): look again. */
  | { ok: false; error: 'paused_quote_changed'; paused: PriceQuote };

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
    const quote = acceptedOf(stored);
    return now.getTime() - new Date(quote.asOf).getTime() > this.maxAgeSeconds * 1000 ? null : quote;
  }

  /** The last accepted quote and, while trading is paused, the quote that jumped (for operators). */
  async status(): Promise<{ accepted: PriceQuote | null; paused: { quote: PriceQuote; at: string } | null }> {
    const stored = await this.stored();
    if (!stored) return { accepted: null, paused: null };
    return { accepted: acceptedOf(stored), paused: stored.paused ?? null };
  }

  /**
   * One poll: fetch, check, store. Throws with a reason when the feed's answer cannot be used, and
   * PriceJump (after pausing trading) when it moved more than PRICE_MAX_MOVE_PERCENT from the last
   * accepted quote, or from the lowest or highest price accepted in the last DRIFT_WINDOW_HOURS (so
   * small steps cannot add up to a jump). A later answer back within the band resumes trading.
   */
  async poll(now = () => new Date()): Promise<PriceQuote> {
    return (await this.pollOnce(now)).quote;
  }

  /** poll, and whether the accepted quote ended a pause (the feed came back within the band by itself). */
  async pollOnce(now = () => new Date()): Promise<{ quote: PriceQuote; resumed: boolean }> {
    const res = await axios.get(this.url, { timeout: Math.min(10_000, this.pollSeconds * 1000), headers: { accept: 'application/json' }, validateStatus: () => true });
    if (res.status !== 200) throw new Error(`price feed answered HTTP ${res.status}`);
    const quote = parseFeedAnswer(res.data, now());
    if (typeof quote === 'string') throw new Error(`price feed answer not usable: ${quote}`);
    return this.whileWriting(async () => {
      const at = now();
      const stored = await this.stored();
      // Only a brand-new store (or one that lost its data) has no baseline: the first quote sets it.
      if (!stored) return { quote: await this.accept(quote, withAccepted([], quote, at)), resumed: false };
      const last = acceptedOf(stored);
      // A store written before the window existed starts it from the last accepted quote.
      const bands = stored.bands ?? withAccepted([], last, at);
      const from = movedTooFar(last, quote, this.maxMovePercent) ? last : driftedFrom(bands, quote, this.maxMovePercent, at);
      if (from) {
        const since = stored.paused?.since ?? stored.paused?.at ?? at.toISOString();
        await this.store({ ...last, bands, paused: { quote, at: at.toISOString(), since } });
        throw new PriceJump(from, quote, this.maxMovePercent, since);
      }
      return { quote: await this.accept(quote, withAccepted(bands, quote, at)), resumed: stored.paused !== undefined };
    });
  }

  /**
   * An operator's word that the paused quote is real (the market did move): it becomes the accepted
   * quote, and the window starts again from it (the operator vouches for the move), and trading resumes. With `seen` (the prices the
   * operator looked at), a paused quote that a later poll replaced is not accepted blindly.
   */
  async acceptPaused(seen?: { buyCentsPerGram: number; sellCentsPerGram: number }, now = new Date()): Promise<AcceptPaused> {
    return this.whileWriting(async () => {
      const stored = await this.stored();
      if (!stored?.paused) return { ok: false, error: 'not_paused' };
      const paused = stored.paused.quote;
      if (seen && (seen.buyCentsPerGram !== paused.buyCentsPerGram || seen.sellCentsPerGram !== paused.sellCentsPerGram)) {
        return { ok: false, error: 'paused_quote_changed', paused };
      }
      return { ok: true, accepted: await this.accept(paused, withAccepted([], paused, now)) };
    });
  }

  private async accept(quote: PriceQuote, bands: HourBand[]): Promise<PriceQuote> {
    await this.store({ ...quote, bands });
    return quote;
  }

  /**
   * Read-check-write of the stored prices, one writer at a time across processes (a poll and an
   * operator's accept must not interleave: either could otherwise undo the other).
   */
  private async whileWriting<T>(fn: () => Promise<T>): Promise<T> {
    const lock = `${this.keyPrefix}:prices:write-lock`;
    const me = `${process.pid}-${Math.random().toString(36).slice(2)}`;
    for (let i = 0; !(await this.kv.setIfAbsent(lock, me, 5_000)); i++) {
      if (i >= 100) throw new Error('the stored prices are busy: try again');
      await new Promise((r) => setTimeout(r, 20));
    }
    try {
      return await fn();
    } finally {
      await this.kv.deleteIfEquals(lock, me);
    }
  }

  private async stored(): Promise<StoredPrices | null> {
    const raw = await this.kv.get(this.key);
    return raw ? (JSON.parse(raw) as StoredPrices) : null;
  }

  private async store(prices: StoredPrices): Promise<void> {
    await this.kv.set(this.key, JSON.stringify(prices), BASELINE_TTL_MS);
  }

  /**
   * Polls now and then every PRICE_POLL_SECONDS. With several processes, a short lock in the shared
   * store lets one of them poll per interval.
   */
  startPolling(log: Logger, onJump: (jump: PriceJump) => Promise<void> = async () => {}, onResume: () => Promise<void> = async () => {}): { close(): void } {
    const periodMs = this.pollSeconds * 1000;
    const lockKey = `${this.keyPrefix}:prices:poll-lock`;
    const me = `${process.pid}-${Math.random().toString(36).slice(2)}`;
    let running = false;
    const tick = async () => {
      if (running) return;
      running = true;
      try {
        if (!(await this.kv.setIfAbsent(lockKey, me, Math.max(500, periodMs - 250)))) return;
        const { quote: q, resumed } = await this.pollOnce();
        log.debug({ buy: q.buyCentsPerGram, sell: q.sellCentsPerGram, asOf: q.asOf }, 'gold price updated');
        if (resumed) await onResume().catch((e: Error) => log.error({ err: e.message }, 'closing price jump alerts failed'));
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

/** The accepted quote itself, without what is kept beside it. */
function acceptedOf(stored: StoredPrices): PriceQuote {
  return { buyCentsPerGram: stored.buyCentsPerGram, sellCentsPerGram: stored.sellCentsPerGram, asOf: stored.asOf };
}

export function createPriceSource(settings: PriceSettings, kv: KeyValueStore, keyPrefix: string): PriceSource {
  if (settings.provider === 'http') return new HttpPriceFeed(kv, keyPrefix, settings.url!, settings.pollSeconds, settings.maxAgeSeconds, settings.maxMovePercent);
  return new FixedPrices(settings.buyCentsPerGram!, settings.sellCentsPerGram!);
}
