/**
 * The only reader of process.env. Everything else receives a Config. The fields are in fields.ts, the rules
 * across them in rules.ts, emulator defaults in emulator-defaults.ts, the shaping in shape.ts.
 * A bad environment stops start-up with one message naming every bad variable.
 */

import { bundledCertificatePath, readCertificate } from './certificates';
import { EMULATOR_CALLBACK_SECRET, emulatorB2cUrls, emulatorC2bUrls, withEmulatorDefaults } from './emulator-defaults';
import { fieldsSchema, withStatusResultUrl } from './fields';
import { checkEnv } from './rules';
import { shapeConfig } from './shape';

export { bundledCertificatePath } from './certificates';
export { EMULATOR_CALLBACK_SECRET } from './emulator-defaults';
export { DEFAULT_SELL_PRICE_PERCENT, type Env } from './fields';

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/gold_wallet';

/** For tools that need only the database (knex CLI, pool:fund), not a full service configuration. */
export function readDatabaseUrl(env: Record<string, string | undefined> = process.env): string {
  return env.DATABASE_URL || DEFAULT_DATABASE_URL;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * AT_CALLBACK_SECRET outside emulator mode. Checked apart from the schema so that it is named together
 * with every other missing variable (the schema's cross-checks run only once each field is valid).
 */
function missingAtSecret(env: Record<string, string | undefined>): string[] {
  const environment = env.MPESA_ENVIRONMENT?.trim();
  if (environment === 'emulator' || (env.AT_CALLBACK_SECRET ?? '').trim() !== '') return [];
  // Without it anyone who can reach /ussd could speak for any phone (set a PIN, sell, lock a customer out).
  return [`AT_CALLBACK_SECRET: is required with MPESA_ENVIRONMENT=${environment}: the secret last path segment of Africa's Talking's callback URLs (at least 16 characters from A-Z a-z 0-9 _ -, e.g. openssl rand -hex 16)`];
}

/** The field parsers with the rules across them. */
const envSchema = fieldsSchema.superRefine(checkEnv);

export function loadConfig(env: Record<string, string | undefined> = process.env) {
  const effective = withStatusResultUrl(withEmulatorDefaults(env));
  const parsed = envSchema.safeParse(effective);
  const missing = missingAtSecret(effective);
  if (!parsed.success || missing.length > 0) {
    throw new ConfigError([...(parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.') || '(environment)'}: ${i.message}`)), ...missing]);
  }
  const e = parsed.data;
  // Emulator mode: a key pair made at start-up stands in (src/server.ts); no file is read.
  const certificateFile = !e.MPESA_B2C_SHORTCODE || e.MPESA_ENVIRONMENT === 'emulator' ? null : (e.MPESA_B2C_CERT_PATH ?? bundledCertificatePath(e.MPESA_ENVIRONMENT));
  const certificate = certificateFile ? readCertificate(certificateFile, e.MPESA_B2C_CERT_PATH ? 'MPESA_B2C_CERT_PATH' : `the ${e.MPESA_ENVIRONMENT} certificate shipped in certs/`) : null;
  if (certificate && 'problem' in certificate) throw new ConfigError([certificate.problem]);
  return shapeConfig(e, certificate);
}

export type Config = ReturnType<typeof loadConfig>;

/** A config whose database is known (after the embedded Postgres, if any, has started). */
export type RunConfig = Config & { databaseUrl: string };

/**
 * In emulator mode the service calls itself; once it listens (PORT=0 picks a free port), the
 * emulator URLs are rebuilt for the real port.
 */
export function bindEmulatorUrls<C extends Config>(config: C, port: number): C {
  if (config.mpesa.environment !== 'emulator') return config;
  const self = `http://127.0.0.1:${port}`;
  return {
    ...config,
    mpesa: { ...config.mpesa, baseUrl: `${self}/emulators/daraja`, callbackUrl: `${self}/mpesa/callback/${EMULATOR_CALLBACK_SECRET}` },
    b2c: config.b2c ? bindB2cUrls(config.b2c, self) : null,
    c2b: config.c2b ? bindC2bUrls(config.c2b, self) : null,
    at: config.at.emulator ? { ...config.at, apiUrl: `${self}/emulators/at` } : config.at,
  };
}

function bindB2cUrls(b2c: NonNullable<Config['b2c']>, self: string): NonNullable<Config['b2c']> {
  const urls = emulatorB2cUrls(self);
  return { ...b2c, resultUrl: urls.MPESA_B2C_RESULT_URL, timeoutUrl: urls.MPESA_B2C_TIMEOUT_URL, statusResultUrl: urls.MPESA_B2C_STATUS_RESULT_URL };
}

function bindC2bUrls(c2b: NonNullable<Config['c2b']>, self: string): NonNullable<Config['c2b']> {
  const urls = emulatorC2bUrls(self);
  return { ...c2b, validationUrl: urls.MPESA_C2B_VALIDATION_URL, confirmationUrl: urls.MPESA_C2B_CONFIRMATION_URL };
}
