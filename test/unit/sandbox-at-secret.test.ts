import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sandboxAtSecret } from '../../src/sandbox/at-secret';

describe("the sandbox's own AT_CALLBACK_SECRET", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'gold-at-secret-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('when the sandbox starts the first time, then it makes a secret of 16+ URL-safe characters, kept under DATA_DIR readable by its owner only', () => {
    const data = path.join(dir, 'nested', 'data');
    const secret = sandboxAtSecret(data);
    expect(secret).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(readFileSync(path.join(data, 'at-callback-secret'), 'utf8').trim()).toBe(secret);
    expect(statSync(path.join(data, 'at-callback-secret')).mode & 0o077).toBe(0);
  });

  test('when it starts again on the same DATA_DIR, then the secret is the same; another DATA_DIR gets another one', () => {
    const first = sandboxAtSecret(dir);
    expect(sandboxAtSecret(dir)).toBe(first);
    const other = mkdtempSync(path.join(tmpdir(), 'gold-at-secret-'));
    try {
      expect(sandboxAtSecret(other)).not.toBe(first);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  test('when the stored secret is too short or has other characters, then a new one replaces it', () => {
    writeFileSync(path.join(dir, 'at-callback-secret'), 'callback\n');
    const secret = sandboxAtSecret(dir);
    expect(secret).not.toBe('callback');
    expect(secret).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(sandboxAtSecret(dir)).toBe(secret);
  });
});
