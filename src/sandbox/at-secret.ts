import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const FILE = 'at-callback-secret';
const VALID = /^[A-Za-z0-9_-]{16,}$/;

/**
 * Emulator mode without AT_CALLBACK_SECRET: the sandbox's own secret for /ussd/<secret> and the other
 * Africa's Talking callbacks. Made once and kept under DATA_DIR, so it stays the same across restarts
 * (a bookmarked simulator, a `curl` in a script) and is never a constant anyone could read in this code.
 */
export function sandboxAtSecret(dataDir: string): string {
  const file = path.join(dataDir, FILE);
  try {
    const stored = readFileSync(file, 'utf8').trim();
    if (VALID.test(stored)) return stored;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const secret = randomBytes(18).toString('base64url'); // 24 characters of [A-Za-z0-9_-]
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, secret + '\n', { mode: 0o600 });
  return secret;
}
