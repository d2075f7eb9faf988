import type { Config } from '../config';
import type { B2cSettings } from './daraja-client';
import { securityCredential } from './daraja-security-credential';

/**
 * The DarajaClient's B2C settings from the config. The SecurityCredential is computed once, here, at
 * start-up: the initiator password RSA-encrypted with Safaricom's certificate (or, in emulator mode,
 * with the public half of the key pair the sandbox generated). Undefined when selling is switched off.
 */
export function b2cSettingsFrom(b2c: Config['b2c']): B2cSettings | undefined {
  if (!b2c) return undefined;
  if (!b2c.certificatePem) throw new Error('B2C is configured but no certificate is loaded (MPESA_B2C_CERT_PATH, or the emulator key pair)');
  return {
    shortcode: b2c.shortcode,
    initiatorName: b2c.initiatorName,
    securityCredential: securityCredential(b2c.initiatorPassword, b2c.certificatePem),
    resultUrl: b2c.resultUrl,
    timeoutUrl: b2c.timeoutUrl,
    statusResultUrl: b2c.statusResultUrl,
  };
}
