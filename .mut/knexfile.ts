import { readDatabaseUrl } from './src/config';
import { migrationSource } from './migrations';

// For the knex CLI (npx knex migrate:status ...). The service migrates itself at start-up.
const config = {
  client: 'pg',
  connection: readDatabaseUrl(),
  migrations: { migrationSource },
};

export default config;
