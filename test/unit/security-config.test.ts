import { loadConfig } from '../../src/config';
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
