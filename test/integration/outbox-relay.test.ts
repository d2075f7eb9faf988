import { createDb, type Db } from '../../src/db/knex';
import { Outbox } from '../../src/infra/outbox';
import { QUEUE_NAMES } from '../../src/infra/queues';
import { createLogger } from '../../src/lib/logger';
import { startTestService, waitFor, type TestService } from '../support/harness';

/**
 * Commit, then relay (src/infra/outbox.ts): a row the transaction inserted is handed to the queue right after COMMIT
 * with ONE statement (the job added, then the row marked); a row that existed before goes through `relay`, which
 * never hands an already relayed row to the queue again.
 */
describe('the outbox relay after COMMIT', () => {
  let svc: TestService;
  // An outbox on a connection pool of its own: its statements are this test's alone (the service's sweep and
  // workers share the service's pool).
  let db: Db;
  let own: Outbox;
  beforeAll(async () => {
    svc = await startTestService();
    db = createDb(svc.running.config.databaseUrl!, { max: 2 });
    own = new Outbox(db, svc.running.services.queues, createLogger('silent'));
  });
  afterAll(async () => {
    await db?.destroy();
    await svc?.close();
  });

  const outbox = () => own;
  // The BullMQ queue itself (the service's JobQueue interface has no getJob).
  const queue = () => svc.running.services.backends.dashboardQueues().find((q) => q.name === QUEUE_NAMES.sms)!;

  test('a row inserted by the transaction is queued and marked with one statement after COMMIT', async () => {
    const sql: string[] = [];
    db.on('query', (q: { sql: string }) => sql.push(q.sql.trim().split(/[\s;]+/)[0]!.toLowerCase()));
    await outbox().transaction((trx) => outbox().write(trx, 'sms', 'sms-999000001', { smsId: 999000001 }));
    db.removeAllListeners('query');
    expect(sql).toEqual(['begin', 'insert', 'commit', 'update']);
    expect(await queue().getJob('sms-999000001')).toBeTruthy();
    expect(await svc.db('outbox').where({ job_id: 'sms-999000001' }).first('relayed_at')).toMatchObject({ relayed_at: expect.any(Date) });
  });

  test('a row that was relayed before is not handed to the queue again when a later transaction writes its job id', async () => {
    await outbox().transaction((trx) => outbox().write(trx, 'sms', 'sms-999000002', { smsId: 999000002 }));
    // Its job ran (no such SMS: nothing to do) and is gone from the queue.
    const job = await waitFor(async () => {
      const j = await queue().getJob('sms-999000002');
      return j && (await j.isCompleted()) ? j : null;
    }, 'the job to complete');
    await job.remove();
    await outbox().transaction((trx) => outbox().write(trx, 'sms', 'sms-999000002', { smsId: 999000002 }));
    expect(await queue().getJob('sms-999000002')).toBeUndefined();
  });

  test('the rows of concurrent transactions are marked relayed together: fewer UPDATEs than transactions, every row marked once its job is queued', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => 999000100 + i);
    const sql: string[] = [];
    db.on('query', (q: { sql: string }) => sql.push(q.sql.trim().split(/[\s;]+/)[0]!.toLowerCase()));
    await Promise.all(ids.map((id) => outbox().transaction((trx) => outbox().write(trx, 'sms', `sms-${id}`, { smsId: id }))));
    db.removeAllListeners('query');
    expect(sql.filter((w) => w === 'commit')).toHaveLength(ids.length);
    // Each relay waits for the batch holding its mark: 12 marks in a few UPDATEs (2 or 3 here; one each before).
    expect(sql.filter((w) => w === 'update').length).toBeLessThan(ids.length);
    for (const id of ids) expect(await queue().getJob(`sms-${id}`)).toBeTruthy();
    const rows = await svc.db('outbox').whereIn('job_id', ids.map((id) => `sms-${id}`)).select('relayed_at');
    expect(rows).toHaveLength(ids.length);
    for (const r of rows) expect(r.relayed_at).toEqual(expect.any(Date));
  });
});
