import type { RunConfig } from './config';
import { createDb, type Db } from './db/knex';
import { createBackends, type Backends } from './infra/backends';
import type { KeyValueStore } from './infra/kv-store';
import { Outbox } from './jobs/outbox';
import type { Queues } from './infra/backends';
import type { Logger } from './lib/logger';
import { SessionStore } from './ussd/session-store';
import { DarajaClient } from './vendors/daraja-client';
import { createSmsSender, type SmsSender } from './vendors/sms-client';

/** Everything a role needs, built once from the config and handed down (no module reaches for globals). */
export interface Services {
  config: RunConfig;
  log: Logger;
  db: Db;
  backends: Backends;
  kv: KeyValueStore;
  queues: Queues;
  outbox: Outbox;
  sessions: SessionStore;
  daraja: DarajaClient;
  sms: SmsSender;
  close(): Promise<void>;
}

export function createServices(config: RunConfig, log: Logger): Services {
  const db = createDb(config.databaseUrl, {}, log);
  const backends = createBackends(config, db, log);
  const outbox = new Outbox(db, backends.queues, log);
  return {
    config,
    log,
    db,
    backends,
    kv: backends.kv,
    queues: backends.queues,
    outbox,
    sessions: new SessionStore(backends.kv, config.queuePrefix, config.ussd.sessionTtlSeconds),
    daraja: new DarajaClient(config.mpesa, backends.kv, config.queuePrefix),
    sms: createSmsSender(config.at),
    async close() {
      await backends.close();
      await db.destroy();
    },
  };
}
