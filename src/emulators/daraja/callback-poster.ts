import axios from 'axios';
import type { Logger } from '../../lib/logger';

const CALLBACK_TIMEOUT_MS = 5_000;

/**
 * Timers and outbound callbacks for the asynchronous APIs, all cancelled by close(). Like Safaricom:
 * one attempt per callback, no retry, failures only logged.
 */
export class CallbackPoster {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<AbortController>();
  private readonly http = axios.create({ timeout: CALLBACK_TIMEOUT_MS, validateStatus: () => true });
  private closed = false;

  constructor(private readonly log: Logger) {}

  get isClosed(): boolean {
    return this.closed;
  }

  later(ms: number, fn: () => void | Promise<void>): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      void fn();
    }, ms);
    // A forgotten close() must not keep a process (or jest) alive.
    t.unref();
    this.timers.add(t);
  }

  /** Posts `body` as JSON `times` times in a row (duplicated callbacks), stopping if closed meanwhile. */
  async post(url: string, body: unknown, context: Record<string, unknown>, times = 1): Promise<void> {
    for (let i = 0; i < times && !this.closed; i++) {
      const answer = await this.request(url, body);
      if ('status' in answer) this.log.info({ ...context, status: answer.status }, 'emulator: callback posted');
      else if (!answer.aborted) this.log.warn({ ...context, err: answer.error }, 'emulator: callback failed');
    }
  }

  /** One POST of `body` as JSON, cancelled by close(): the answer, or why there is none. */
  async request(url: string, body: unknown): Promise<{ status: number; data: unknown } | { error: string; aborted: boolean }> {
    if (this.closed) return { error: 'closed', aborted: true };
    const abort = new AbortController();
    this.inFlight.add(abort);
    try {
      const res = await this.http.post(url, body, { signal: abort.signal, headers: { 'Content-Type': 'application/json' } });
      return { status: res.status, data: res.data };
    } catch (err) {
      return { error: (err as Error).message, aborted: abort.signal.aborted };
    } finally {
      this.inFlight.delete(abort);
    }
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const c of this.inFlight) c.abort();
    this.inFlight.clear();
  }
}
