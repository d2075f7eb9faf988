import { ConfigError, loadConfig } from './config';
import { createLogger } from './lib/logger';
import { runService } from './server';

async function main() {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  const running = await runService(config, log);
  if (running.banner) process.stdout.write(running.banner + '\n');
  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, async () => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'shutting down');
      await running.close();
      process.exit(0);
    });
  }
}

main().catch((err) => {
  console.error('start-up failed:', err instanceof Error ? err.message : err);
  process.exit(1);
});
