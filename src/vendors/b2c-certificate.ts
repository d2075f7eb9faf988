import { X509Certificate } from 'node:crypto';

/** What the start-up log says of the B2C certificate: enough to compare with Daraja's portal, nothing secret. */
export function describeCertificate(pem: string): { subject: string; sha256: string; validTo: string } | { unreadable: string } {
  try {
    const cert = new X509Certificate(pem);
    const cn = /CN=([^\n,]+)/.exec(cert.subject)?.[1] ?? cert.subject;
    return { subject: cn, sha256: cert.fingerprint256, validTo: new Date(cert.validTo).toISOString().slice(0, 10) };
  } catch (err) {
    // A bare public key (MPESA_B2C_CERT_PATH may hold one) is fine for encryption: there is just no certificate to describe.
    return { unreadable: (err as Error).message.slice(0, 100) };
  }
}
