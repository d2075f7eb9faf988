import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { bindEmulatorUrls, type Config, type RunConfig } from './config';
import { migrateLatest } from './db/knex';
import { createApp } from './http/app';
import { stkCallbackFastPath } from './http/stk-callback-fast-path';
import { ussdFastPath } from './http/ussd-fast-path';
import { createProbeApp } from './http/probe-app';
import { startWorkers } from './jobs/workers';
import { closeResumedPriceJumps, raisePriceJumpAlert } from './prices/price-jump';
import { HttpPriceFeed } from './prices/price-source';
import type { Logger } from './lib/logger';
import { fundDemoPoolOnce } from './sandbox/demo-pool';
import { sandboxAtSecret } from './sandbox/at-secret';
import { startEmbeddedPostgres } from './sandbox/embedded-postgres';
import { generateInitiatorKeys } from './sandbox/initiator-keys';
import { createSandbox } from './sandbox/sandbox';
import { createServices, type Services } from './services';
import { describeCertificate } from './vendors/b2c-certificate';

export interface RunningService {
  services: Services;
  config: RunConfig;
  /** The port actually listened on (PORT=0 picks a free one), or null for a worker-only process. */
  port: number | null;
  /** The sandbox's start-up text (simulator URL, USSD code, test numbers); null outside emulator mode. */
  banner: string | null;
  close(): Promise<void>;
}

/**
 * Starts what the config asks for: the embedded Postgres when there is no DATABASE_URL, the web role,
 * the worker role or both, and in emulator mode the emulators and the phone simulator.
 */
export async function runService(config: Config, log: Logger): Promise<RunningService> {
  const embedded = config.databaseUrl ? null : await startEmbeddedPostgres(config.dataDir, config.embeddedPostgresPort, log);
  let run: RunConfig = { ...config, databaseUrl: config.databaseUrl ?? embedded!.url };

  // Listen first (the emulators must know the real port), answering 503 until everything is up.
  let handler: http.RequestListener = (_req, res) => res.writeHead(503, { 'retry-after': '1' }).end();
  const server = run.role === 'worker' ? null : await listen(run.port, (req, res) => handler(req, res));
  const port = server ? (server.address() as AddressInfo).port : null;
  if (port !== null) run = bindEmulatorUrls(run, port);
  // Emulator mode without AT_CALLBACK_SECRET: the sandbox's own, kept under DATA_DIR (printed in the banner).
  if (run.at.callbackSecret === null) run = { ...run, at: { ...run.at, callbackSecret: sandboxAtSecret(run.dataDir) } };
  // Emulator mode: a key pair generated now stands in for Safaricom's B2C certificate; the emulator keeps the private half.
  const initiatorKeys = run.mpesa.environment === 'emulator' && run.b2c ? generateInitiatorKeys() : null;
  if (initiatorKeys && run.b2c) run = { ...run, b2c: { ...run.b2c, certificatePem: initiatorKeys.publicKeyPem } };

  const services = createServices(run, log);
  await migrateLatest(services.db);
  const sandbox = run.mpesa.environment === 'emulator' && port !== null ? createSandbox(run, port, log, initiatorKeys) : null;
  if (sandbox && (await fundDemoPoolOnce(services.db, run.demoPoolGrams))) log.info({ grams: run.demoPoolGrams }, 'sandbox pool funded');
  // The two hot vendor routes are answered before express in their plain case (src/http/fast-path.ts).
  if (server) handler = stkCallbackFastPath(services, ussdFastPath(services, createApp(services, sandbox?.router)));
  // A worker-only process has no web server; with WORKER_HTTP_PORT it still answers probes and /metrics.
  const probeServer = !server && run.ops.workerHttpPort !== null ? await listen(run.ops.workerHttpPort, createProbeApp(services)) : null;
  const workers = run.role !== 'web' ? startWorkers(services) : null;
  // PRICE_PROVIDER=http: the worker polls the feed in the background; requests only read the stored quote.
  const pricePolling = run.role !== 'web' && services.prices instanceof HttpPriceFeed ? services.prices.startPolling(log, (jump) => raisePriceJumpAlert(services, jump), () => closeResumedPriceJumps(services.db)) : null;
  log.info({ role: run.role, port, queues: services.backends.kind, mpesa: run.mpesa.environment }, 'service started');
  if (run.b2c?.certificateSource && run.b2c.certificatePem) {
    // Safaricom encrypts nothing back: a wrong certificate only shows as B2C results "initiator information
    // is invalid" (2001). The fingerprint lets an operator compare it with the one on Daraja's portal.
    log.info({ source: run.b2c.certificateSource, environment: run.mpesa.environment, ...describeCertificate(run.b2c.certificatePem) }, 'b2c certificate');
  }

  return {
    services,
    config: run,
    port,
    banner: sandbox && port !== null ? sandbox.banner(port) : null,
    async close() {
      // Not ready first, so a load balancer stops sending traffic while requests in flight finish;
      // then stop taking requests, let active jobs finish, then close the pools.
      services.lifecycle.stopping = true;
      if (server && run.ops.shutdownDrainMs > 0) await new Promise((r) => setTimeout(r, run.ops.shutdownDrainMs));
      if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
      pricePolling?.close();
      await workers?.close();
      if (probeServer) await new Promise<void>((resolve) => probeServer.close(() => resolve()));
      sandbox?.close();
      await services.close();
      await embedded?.stop();
    },
  };
}

function listen(port: number, handler: http.RequestListener): Promise<http.Server> {
  return new Promise((resolve, reject) => {
    const server = http.createServer(handler);
    server.once('error', reject);
    server.listen(port, '0.0.0.0', () => resolve(server));
  });
}
