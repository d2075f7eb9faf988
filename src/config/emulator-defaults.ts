

/** Emulator mode: the values it runs with, and the URLs of the service to itself. */

/** Safaricom's published sandbox passkey for shortcode 174379: what the emulator checks passwords against. */
export const SANDBOX_PASSKEY = 'bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919';
export const EMULATOR_CALLBACK_SECRET = 'emulator-callback';

/**
 * Emulator mode is never an accident. It is used only when MPESA_ENVIRONMENT=emulator is set, or when
 * nothing at all is configured (no DATABASE_URL, no M-Pesa credentials: `npm start` on a bare machine,
 * the embedded sandbox); these are the values it then uses. A service given a DATABASE_URL (a real
 * deployment) without MPESA_ENVIRONMENT is taken as `sandbox`, so each missing M-Pesa variable stops
 * start-up by name instead of silently approving its own prompts. NODE_ENV=production never runs the
 * emulators (refused in the schema below).
 */
export function withEmulatorDefaults(env: Record<string, string | undefined>): Record<string, string | undefined> {
  const given = (name: string) => (env[name] ?? '').trim() !== '';
  const noMpesaCredentials = !['MPESA_CONSUMER_KEY', 'MPESA_CONSUMER_SECRET', 'MPESA_PASSKEY'].some(given);
  const bareMachine = noMpesaCredentials && !given('DATABASE_URL');
  const environment = given('MPESA_ENVIRONMENT') ? env.MPESA_ENVIRONMENT : bareMachine ? 'emulator' : 'sandbox';
  if (environment !== 'emulator') return { ...env, MPESA_ENVIRONMENT: environment };
  const port = given('PORT') ? env.PORT : '3000';
  const self = `http://127.0.0.1:${port}`;
  const noAtCredentials = !given('AT_USERNAME') && !given('AT_API_KEY');
  return {
    MPESA_CONSUMER_KEY: 'emulator-consumer-key',
    MPESA_CONSUMER_SECRET: 'emulator-consumer-secret',
    MPESA_BUSINESS_SHORTCODE: '174379',
    MPESA_PASSKEY: SANDBOX_PASSKEY,
    // Daraja sandbox's published B2C test initiator; the emulator checks the credential against it.
    MPESA_B2C_SHORTCODE: '600000',
    MPESA_INITIATOR_NAME: 'testapi',
    MPESA_INITIATOR_PASSWORD: 'Safaricom999!*!',
    USSD_SERVICE_CODE: '*384*1#',
    GOLD_PRICE_KES_PER_GRAM: '8500',
    // Someone trying the sandbox buys many times an hour from the same few test numbers.
    STK_PUSHES_PER_HOUR: '100',
    ...Object.fromEntries(Object.entries(env).filter(([, v]) => (v ?? '').trim() !== '')),
    MPESA_ENVIRONMENT: 'emulator',
    // The emulators live in this very process; the service always points itself at them.
    MPESA_BASE_URL: `${self}/emulators/daraja`,
    MPESA_CALLBACK_URL: `${self}/mpesa/callback/${EMULATOR_CALLBACK_SECRET}`,
    ...emulatorB2cUrls(self),
    ...emulatorC2bUrls(self),
    // The emulator's key pair is generated at start-up (src/sandbox): no certificate file.
    MPESA_B2C_CERT_PATH: undefined,
    ...(noAtCredentials ? { AT_USERNAME: 'emulator', AT_API_KEY: 'emulator-api-key', AT_API_URL: `${self}/emulators/at`, AT_EMULATOR: 'true' } : {}),
  };
}

export function emulatorB2cUrls(self: string) {
  return {
    MPESA_B2C_RESULT_URL: `${self}/mpesa/b2c/result/${EMULATOR_CALLBACK_SECRET}`,
    MPESA_B2C_TIMEOUT_URL: `${self}/mpesa/b2c/timeout/${EMULATOR_CALLBACK_SECRET}`,
    MPESA_B2C_STATUS_RESULT_URL: `${self}/mpesa/b2c/status/${EMULATOR_CALLBACK_SECRET}`,
  };
}

/** Paybill (C2B) in emulator mode: the emulator's simulate endpoint calls these (src/emulators/daraja/c2b-*.ts). */
export function emulatorC2bUrls(self: string) {
  return {
    MPESA_C2B_VALIDATION_URL: `${self}/c2b/validation/${EMULATOR_CALLBACK_SECRET}`,
    MPESA_C2B_CONFIRMATION_URL: `${self}/c2b/confirmation/${EMULATOR_CALLBACK_SECRET}`,
  };
}
