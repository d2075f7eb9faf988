import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Config } from './config';
import { migrateLatest } from './db/knex';
import { createApp } from './http/app';
import { startWorkers } from './jobs/workers';
import type { Logger } from './lib/logger';
import { createServices, type Services } from './services';

export interface RunningService {
  services: Services;
  /** The port actually listened on (PORT=0 picks a free one), or null for a worker-only process. */
  port: number | null;
  close(): Promise<void>;
}

/** Migrates, then runs the web role, the worker role or both against the same Postgres and Redis. */
export async function runService(config: Config, log: Logger): Promise<RunningService> {
  const services = createServices(config, log);
  await migrateLatest(services.db);

  let server: Server | null = null;
  if (config.role !== 'worker') {
    const app = createApp(services);
    server = await new Promise<Server>((resolve, reject) => {
      const srv = app.listen(config.port, '0.0.0.0', () => resolve(srv)).on('error', reject);
    });
  }
  const workers = config.role !== 'web' ? startWorkers(services) : null;
  const port = server ? (server.address() as AddressInfo).port : null;
  log.info({ role: config.role, port }, 'service started');

  return {
    services,
    port,
    async close() {
      // Stop taking requests, let active jobs finish, then close the pools.
      if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
      await workers?.close();
      await services.close();
    },
  };
}
