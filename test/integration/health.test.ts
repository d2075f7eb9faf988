import { createDb } from '../../src/db/knex';
import { startTestService, type TestService } from '../support/harness';
import { ADMIN_DATABASE_URL } from '../support/test-env';

describe('GET /health', () => {
  let svc: TestService;
  afterEach(() => svc.close());

  test('when the database and the queue backend answer, then 200', async () => {
    svc = await startTestService();
    const res = await fetch(`${svc.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', checks: { database: 'ok', queue: 'ok' } });
  });

  test('when the queue backend does not answer, then 503 naming it', async () => {
    svc = await startTestService({ REDIS_URL: 'redis://127.0.0.1:1', ROLE: 'web' });
    const res = await fetch(`${svc.url}/health`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'degraded', checks: { database: 'ok', queue: 'down' } });
  });

  test('when the database does not answer, then 503 naming it', async () => {
    svc = await startTestService();
    const name = svc.db.client.database() as string;
    const admin = createDb(ADMIN_DATABASE_URL, { max: 1 });
    try {
      await admin.raw(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
      await admin.raw('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ?', [name]);
      const res = await fetch(`${svc.url}/health`);
      expect(res.status).toBe(503);
      expect(((await res.json()) as { checks: unknown }).checks).toEqual({ database: 'down', queue: 'ok' });
    } finally {
      await admin.raw(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
      await admin.destroy();
    }
  });
});
