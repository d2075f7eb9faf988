import { ConfigError, loadConfig } from '../../src/config';
import { ipMatcher, parseIpList } from '../../src/lib/ip';
import { baseEnv } from '../support/harness';

describe('security settings', () => {
  test('when nothing is set, then X-Forwarded-For is ignored, there is no IP allowlist, and the limits have their defaults', () => {
    const c = loadConfig({ ...baseEnv(), STK_PUSHES_PER_HOUR: undefined, USSD_REQUESTS_PER_MINUTE: undefined });
    expect(c.http).toEqual({ trustProxy: false, callbackIpAllowlist: [] });
    expect(c.limits).toEqual({ stkPushesPerHour: 10, ussdRequestsPerMinute: 30 });
  });

  test('when the service runs on its emulators, then a sandbox user gets room for many test buys an hour (and can still set the limit)', () => {
    const emulator = { PORT: '0', STK_PUSHES_PER_HOUR: undefined };
    expect(loadConfig(emulator).limits.stkPushesPerHour).toBe(100);
    expect(loadConfig({ ...emulator, STK_PUSHES_PER_HOUR: '3' }).limits.stkPushesPerHour).toBe(3);
  });

  test.each([
    ['1', 1],
    ['false', false],
    ['loopback', ['loopback']],
    ['10.0.0.0/8, 172.16.0.1', ['10.0.0.0/8', '172.16.0.1']],
  ])('when TRUST_PROXY is %p, then express gets %p', (value, expected) => {
    expect(loadConfig({ ...baseEnv(), TRUST_PROXY: value }).http.trustProxy).toEqual(expected);
  });

  test.each(['true', 'TRUE', 'proxy.example.com', '10.0.0.0/33'])('when TRUST_PROXY is %p, then start-up refuses it', (value) => {
    expect(() => loadConfig({ ...baseEnv(), TRUST_PROXY: value })).toThrow(/TRUST_PROXY/);
  });

  test('when MPESA_CALLBACK_IP_ALLOWLIST has a bad entry, then start-up names it', () => {
    expect(() => loadConfig({ ...baseEnv(), MPESA_CALLBACK_IP_ALLOWLIST: '196.201.214.0/24, safaricom.com, 1.2.3.4/40' })).toThrow(
      /MPESA_CALLBACK_IP_ALLOWLIST: not an IP address or CIDR range: safaricom\.com, 1\.2\.3\.4\/40/,
    );
  });

  test('when addresses are checked against the allowlist, then single addresses, IPv4 and IPv6 ranges and IPv4-mapped addresses match exactly', () => {
    const { ranges, invalid } = parseIpList('196.201.214.200, 196.201.212.0/24, 2001:db8::/32');
    expect(invalid).toEqual([]);
    const allowed = ipMatcher(ranges);
    expect(allowed('196.201.214.200')).toBe(true);
    expect(allowed('196.201.214.201')).toBe(false);
    expect(allowed('196.201.212.77')).toBe(true);
    expect(allowed('::ffff:196.201.212.77')).toBe(true);
    expect(allowed('196.201.213.1')).toBe(false);
    expect(allowed('2001:db8:1::5')).toBe(true);
    expect(allowed('2001:db9::5')).toBe(false);
    expect(allowed(undefined)).toBe(false);
    expect(allowed('not-an-ip')).toBe(false);
  });
});

/** The start-up problems, one per line as the ConfigError lists them. */
function problems(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

describe("Africa's Talking callback secret", () => {
  test('when it is set, then the config holds it and its allowlist (empty unless set)', () => {
    const c = loadConfig({ ...baseEnv(), AT_CALLBACK_SECRET: 'Abc_def-0123456789', AT_CALLBACK_IP_ALLOWLIST: '192.0.2.0/24, 198.51.100.7' });
    expect(c.at.callbackSecret).toBe('Abc_def-0123456789');
    expect(c.at.callbackIpAllowlist).toHaveLength(2);
    expect(loadConfig(baseEnv()).at.callbackIpAllowlist).toEqual([]);
  });

  test.each(['sandbox', 'production'])('when MPESA_ENVIRONMENT is %s and it is missing, then start-up stops naming it', (environment) => {
    const env = { ...baseEnv(), MPESA_ENVIRONMENT: environment, AT_USERNAME: 'goldco', AT_CALLBACK_SECRET: undefined };
    expect(problems(env)).toEqual([expect.stringMatching(/^AT_CALLBACK_SECRET: is required with MPESA_ENVIRONMENT=/)]);
    expect(problems({ ...env, AT_CALLBACK_SECRET: '   ' })).toEqual([expect.stringMatching(/^AT_CALLBACK_SECRET: is required/)]);
  });

  test.each([
    ['15 characters', 'a'.repeat(15)],
    ['the word callback', 'callback'],
    ['a slash', 'abcdefgh/ijklmnopq'],
    ['a dot', 'abcdefgh.ijklmnopq'],
    ['a percent escape', 'abcdefgh%20ijklmnopq'],
    ['a space inside', 'abcdefgh ijklmnopq'],
  ])('when it has %s, then start-up refuses it', (_what, secret) => {
    expect(problems({ ...baseEnv(), AT_CALLBACK_SECRET: secret })).toEqual([expect.stringMatching(/^AT_CALLBACK_SECRET: must be at least 16 characters from A-Z a-z 0-9 _ -/)]);
  });

  test('when it is 16 characters of the allowed set, then it is taken', () => {
    expect(loadConfig({ ...baseEnv(), AT_CALLBACK_SECRET: 'Aa0_-Aa0_-Aa0_-A' }).at.callbackSecret).toBe('Aa0_-Aa0_-Aa0_-A');
  });

  test('when the service runs on its emulators without one, then the config leaves it to the sandbox (runService makes one)', () => {
    expect(loadConfig({ PORT: '0' }).at.callbackSecret).toBeNull();
  });

  test('when AT_CALLBACK_IP_ALLOWLIST has a bad entry, then start-up names it', () => {
    expect(problems({ ...baseEnv(), AT_CALLBACK_IP_ALLOWLIST: '192.0.2.0/24, africastalking.com' })).toEqual(['AT_CALLBACK_IP_ALLOWLIST: not an IP address or CIDR range: africastalking.com']);
  });
});

describe('Daraja callback secrets outside the emulator', () => {
  const b2c = (secret: string) => ({
    MPESA_B2C_SHORTCODE: '600996',
    MPESA_INITIATOR_NAME: 'api',
    MPESA_INITIATOR_PASSWORD: 'pw',
    MPESA_B2C_CERT_PATH: '/nonexistent.pem',
    MPESA_B2C_RESULT_URL: `https://w.example/mpesa/b2c/result/${secret}`,
    MPESA_B2C_TIMEOUT_URL: `https://w.example/mpesa/b2c/timeout/${secret}`,
    MPESA_B2C_STATUS_RESULT_URL: `https://w.example/mpesa/b2c/status/${secret}`,
  });

  test.each(['sandbox', 'production'])('when MPESA_ENVIRONMENT is %s, then a callback URL whose secret is `callback` or 15 characters is refused, each by name', (environment) => {
    const env = { ...baseEnv(), MPESA_ENVIRONMENT: environment, AT_USERNAME: 'goldco', MPESA_CALLBACK_URL: 'https://w.example/mpesa/stk/callback' };
    expect(problems(env)).toEqual(['MPESA_CALLBACK_URL: its last path segment is the secret: at least 16 characters (e.g. openssl rand -hex 16)']);
    expect(problems({ ...env, MPESA_CALLBACK_URL: `https://w.example/mpesa/callback/${'x'.repeat(15)}` })).toHaveLength(1);
    expect(problems({ ...env, MPESA_CALLBACK_URL: `https://w.example/mpesa/callback/${'x'.repeat(16)}` })).toEqual([]);
    // The certificate is read only once the schema passes: its problem shows that the secrets did.
    expect(problems({ ...env, MPESA_CALLBACK_URL: `https://w.example/mpesa/callback/${'x'.repeat(16)}`, ...b2c('short-secret') }).map((p) => p.split(':')[0])).toEqual([
      'MPESA_B2C_RESULT_URL',
      'MPESA_B2C_TIMEOUT_URL',
      'MPESA_B2C_STATUS_RESULT_URL',
    ]);
    expect(problems({ ...env, MPESA_CALLBACK_URL: `https://w.example/mpesa/callback/${'x'.repeat(16)}`, ...b2c('y'.repeat(16)) })).toEqual([
      expect.stringMatching(/^MPESA_B2C_CERT_PATH: cannot read/),
    ]);
  });

  test('when the service runs on its emulators, then its own short callback paths are accepted', () => {
    expect(loadConfig({ PORT: '0' }).mpesa.callbackSecret).toBe('emulator-callback');
  });
});

describe('PRICE_URL', () => {
  const http = { PRICE_PROVIDER: 'http', GOLD_PRICE_KES_PER_GRAM: undefined };
  test('when MPESA_ENVIRONMENT is production, then an http price feed is refused and an https one taken', () => {
    const prod = { ...baseEnv(), ...http, MPESA_ENVIRONMENT: 'production', AT_USERNAME: 'goldco' };
    expect(problems({ ...prod, PRICE_URL: 'http://prices.example/gold' })).toEqual(['PRICE_URL: must be https in production']);
    expect(loadConfig({ ...prod, PRICE_URL: 'https://prices.example/gold' }).prices.url).toBe('https://prices.example/gold');
  });

  test('when MPESA_ENVIRONMENT is sandbox, then an http feed (a local stand-in) is still allowed', () => {
    expect(loadConfig({ ...baseEnv(), ...http, PRICE_URL: 'http://127.0.0.1:9000/gold' }).prices.url).toBe('http://127.0.0.1:9000/gold');
  });
});

describe('never emulate by accident', () => {
  const DB = 'postgres://postgres@db.internal:5432/gold';

  test('when nothing at all is configured, then it is the embedded sandbox on the emulators', () => {
    expect(loadConfig({}).mpesa.environment).toBe('emulator');
  });

  test('when MPESA_ENVIRONMENT=emulator is set with a DATABASE_URL, then it is emulator mode', () => {
    expect(loadConfig({ DATABASE_URL: DB, MPESA_ENVIRONMENT: 'emulator' }).mpesa.environment).toBe('emulator');
  });

  test('when a DATABASE_URL is given without MPESA_ENVIRONMENT or M-Pesa variables, then start-up stops naming each missing one', () => {
    const names = problems({ DATABASE_URL: DB }).map((p) => p.split(':')[0]);
    expect(names).toEqual(expect.arrayContaining(['MPESA_CONSUMER_KEY', 'MPESA_CONSUMER_SECRET', 'MPESA_BUSINESS_SHORTCODE', 'MPESA_PASSKEY', 'MPESA_CALLBACK_URL', 'AT_USERNAME', 'AT_API_KEY', 'AT_CALLBACK_SECRET', 'USSD_SERVICE_CODE']));
    expect(names).not.toContain('MPESA_ENVIRONMENT');
  });

  test.each([
    ['nothing else configured', {}],
    ['a DATABASE_URL and MPESA_ENVIRONMENT=emulator', { DATABASE_URL: DB, MPESA_ENVIRONMENT: 'emulator' }],
    ['MPESA_ENVIRONMENT=emulator and Africa\'s Talking credentials', { MPESA_ENVIRONMENT: 'emulator', AT_USERNAME: 'goldco', AT_API_KEY: 'k' }],
  ])('when NODE_ENV=production with %s, then start-up refuses emulator mode', (_what, env) => {
    expect(problems({ NODE_ENV: 'production', ...env })).toEqual([expect.stringMatching(/^MPESA_ENVIRONMENT: emulator mode is refused with NODE_ENV=production/)]);
  });

  test('when NODE_ENV=production has a real configuration, then it starts', () => {
    expect(loadConfig({ ...baseEnv(), NODE_ENV: 'production', MPESA_ENVIRONMENT: 'production', AT_USERNAME: 'goldco' }).mpesa.environment).toBe('production');
  });
});

describe('OPS_QUEUES_WRITABLE', () => {
  test('when unset, then Bull Board is read-only; 1 makes it writable; anything else is refused', () => {
    expect(loadConfig(baseEnv()).ops.queuesWritable).toBe(false);
    expect(loadConfig({ ...baseEnv(), OPS_QUEUES_WRITABLE: '1' }).ops.queuesWritable).toBe(true);
    expect(loadConfig({ ...baseEnv(), OPS_QUEUES_WRITABLE: '0' }).ops.queuesWritable).toBe(false);
    expect(problems({ ...baseEnv(), OPS_QUEUES_WRITABLE: 'yes' })).toEqual([expect.stringMatching(/^OPS_QUEUES_WRITABLE: /)]);
  });
});
