import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createDb, type Db } from '../../src/db/knex';
import { ADMIN_DATABASE_URL, databasePrefix, databaseUrl, runId, templateDatabase } from './test-env';

const ROOT = path.resolve(__dirname, '..', '..');
/** What `npm start` runs. GOLD_SERVICE_ENTRY points elsewhere (a build of a deliberately broken copy, to see a test fail). */
const ENTRY = process.env.GOLD_SERVICE_ENTRY ?? path.join(ROOT, 'dist', 'src', 'start.js');

/** A database of the test's own, cloned from the migrated template (dropped by the global teardown). */
export async function createTestDatabase(): Promise<{ name: string; url: string; db: Db }> {
  const name = `${databasePrefix(runId())}${randomBytes(4).toString('hex')}`;
  const admin = createDb(ADMIN_DATABASE_URL, { max: 1 });
  try {
    await admin.raw(`CREATE DATABASE ${name} TEMPLATE ${templateDatabase(runId())}`);
  } finally {
    await admin.destroy();
  }
  const url = databaseUrl(name);
  return { name, url, db: createDb(url, { max: 4 }) };
}

export interface ServiceProcess {
  pid: number;
  output(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
}

/**
 * The BUILT service (`node dist/src/start.js`, what `npm start` runs) as a process of its own, with
 * exactly the environment given (plus PATH and HOME). Resolves once it logged "service started".
 */
export async function startServiceProcess(env: Record<string, string>): Promise<ServiceProcess> {
  const child: ChildProcess = spawn(process.execPath, [ENTRY], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (!out.includes('"service started"')) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`service (${env.ROLE ?? 'all'}) did not start:\n${out.slice(-3000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { pid: child.pid!, output: () => out, exited, kill: (signal) => void child.kill(signal) };
}
