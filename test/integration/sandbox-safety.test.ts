import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { startTestService, type TestService } from '../support/harness';

describe('emulators and simulator outside emulator mode', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService(); // MPESA_ENVIRONMENT=sandbox
  });
  afterAll(() => svc.close());

  test.each([
    ['GET', '/simulator'],
    ['GET', '/simulator/config'],
    ['GET', '/emulators/daraja/oauth/v1/generate?grant_type=client_credentials'],
    ['GET', '/emulators/daraja/prompts?phone=254712345678'],
    ['POST', '/emulators/at/version1/messaging'],
  ])('when MPESA_ENVIRONMENT is sandbox, then %s %s is not mounted (404)', async (method, path) => {
    const res = await fetch(`${svc.url}${path}`, { method });
    expect(res.status).toBe(404);
  });
});

/**
 * Never emulate by accident: the built service (what `npm start` runs) with a production-looking
 * environment must refuse to start rather than approve its own M-Pesa prompts on 0.0.0.0.
 */
describe('start-up of the built service without M-Pesa settings', () => {
  const ENTRY = path.resolve(__dirname, '..', '..', 'dist', 'src', 'start.js');
  const start = (env: Record<string, string>) =>
    spawnSync(process.execPath, [ENTRY], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: '0', LOG_LEVEL: 'info', ...env }, encoding: 'utf8', timeout: 30_000 });

  test('when NODE_ENV=production has a DATABASE_URL and no M-Pesa variables, then it exits 1 naming each missing variable and serves nothing', () => {
    const run = start({ NODE_ENV: 'production', DATABASE_URL: 'postgres://postgres@127.0.0.1:1/never_used' });
    expect(run.status).toBe(1);
    for (const name of ['MPESA_CONSUMER_KEY', 'MPESA_CONSUMER_SECRET', 'MPESA_BUSINESS_SHORTCODE', 'MPESA_PASSKEY', 'MPESA_CALLBACK_URL', 'AT_CALLBACK_SECRET']) expect(run.stderr).toContain(`${name}:`);
    expect(run.stdout).not.toContain('sandbox is ready');
    expect(run.stdout).not.toContain('service started');
  });

  test('when NODE_ENV=production asks for MPESA_ENVIRONMENT=emulator, then it exits 1 saying emulator mode is refused', () => {
    const run = start({ NODE_ENV: 'production', DATABASE_URL: 'postgres://postgres@127.0.0.1:1/never_used', MPESA_ENVIRONMENT: 'emulator' });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/MPESA_ENVIRONMENT: emulator mode is refused with NODE_ENV=production/);
    expect(run.stdout).not.toContain('service started');
  });

  test('when a DATABASE_URL is given without MPESA_ENVIRONMENT (any NODE_ENV), then it does not fall back to the emulators', () => {
    const run = start({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/never_used' });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('MPESA_CONSUMER_KEY:');
    expect(run.stdout).not.toContain('"mpesa":"emulator"');
  });
});
