import { ConfigError, loadConfig } from '../../src/config';
import { baseEnv } from '../support/harness';

describe('configuration', () => {
  test('a good environment gives typed values and defaults', () => {
    const c = loadConfig({ ...baseEnv(), GOLD_PRICE_KES_PER_GRAM: '8500.50', PORT: undefined, BUY_MIN_KES: undefined, BUY_MAX_KES: undefined });
    expect(c.port).toBe(3000);
    expect(c.gold.priceCentsPerGram).toBe(850_050);
    expect(c.buy).toEqual({ minKes: 10, maxKes: 150_000 });
    expect(c.mpesa.baseUrl).toBe('https://sandbox.safaricom.co.ke');
    expect(c.mpesa.partyB).toBe('174379');
    expect(c.mpesa.callbackPathPrefix).toBe('/mpesa/callback');
    expect(c.mpesa.callbackSecret).toBe('s3cr3t-Path-9f8e');
  });

  test('production picks the production host; MPESA_BASE_URL overrides either', () => {
    expect(loadConfig({ ...baseEnv(), MPESA_ENVIRONMENT: 'production' }).mpesa.baseUrl).toBe('https://api.safaricom.co.ke');
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
});
