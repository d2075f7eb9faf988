import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const B2C_RESULT_PATH = '/mpesa/b2c/result/sec-Result-1a2b3c';
export const B2C_TIMEOUT_PATH = '/mpesa/b2c/timeout/sec-Timeout-3c4d5e';
export const B2C_STATUS_PATH = '/mpesa/b2c/status/sec-Status-5e6f7a';

/**
 * The B2C settings that switch selling on (and mount its three callback routes), with a throw-away
 * certificate. Call in a test file's top level; the certificate is removed after the file.
 */
export function b2cTestEnv(): Record<string, string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gold-b2c-env-'));
  const certPath = path.join(dir, 'cert.pem');
  writeFileSync(certPath, generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }).toString());
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return {
    MPESA_B2C_SHORTCODE: '600996',
    MPESA_INITIATOR_NAME: 'sec_api',
    MPESA_INITIATOR_PASSWORD: 'Sec-Pass!1',
    MPESA_B2C_CERT_PATH: certPath,
    MPESA_B2C_RESULT_URL: `https://wallet.example.com${B2C_RESULT_PATH}`,
    MPESA_B2C_TIMEOUT_URL: `https://wallet.example.com${B2C_TIMEOUT_PATH}`,
    MPESA_B2C_STATUS_RESULT_URL: `https://wallet.example.com${B2C_STATUS_PATH}`,
  };
}
