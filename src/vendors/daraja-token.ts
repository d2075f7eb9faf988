import type { AxiosInstance } from 'axios';
import type { KeyValueStore } from '../infra/kv-store';
import { classifyDarajaFailure, networkFailure, parseBody } from './daraja-errors';

const REFRESH_MARGIN_SECONDS = 60;
const LOCK_TTL_MS = 15_000;
const WAIT_STEP_MS = 50;

/**
 * Daraja invalidates the previous token each time a new one is issued, so every process shares ONE
 * token through the shared store (Redis, or Postgres without it), and only one caller at a time may
 * fetch a new one (a lock in the same store); the others wait for it to appear. Cached until 60 s
 * before it expires.
 *
 * Callers that ask at the same moment share one read of the store (single flight: a worker's concurrent buy jobs
 * made one Redis round trip each). Only that read is shared: each caller takes the lock, fetches or waits on its own,
 * within its own deadline. Nothing is kept once the read settles: a token deleted from the store (by an operator or
 * a test, to force a refresh) is missed only by reads already under way, and a caller that invalidated a token never
 * joins a read that began before its delete was done.
 */
export class DarajaTokenCache {
  private readonly key: string;
  private readonly lockKey: string;
  /** The read of the store under way, and the number of invalidations done when it began. */
  private shared: { invalidations: number; read: Promise<string | null> } | null = null;
  private invalidations = 0;

  constructor(
    private readonly store: KeyValueStore,
    private readonly http: AxiosInstance,
    private readonly credentials: { consumerKey: string; consumerSecret: string },
    keyPrefix: string,
  ) {
    this.key = `${keyPrefix}:daraja:token`;
    this.lockKey = `${keyPrefix}:daraja:token:lock`;
  }

  async get(): Promise<string> {
    const deadline = Date.now() + LOCK_TTL_MS;
    for (;;) {
      const cached = await this.readShared();
      if (cached) return cached;
      const lockValue = `${process.pid}:${Math.random()}`;
      if (await this.store.setIfAbsent(this.lockKey, lockValue, LOCK_TTL_MS)) {
        try {
          return await this.fetchAndStore();
        } finally {
          await this.store.deleteIfEquals(this.lockKey, lockValue);
        }
      }
      if (Date.now() > deadline) throw networkFailure({ code: 'token_wait_timeout', message: 'timed out waiting for a Daraja token' });
      await new Promise((r) => setTimeout(r, WAIT_STEP_MS));
    }
  }

  /** Drop a token Daraja rejected, unless another process already replaced it. */
  async invalidate(rejected: string): Promise<void> {
    try {
      await this.store.deleteIfEquals(this.key, rejected);
    } finally {
      // Counted once the delete is done: a read begun before then may still return the rejected token.
      this.invalidations++;
    }
  }

  /** The stored token, read once for the callers that ask while the read is under way. */
  private readShared(): Promise<string | null> {
    if (this.shared && this.shared.invalidations === this.invalidations) return this.shared.read;
    const read = this.store.get(this.key);
    const shared = { invalidations: this.invalidations, read };
    this.shared = shared;
    const done = () => {
      if (this.shared === shared) this.shared = null;
    };
    read.then(done, done);
    return read;
  }

  private async fetchAndStore(): Promise<string> {
    const basic = Buffer.from(`${this.credentials.consumerKey}:${this.credentials.consumerSecret}`).toString('base64');
    let res;
    try {
      res = await this.http.get('/oauth/v1/generate', {
        params: { grant_type: 'client_credentials' },
        headers: { Authorization: `Basic ${basic}` },
      });
    } catch (err) {
      throw networkFailure(err);
    }
    const body = parseBody(res.data) as { access_token?: unknown; expires_in?: unknown };
    const token = typeof body?.access_token === 'string' ? body.access_token : undefined;
    // Older answers send expires_in as a string.
    const expiresIn = Number(body?.expires_in);
    if (res.status !== 200 || !token || !Number.isFinite(expiresIn)) throw classifyDarajaFailure(res.status, body);
    const ttl = Math.max(1, Math.floor(expiresIn) - REFRESH_MARGIN_SECONDS);
    await this.store.set(this.key, token, ttl * 1000);
    return token;
  }
}
