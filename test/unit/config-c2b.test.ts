import { bindEmulatorUrls, ConfigError, EMULATOR_CALLBACK_SECRET, loadConfig } from '../../src/config';
import { baseEnv } from '../support/harness';

/** Pay by Paybill (C2B) settings: both URLs or neither, each a callback with a secret segment of its own. */

const SECRET = '0123456789abcdef0123';
const C2B = {
  MPESA_C2B_VALIDATION_URL: `https://wallet.example.com/c2b/validation/${SECRET}`,
  MPESA_C2B_CONFIRMATION_URL: `https://wallet.example.com/c2b/confirmation/${SECRET}`,
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

describe('configuration: Pay by Paybill (C2B)', () => {
  test('when neither URL is set, then C2B is off', () => {
    expect(loadConfig(baseEnv()).c2b).toBeNull();
  });

  test('when both are set, then C2B is on with the business shortcode by default, each route at its own path and secret', () => {
    const c = loadConfig({ ...baseEnv(), ...C2B });
    expect(c.c2b).toEqual({
      shortcode: '174379',
      validationUrl: C2B.MPESA_C2B_VALIDATION_URL,
      confirmationUrl: C2B.MPESA_C2B_CONFIRMATION_URL,
      validationRoute: { pathPrefix: '/c2b/validation', secret: SECRET },
      confirmationRoute: { pathPrefix: '/c2b/confirmation', secret: SECRET },
    });
    expect(loadConfig({ ...baseEnv(), ...C2B, MPESA_C2B_SHORTCODE: '600987' }).c2b?.shortcode).toBe('600987');
  });

  test.each([
    ['only the validation URL', { MPESA_C2B_VALIDATION_URL: C2B.MPESA_C2B_VALIDATION_URL }, /^MPESA_C2B_CONFIRMATION_URL: is required with MPESA_C2B_VALIDATION_URL/],
    ['only the confirmation URL', { MPESA_C2B_CONFIRMATION_URL: C2B.MPESA_C2B_CONFIRMATION_URL }, /^MPESA_C2B_VALIDATION_URL: is required with MPESA_C2B_CONFIRMATION_URL/],
    ['a short secret', { ...C2B, MPESA_C2B_CONFIRMATION_URL: 'https://wallet.example.com/c2b/confirmation/short' }, /^MPESA_C2B_CONFIRMATION_URL: its last path segment is the secret: at least 16/],
    ['no secret segment', { ...C2B, MPESA_C2B_VALIDATION_URL: 'https://wallet.example.com/validation' }, /^MPESA_C2B_VALIDATION_URL: needs a path with at least two segments/],
    ['one path for both', { ...C2B, MPESA_C2B_CONFIRMATION_URL: `https://wallet.example.com/c2b/validation/${SECRET}x` }, /^MPESA_C2B_CONFIRMATION_URL: needs a path of its own/],
    ['the STK callback\'s path', { ...C2B, MPESA_CALLBACK_URL: 'https://wallet.example.com/pay/callback/stk-secret', MPESA_C2B_VALIDATION_URL: `https://wallet.example.com/pay/callback/${SECRET}` }, /^MPESA_C2B_VALIDATION_URL: needs a path of its own/],
    ['"mpesa" in the URL', { ...C2B, MPESA_C2B_VALIDATION_URL: `https://wallet.example.com/mpesa-c2b/validation/${SECRET}` }, /^MPESA_C2B_VALIDATION_URL: must not contain "mpesa" or "safaricom"/],
    ['a bad shortcode', { ...C2B, MPESA_C2B_SHORTCODE: '12' }, /^MPESA_C2B_SHORTCODE: must be 5 to 7 digits/],
  ])('when %s, then start-up names the problem', (_what, env, message) => {
    expect(problems({ ...baseEnv(), ...env })).toEqual(expect.arrayContaining([expect.stringMatching(message)]));
  });

  test('when in production, then http URLs are refused', () => {
    const env = { ...baseEnv(), MPESA_ENVIRONMENT: 'production', AT_USERNAME: 'goldwallet', ...C2B, MPESA_C2B_CONFIRMATION_URL: `http://wallet.example.com/c2b/confirmation/${SECRET}` };
    expect(problems(env)).toEqual(expect.arrayContaining([expect.stringMatching(/^MPESA_C2B_CONFIRMATION_URL: must be https in production/)]));
  });

  test('when in emulator mode, then C2B points at this service (also once the real port is known)', () => {
    const c = loadConfig({ MPESA_ENVIRONMENT: 'emulator', PORT: '0' });
    expect(c.c2b?.confirmationRoute).toEqual({ pathPrefix: '/c2b/confirmation', secret: EMULATOR_CALLBACK_SECRET });
    const bound = bindEmulatorUrls({ ...c, databaseUrl: 'postgres://x' }, 4567);
    expect(bound.c2b).toMatchObject({
      shortcode: '174379',
      validationUrl: `http://127.0.0.1:4567/c2b/validation/${EMULATOR_CALLBACK_SECRET}`,
      confirmationUrl: `http://127.0.0.1:4567/c2b/confirmation/${EMULATOR_CALLBACK_SECRET}`,
    });
  });
});
