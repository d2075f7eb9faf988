import { ConfigError, loadConfig } from '../../src/config';
import { createLogger } from '../../src/lib/logger';
import { VendorError } from '../../src/lib/errors';
import { runLiveStkQuery } from '../../src/ops/live-stk-query';
import { MetricsRegistry } from '../../src/infra/metrics';
import { parseExportRange } from '../../src/ops/transactions-csv';
import { baseEnv } from '../support/harness';

const log = createLogger('silent');

describe('ops configuration', () => {
  test('without OPS_API_TOKEN the ops routes are off; a short token is refused at start-up', () => {
    expect(loadConfig(baseEnv()).ops.apiToken).toBeNull();
    expect(loadConfig({ ...baseEnv(), OPS_API_TOKEN: 'x'.repeat(24) }).ops.apiToken).toBe('x'.repeat(24));
    expect(() => loadConfig({ ...baseEnv(), OPS_API_TOKEN: 'short-token' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...baseEnv(), OPS_API_TOKEN: 'short-token' })).toThrow(/OPS_API_TOKEN/);
  });

  test('test pushes are allowed outside production, and in production only with OPS_ALLOW_TEST_STK=true', () => {
    const production = { ...baseEnv(), MPESA_ENVIRONMENT: 'production', AT_USERNAME: 'goldco' };
    expect(loadConfig(baseEnv()).ops.allowTestStk).toBe(true);
    expect(loadConfig(production).ops.allowTestStk).toBe(false);
    expect(loadConfig({ ...production, OPS_ALLOW_TEST_STK: 'true' }).ops.allowTestStk).toBe(true);
    expect(() => loadConfig({ ...production, OPS_ALLOW_TEST_STK: 'yes' })).toThrow(/OPS_ALLOW_TEST_STK/);
  });

  test('split roles are refused in emulator mode: a worker would call emulators that only a web server mounts', () => {
    const emulator = { ROLE: 'worker', DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/x', MPESA_ENVIRONMENT: 'emulator' };
    expect(() => loadConfig(emulator)).toThrow(/MPESA_ENVIRONMENT: emulator runs inside one all-in-one process/);
    expect(loadConfig({ ...emulator, ROLE: 'all' }).mpesa.environment).toBe('emulator');
  });

  test('WORKER_HTTP_PORT and SHUTDOWN_DRAIN_MS are validated', () => {
    expect(loadConfig({ ...baseEnv(), WORKER_HTTP_PORT: '9464' }).ops.workerHttpPort).toBe(9464);
    expect(loadConfig(baseEnv()).ops.workerHttpPort).toBeNull();
    expect(() => loadConfig({ ...baseEnv(), WORKER_HTTP_PORT: '70000' })).toThrow(/WORKER_HTTP_PORT/);
    expect(() => loadConfig({ ...baseEnv(), SHUTDOWN_DRAIN_MS: '-1' })).toThrow(/SHUTDOWN_DRAIN_MS/);
  });
});

describe('the live STK Query job', () => {
  test('when the job ran after its requester gave up, then Daraja is not called', async () => {
    const stkQuery = jest.fn();
    const result = await runLiveStkQuery({ daraja: { stkQuery }, log }, { data: { checkoutRequestId: 'ws_CO_1', waitMs: 1000 }, timestamp: 10_000 }, () => 11_001);
    expect(result).toEqual({ state: 'stale' });
    expect(stkQuery).not.toHaveBeenCalled();
  });

  test('when Daraja fails, then the failure is the answer (the job does not throw)', async () => {
    const stkQuery = jest.fn().mockRejectedValue(new VendorError('daraja', 'retry', '500.003.02', 'Spike arrest'));
    const result = await runLiveStkQuery({ daraja: { stkQuery }, log }, { data: { checkoutRequestId: 'ws_CO_1', waitMs: 1000 }, timestamp: 10_000 }, () => 10_500);
    expect(result).toEqual({ state: 'error', code: '500.003.02', kind: 'retry', message: 'daraja 500.003.02: Spike arrest' });
  });
});

describe('the CSV export range', () => {
  test('dates are Nairobi days, inclusive, as a half-open UTC range', () => {
    expect(parseExportRange('2026-11-01', '2026-11-30')).toEqual({ ok: true, range: { fromIso: '2026-10-31T21:00:00.000Z', toExclusiveIso: '2026-11-30T21:00:00.000Z' } });
    expect(parseExportRange('2024-02-29', '2024-02-29')).toMatchObject({ ok: true });
    expect(parseExportRange('2026-02-29', '2026-03-01')).toMatchObject({ ok: false });
    expect(parseExportRange('2026-01-01', '2027-01-01')).toMatchObject({ ok: true }); // 366 days
    expect(parseExportRange('2026-01-01', '2027-01-02')).toMatchObject({ ok: false });
    expect(parseExportRange('2026-01-01', '2026-12-31')).toMatchObject({ ok: true });
  });
});

describe('the metrics registry', () => {
  test('two services in one process keep separate counts', async () => {
    const a = new MetricsRegistry({ defaultMetrics: false });
    const b = new MetricsRegistry({ defaultMetrics: false });
    a.inc('sms_total', { status: 'sent' });
    a.inc('sms_total', { status: 'sent' });
    b.inc('sms_total', { status: 'failed' });
    expect(await a.render([])).toContain('sms_total{status="sent"} 2');
    expect(await a.render([])).not.toContain('status="failed"');
    expect(await b.render([])).toContain('sms_total{status="failed"} 1');
  });

  test('a collector slower than its deadline is reported, not waited for', async () => {
    const r = new MetricsRegistry({ defaultMetrics: false });
    const text = await r.render([{ name: 'slow', collect: () => new Promise(() => undefined) }, { name: 'fast', collect: async () => [{ name: 'outbox_unrelayed', labels: {}, value: 3 }] }], 50);
    expect(text).toContain('metrics_collect_errors{collector="slow"} 1');
    expect(text).toContain('outbox_unrelayed 3');
  });
});
