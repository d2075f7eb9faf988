import { readFileSync } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../lib/project-root';

/**
 * Safaricom's public certificates for the initiator password, as shipped in certs/ (see certs/README.md
 * for where each comes from). MPESA_B2C_CERT_PATH replaces them, e.g. when Safaricom rotates one.
 */
export function bundledCertificatePath(environment: 'sandbox' | 'production'): string {
  return path.join(projectRoot(), 'certs', `mpesa-${environment}.cer`);
}

/** The certificate file's text, or a problem for the start-up message. */
export function readCertificate(file: string, name: string): { pem: string } | { problem: string } {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    return { problem: `${name}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
  }
  if (!/-----BEGIN (CERTIFICATE|PUBLIC KEY|RSA PUBLIC KEY)-----/.test(pem)) {
    return { problem: `${name}: ${file} is not a PEM certificate (expected -----BEGIN CERTIFICATE-----)` };
  }
  return { pem };
}
