import { generateKeyPairSync } from 'node:crypto';

export interface InitiatorKeys {
  /** Stands in for Safaricom's certificate: the service encrypts its SecurityCredential with it. */
  publicKeyPem: string;
  /** Held by the Daraja emulator only, to check the credential as M-Pesa would. */
  privateKeyPem: string;
}

/** A fresh RSA key pair per start: nothing secret is stored, and the emulator checks the real encryption path. */
export function generateInitiatorKeys(): InitiatorKeys {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}
