import { ConfigError, loadConfig } from '../../src/config';
import { baseEnv } from '../support/harness';

describe('configuration', () => {
  test('a good environment gives typed values and defaults', () => {
    const c = loadConfig({ ...baseEnv(), GOLD_PRICE_KES_PER_GRAM: '8500.50', PORT: undefined, BUY_MIN_KES: undefined, BUY_MAX_KES: undefined });
    expect(c.port).toBe(3000);
    expect(c.gold.priceCentsPerGram).toBe(850_050);
    expect(c.buy).toEqual({ minKes: 10, maxKes: 150_000, dailyLimitKes: 300_000 });
    expect(c.mpesa.baseUrl).toBe('https://sandbox.safaricom.co.ke');
    expect(c.mpesa.partyB).toBe('174379');
    expect(c.mpesa.callbackPathPrefix).toBe('/mpesa/callback');
    expect(c.mpesa.callbackSecret).toBe('s3cr3t-Path-9f8e');
  });

  test('buy jobs per worker: 64 by default so reservations batch, settable, a positive integer', () => {
    expect(loadConfig(baseEnv()).jobs.buyConcurrency).toBe(64);
    expect(loadConfig({ ...baseEnv(), BUY_WORKER_CONCURRENCY: '128' }).jobs.buyConcurrency).toBe(128);
    expect(() => loadConfig({ ...baseEnv(), BUY_WORKER_CONCURRENCY: '0' })).toThrow(ConfigError);
  });

  test('production picks the production host; MPESA_BASE_URL overrides either', () => {
    expect(loadConfig({ ...baseEnv(), MPESA_ENVIRONMENT: 'production', AT_USERNAME: 'goldco' }).mpesa.baseUrl).toBe('https://api.safaricom.co.ke');
    expect(loadConfig({ ...baseEnv(), MPESA_BASE_URL: 'http://127.0.0.1:9999/' }).mpesa.baseUrl).toBe('http://127.0.0.1:9999');
  });

  test('every bad variable is named in one message', () => {
    const env = { ...baseEnv(), MPESA_PASSKEY: '', GOLD_PRICE_KES_PER_GRAM: '85.555', BUY_MIN_KES: 'ten', MPESA_ENVIRONMENT: 'live' };
    delete (env as Record<string, string | undefined>).AT_API_KEY;
    try {
      loadConfig(env);
      throw new Error('expected a ConfigError');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const names = (err as ConfigError).problems.map((p) => p.split(':')[0]);
      expect(names).toEqual(expect.arrayContaining(['MPESA_PASSKEY', 'GOLD_PRICE_KES_PER_GRAM', 'BUY_MIN_KES', 'MPESA_ENVIRONMENT', 'AT_API_KEY']));
    }
  });

  test('buy-goods needs a till number, and production needs an https callback', () => {
    expect(() => loadConfig({ ...baseEnv(), MPESA_TRANSACTION_TYPE: 'CustomerBuyGoodsOnline' })).toThrow(/MPESA_PARTY_B/);
    expect(() => loadConfig({ ...baseEnv(), MPESA_ENVIRONMENT: 'production', MPESA_CALLBACK_URL: 'http://x.example/mpesa/cb/secret' })).toThrow(/MPESA_CALLBACK_URL/);
    expect(loadConfig({ ...baseEnv(), MPESA_TRANSACTION_TYPE: 'CustomerBuyGoodsOnline', MPESA_PARTY_B: '600000' }).mpesa.partyB).toBe('600000');
  });

  test('a callback URL without a secret segment is refused', () => {
    expect(() => loadConfig({ ...baseEnv(), MPESA_CALLBACK_URL: 'https://x.example/callback' })).toThrow(/MPESA_CALLBACK_URL/);
  });

  test('with no credentials at all, it runs against the built-in emulators, on embedded Postgres, without Redis', () => {
    const c = loadConfig({ PORT: '4000' });
    expect(c.mpesa.environment).toBe('emulator');
    expect(c.mpesa.baseUrl).toBe('http://127.0.0.1:4000/emulators/daraja');
    expect(c.mpesa.callbackUrl).toBe('http://127.0.0.1:4000/mpesa/callback/emulator-callback');
    expect(c.at).toMatchObject({ emulator: true, apiUrl: 'http://127.0.0.1:4000/emulators/at' });
    expect(c.databaseUrl).toBeNull();
    expect(c.redisUrl).toBeNull();
    expect(c.ussd.serviceCode).toBe('*384*1#');
  });

  test('emulator mode with Africa\'s Talking credentials sends real SMS; any M-Pesa credential means the real sandbox', () => {
    expect(loadConfig({ AT_USERNAME: 'sandbox', AT_API_KEY: 'k' }).at).toMatchObject({ emulator: false, apiUrl: undefined, username: 'sandbox' });
    expect(() => loadConfig({ MPESA_CONSUMER_KEY: 'k' })).toThrow(/MPESA_CONSUMER_SECRET/);
  });

  test('production refuses emulator URLs and Africa\'s Talking\'s sandbox', () => {
    const prod = { ...baseEnv(), MPESA_ENVIRONMENT: 'production', AT_USERNAME: 'goldco' };
    expect(() => loadConfig({ ...prod, MPESA_BASE_URL: 'http://127.0.0.1:3000/emulators/daraja' })).toThrow(/MPESA_BASE_URL/);
    expect(() => loadConfig({ ...prod, AT_API_URL: 'http://localhost:3000/emulators/at' })).toThrow(/AT_API_URL/);
    expect(() => loadConfig({ ...prod, AT_USERNAME: 'sandbox' })).toThrow(/AT_USERNAME/);
    expect(() => loadConfig({ ...prod, MPESA_ENVIRONMENT: 'emulator', AT_USERNAME: 'goldco' })).not.toThrow();
  });

  test('scaling out needs a real database: the embedded one is for a single process', () => {
    const env = { ...baseEnv(), ROLE: 'web' } as Record<string, string | undefined>;
    delete env.DATABASE_URL;
    expect(() => loadConfig(env)).toThrow(/DATABASE_URL/);
    expect(loadConfig({ ...env, DATABASE_URL: 'postgres://x@h/db' }).role).toBe('web');
  });
});
