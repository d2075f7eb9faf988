import { constants, createPrivateKey, privateDecrypt, timingSafeEqual, type KeyObject } from 'node:crypto';

export interface InitiatorOptions {
  /** When set, any other InitiatorName/Initiator fails with ResultCode 2001. */
  initiatorName?: string;
  /** With initiatorPrivateKeyPem: the SecurityCredential must decrypt to this password, or 2001. */
  initiatorPassword?: string;
  /** The private half of the key the service encrypts SecurityCredential with (tests generate one). */
  initiatorPrivateKeyPem?: string;
}

/**
 * Daraja's initiator check, which it reports asynchronously: a wrong initiator or credential is accepted
 * with ResponseCode 0 and then answered with a Result "2001 The initiator information is invalid.".
 * Without options every well-formed initiator passes (the loose default); the credential is verified
 * only when both the password and the private key are configured.
 */
export class InitiatorCheck {
  private readonly key: KeyObject | null;

  constructor(private readonly opts: InitiatorOptions) {
    this.key = opts.initiatorPrivateKeyPem && opts.initiatorPassword !== undefined ? createPrivateKey(opts.initiatorPrivateKeyPem) : null;
  }

  accepts(initiatorName: string, securityCredential: string): boolean {
    if (this.opts.initiatorName !== undefined && initiatorName !== this.opts.initiatorName) return false;
    if (!this.key) return true;
    const password = decryptPkcs1v15(this.key, Buffer.from(securityCredential, 'base64'));
    const expected = Buffer.from(this.opts.initiatorPassword!, 'utf8');
    return password !== null && password.length === expected.length && timingSafeEqual(password, expected);
  }
}

/**
 * RSA PKCS#1 v1.5 decryption. Node 20 refuses RSA_PKCS1_PADDING for private decryption (the Marvin
 * timing attack, CVE-2023-46809), so decrypt raw and strip the padding ourselves:
 * 0x00 0x02 <at least 8 non-zero bytes> 0x00 <message>. Timing leaks are irrelevant in an emulator.
 */
export function decryptPkcs1v15(key: KeyObject, ciphertext: Buffer): Buffer | null {
  let block: Buffer;
  try {
    block = privateDecrypt({ key, padding: constants.RSA_NO_PADDING }, ciphertext);
  } catch {
    return null;
  }
  if (block[0] !== 0x00 || block[1] !== 0x02) return null;
  const separator = block.indexOf(0x00, 2);
  if (separator < 10) return null;
  return block.subarray(separator + 1);
}
