import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bindEmulatorUrls, bundledCertificatePath, ConfigError, loadConfig } from '../../src/config';
import { describeCertificate } from '../../src/vendors/b2c-certificate';
import { securityCredential } from '../../src/vendors/daraja-security-credential';
import { baseEnv } from '../support/harness';

/** The sell side of the configuration: B2C all-or-nothing, its certificate and callback URLs, sell and daily limits. */

const dir = mkdtempSync(path.join(tmpdir(), 'gold-config-b2c-'));
const CERT = path.join(dir, 'cert.pem');
const PUBLIC_PEM = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
writeFileSync(CERT, PUBLIC_PEM);
writeFileSync(path.join(dir, 'not-a-cert.txt'), 'hello');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const B2C = {
  MPESA_B2C_SHORTCODE: '600996',
  MPESA_INITIATOR_NAME: 'goldwallet_api',
  MPESA_INITIATOR_PASSWORD: ' pass with spaces ',
  MPESA_B2C_CERT_PATH: CERT,
  MPESA_B2C_RESULT_URL: 'https://wallet.example.com/mpesa/b2c/result/r-secret-0123456789',
  MPESA_B2C_TIMEOUT_URL: 'https://wallet.example.com/mpesa/b2c/timeout/t-secret-0123456789',
  MPESA_B2C_STATUS_RESULT_URL: 'https://wallet.example.com/mpesa/b2c/status/s-secret-0123456789',
};

function problems(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('configuration: selling (B2C) and daily limits', () => {
  test('when no B2C variable is set, then selling is off and the sell and daily limits take their defaults', () => {
    const c = loadConfig(baseEnv());
    expect(c.b2c).toBeNull();
    expect(c.sell).toEqual({ minKes: 10, maxKes: 150_000, dailyLimitKes: 150_000 });
    expect(c.buy.dailyLimitKes).toBe(300_000);
    expect(c.payouts).toEqual({ resultWaitSeconds: 300, statusChecks: 6 });
  });

  test('when every B2C variable is set, then the certificate is read once and each callback route is its path and secret', () => {
    const c = loadConfig({ ...baseEnv(), ...B2C });
    expect(c.b2c).toEqual({
      shortcode: '600996',
      initiatorName: 'goldwallet_api',
      initiatorPassword: ' pass with spaces ',
      certificatePem: PUBLIC_PEM,
      certificateSource: 'MPESA_B2C_CERT_PATH',
      resultUrl: B2C.MPESA_B2C_RESULT_URL,
      timeoutUrl: B2C.MPESA_B2C_TIMEOUT_URL,
      statusResultUrl: B2C.MPESA_B2C_STATUS_RESULT_URL,
      resultRoute: { pathPrefix: '/mpesa/b2c/result', secret: 'r-secret-0123456789' },
      timeoutRoute: { pathPrefix: '/mpesa/b2c/timeout', secret: 't-secret-0123456789' },
      statusResultRoute: { pathPrefix: '/mpesa/b2c/status', secret: 's-secret-0123456789' },
    });
  });

  test('when MPESA_B2C_STATUS_RESULT_URL is not set, then it is derived from the result URL: same host and secret, a path of its own', () => {
    const { MPESA_B2C_STATUS_RESULT_URL: _given, ...six } = B2C;
    const c = loadConfig({ ...baseEnv(), ...six });
    expect(c.b2c).toMatchObject({
      statusResultUrl: 'https://wallet.example.com/mpesa/b2c/status/r-secret-0123456789',
      statusResultRoute: { pathPrefix: '/mpesa/b2c/status', secret: 'r-secret-0123456789' },
    });
    // A result path that does not end in /result gets /status under it.
    const other = loadConfig({ ...baseEnv(), ...six, MPESA_B2C_RESULT_URL: 'https://wallet.example.com/hooks/b2c/r-secret-0123456789' });
    expect(other.b2c).toMatchObject({ statusResultRoute: { pathPrefix: '/hooks/b2c/status', secret: 'r-secret-0123456789' } });
    expect(other.b2c!.resultRoute.pathPrefix).toBe('/hooks/b2c');
  });

  test('when only some B2C variables are set, then every missing one is named', () => {
    const found = problems({ ...baseEnv(), MPESA_B2C_SHORTCODE: '600996', MPESA_INITIATOR_NAME: 'api' });
    expect(found.map((p) => p.split(':')[0]).sort()).toEqual(
      ['MPESA_B2C_RESULT_URL', 'MPESA_B2C_STATUS_RESULT_URL', 'MPESA_B2C_TIMEOUT_URL', 'MPESA_INITIATOR_PASSWORD'].sort(),
    );
  });

  test.each([
    ['sandbox', 'apicrypt.safaricom.co.ke', 'A5:42:C3:C6:7B:59:8A:33:7A:1C:C7:41:E5:43:4C:70:DE:56:50:81:E5:C8:53:E0:5A:51:C8:43:76:47:66:F0'],
    ['production', 'apigee.apicaller.safaricom.co.ke', '94:17:91:52:12:AC:70:8D:3A:C8:2B:71:0E:71:D9:76:FA:0E:B7:83:F4:67:B1:59:C1:5A:D7:21:6E:F2:C1:6B'],
  ])('when MPESA_B2C_CERT_PATH is not set in %s, then Safaricom\'s certificate shipped in certs/ is used (pinned: %s)', (environment, cn, sha256) => {
    // The six settings an integrator starts with: no certificate file, no status result URL (derived).
    const { MPESA_B2C_CERT_PATH: _none, MPESA_B2C_STATUS_RESULT_URL: _derived, ...withoutPath } = B2C;
    const env = { ...baseEnv(), ...withoutPath, MPESA_ENVIRONMENT: environment, ...(environment === 'production' ? { AT_USERNAME: 'goldco' } : {}) };
    const c = loadConfig(env);
    expect(c.b2c!.certificateSource).toBe('bundled');
    expect(c.b2c!.certificatePem).toBe(readFileSync(bundledCertificatePath(environment as 'sandbox' | 'production'), 'utf8'));
    // The shipped files are what certs/README.md says they are: a changed file fails here.
    expect(describeCertificate(c.b2c!.certificatePem!)).toMatchObject({ subject: cn, sha256 });
    // And they encrypt an initiator password the way Daraja expects (RSA PKCS#1 v1.5 to 256 bytes).
    expect(Buffer.from(securityCredential('Safaricom999!*!', c.b2c!.certificatePem!), 'base64')).toHaveLength(256);
  });

  test('when the certificate cannot be read or is not a PEM, then start-up stops naming MPESA_B2C_CERT_PATH', () => {
    expect(problems({ ...baseEnv(), ...B2C, MPESA_B2C_CERT_PATH: path.join(dir, 'missing.pem') })).toEqual([expect.stringMatching(/^MPESA_B2C_CERT_PATH: cannot read .*missing\.pem \(ENOENT\)$/)]);
    expect(problems({ ...baseEnv(), ...B2C, MPESA_B2C_CERT_PATH: path.join(dir, 'not-a-cert.txt') })).toEqual([expect.stringMatching(/^MPESA_B2C_CERT_PATH: .* is not a PEM certificate/)]);
  });

  test('when a B2C URL has no secret segment, shares a path with another callback, or is http in production, then it is refused', () => {
    expect(problems({ ...baseEnv(), ...B2C, MPESA_B2C_RESULT_URL: 'https://wallet.example.com/result' })).toEqual([expect.stringMatching(/^MPESA_B2C_RESULT_URL: needs a path with at least two segments/)]);
    expect(problems({ ...baseEnv(), ...B2C, MPESA_B2C_TIMEOUT_URL: 'https://wallet.example.com/mpesa/b2c/result/other-0123456789ab' })).toEqual([
      'MPESA_B2C_TIMEOUT_URL: needs a path of its own: MPESA_B2C_RESULT_URL already uses /mpesa/b2c/result/<secret>',
    ]);
    expect(problems({ ...baseEnv(), ...B2C, MPESA_B2C_RESULT_URL: 'https://wallet.example.com/mpesa/callback/x' })[0]).toMatch(/MPESA_CALLBACK_URL already uses \/mpesa\/callback/);
    const prod = { ...baseEnv(), ...B2C, MPESA_ENVIRONMENT: 'production', AT_USERNAME: 'goldco' };
    expect(problems({ ...prod, MPESA_B2C_STATUS_RESULT_URL: 'http://wallet.example.com/mpesa/b2c/status/s-0123456789abcdef' })).toEqual(['MPESA_B2C_STATUS_RESULT_URL: must be https in production']);
  });

  test('when sell amounts leave what B2C pays (KES 10 to 250,000) or cross, then they are refused', () => {
    expect(problems({ ...baseEnv(), SELL_MIN_KES: '5' })).toEqual(['SELL_MIN_KES: M-Pesa B2C pays at least KES 10']);
    expect(problems({ ...baseEnv(), SELL_MAX_KES: '250001' })).toEqual(['SELL_MAX_KES: M-Pesa B2C pays at most KES 250,000 per transaction']);
    expect(problems({ ...baseEnv(), SELL_MIN_KES: '500', SELL_MAX_KES: '100' })).toEqual(['SELL_MIN_KES: must not exceed SELL_MAX_KES']);
    expect(problems({ ...baseEnv(), BUY_DAILY_LIMIT_KES: '0', SELL_DAILY_LIMIT_KES: '1.5' }).map((p) => p.split(':')[0]).sort()).toEqual(['BUY_DAILY_LIMIT_KES', 'SELL_DAILY_LIMIT_KES']);
  });

  test('when running against the emulators, then B2C defaults to the emulator with URLs to itself and a key pair made at start-up', () => {
    const c = loadConfig({ PORT: '4000', MPESA_B2C_CERT_PATH: '/ignored/in/emulator/mode.pem' });
    expect(c.b2c).toMatchObject({
      shortcode: '600000',
      initiatorName: 'testapi',
      initiatorPassword: 'Safaricom999!*!',
      certificatePem: null,
      resultUrl: 'http://127.0.0.1:4000/mpesa/b2c/result/emulator-callback',
      timeoutUrl: 'http://127.0.0.1:4000/mpesa/b2c/timeout/emulator-callback',
      statusResultUrl: 'http://127.0.0.1:4000/mpesa/b2c/status/emulator-callback',
    });
    const bound = bindEmulatorUrls(c, 51234);
    expect(bound.b2c).toMatchObject({
      resultUrl: 'http://127.0.0.1:51234/mpesa/b2c/result/emulator-callback',
      timeoutUrl: 'http://127.0.0.1:51234/mpesa/b2c/timeout/emulator-callback',
      statusResultUrl: 'http://127.0.0.1:51234/mpesa/b2c/status/emulator-callback',
      resultRoute: { pathPrefix: '/mpesa/b2c/result', secret: 'emulator-callback' },
    });
  });
});
