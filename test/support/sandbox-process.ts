import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createDb, type Db } from '../../src/db/knex';
import { freePort } from '../../src/lib/free-port';

export interface SandboxProcess {
  url: string;
  output(): string;
  /** The embedded Postgres of the sandbox, for checking the books. */
  db(): Db;
  stop(): Promise<number | null>;
}

const ROOT = path.resolve(__dirname, '..', '..');

export { freePort };

/**
 * Starts the built service exactly as `npm start` runs it on a bare machine: no DATABASE_URL, no
 * REDIS_URL, no vendor credentials. Only free ports and a throw-away data folder are chosen for it.
 */
export async function startSandboxProcess(extraEnv: Record<string, string> = {}): Promise<SandboxProcess> {
  const [port, pgPort] = [await freePort(), await freePort()];
  const dataDir = mkdtempSync(path.join(tmpdir(), 'gold-sandbox-'));
  chmodSync(dataDir, 0o755); // as root, Postgres runs as another user that must reach the folder
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: String(port), DATA_DIR: dataDir, EMBEDDED_POSTGRES_PORT: String(pgPort), LOG_LEVEL: 'info', ...extraEnv };
  const child: ChildProcess = spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'start.js')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  const deadline = Date.now() + 60_000;
  // Both the banner and the "service started" log line: two writers to stdout, in either order on a pipe.
  while (!out.includes('sandbox is ready') || !out.includes('"service started"')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`sandbox did not start:\n${out.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  let db: Db | null = null;
  return {
    url: `http://127.0.0.1:${port}`,
    output: () => out,
    db: () => (db ??= createDb(`postgres://postgres:embedded@127.0.0.1:${pgPort}/gold_wallet`, { max: 2 })),
    async stop() {
      await db?.destroy();
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([exited, new Promise<null>((r) => (timer = setTimeout(() => r(null), 20_000)))]);
      clearTimeout(timer);
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}
