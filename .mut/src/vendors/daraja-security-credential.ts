import { X509Certificate, constants, createPublicKey, publicEncrypt, type KeyObject } from 'node:crypto';

/**
 * Daraja's SecurityCredential for B2C and Transaction Status: the initiator password encrypted with
 * Safaricom's public key, RSA with PKCS#1 v1.5 padding (NOT OAEP: M-Pesa cannot decrypt OAEP), base64.
 *
 * `pem` is Safaricom's certificate (`-----BEGIN CERTIFICATE-----`, as downloaded from the portal) or,
 * for tests and key rotations, a bare public key (`-----BEGIN PUBLIC KEY-----` or `RSA PUBLIC KEY`).
 * Node's createPublicKey happens to accept a certificate PEM too, but we branch on the header so a
 * certificate goes through X509Certificate, which fails loudly on a corrupt certificate instead of
 * guessing. The output differs on every call (the padding is random); Daraja accepts any of them.
 */
export function securityCredential(initiatorPassword: string, pem: string): string {
  if (initiatorPassword.length === 0) throw new Error('securityCredential: the initiator password is empty');
  const key = publicKeyFrom(pem);
  if (key.asymmetricKeyType !== 'rsa') throw new Error(`securityCredential: expected an RSA key, got ${key.asymmetricKeyType ?? 'unknown'}`);
  return publicEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, Buffer.from(initiatorPassword, 'utf8')).toString('base64');
}

function publicKeyFrom(pem: string): KeyObject {
  const header = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(pem)?.[1];
  if (header === 'CERTIFICATE') return new X509Certificate(pem).publicKey;
  if (header === 'PUBLIC KEY' || header === 'RSA PUBLIC KEY') return createPublicKey(pem);
  // A private key would also "work" with createPublicKey: refuse it, it has no business in this code path.
  throw new Error(`securityCredential: expected a CERTIFICATE or PUBLIC KEY PEM, got ${header ? `"${header}"` : 'no PEM header'}`);
}
