/** Facts shared by the global setup and the test files. */
export const ADMIN_DATABASE_URL = process.env.TEST_ADMIN_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export function runId(): string {
  const id = process.env.GOLD_TEST_RUN_ID;
  if (!id) throw new Error('GOLD_TEST_RUN_ID is not set: run the tests through jest (global-setup.ts)');
  return id;
}

export const templateDatabase = (id: string) => `gold_tpl_${id}`;
export const databasePrefix = (id: string) => `gold_t_${id}_`;

export function databaseUrl(name: string): string {
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  return url.toString();
}
