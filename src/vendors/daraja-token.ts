import type { AxiosInstance } from 'axios';
import type { Redis } from 'ioredis';
import { classifyDarajaFailure, networkFailure, parseBody } from './daraja-errors';

const REFRESH_MARGIN_SECONDS = 60;
const LOCK_TTL_MS = 15_000;
const WAIT_STEP_MS = 50;

/**
 * Daraja invalidates the previous token each time a new one is issued, so every process shares ONE
 * token through Redis, and only one caller at a time may fetch a new one (a Redis lock); the others
 * wait for it to appear. Cached until 60 s before it expires.
 */
export class DarajaTokenCache {
  private readonly key: string;
  private readonly lockKey: string;

  constructor(
    private readonly redis: Redis,
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
      const cached = await this.redis.get(this.key);
      if (cached) return cached;
      const lockValue = `${process.pid}:${Math.random()}`;
      if (await this.redis.set(this.lockKey, lockValue, 'PX', LOCK_TTL_MS, 'NX')) {
        try {
          return await this.fetchAndStore();
        } finally {
          await this.redis.eval(COMPARE_AND_DELETE, 1, this.lockKey, lockValue);
        }
      }
      if (Date.now() > deadline) throw networkFailure({ code: 'token_wait_timeout', message: 'timed out waiting for a Daraja token' });
      await new Promise((r) => setTimeout(r, WAIT_STEP_MS));
    }
  }

  /** Drop a token Daraja rejected, unless another process already replaced it. */
  async invalidate(rejected: string): Promise<void> {
    await this.redis.eval(COMPARE_AND_DELETE, 1, this.key, rejected);
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
    await this.redis.set(this.key, token, 'EX', ttl);
    return token;
  }
}

const COMPARE_AND_DELETE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
