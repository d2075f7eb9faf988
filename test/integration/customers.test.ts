import type { Msisdn } from '../../src/lib/msisdn';
import { findOrCreateCustomer } from '../../src/orders/customers';
import { startTestService, type TestService } from '../support/harness';

describe('finding the customer of a USSD session', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService();
  });
  afterAll(() => svc.close());

  const xmin = async (msisdn: string) => (await svc.db.raw('SELECT xmin::text AS x FROM customers WHERE msisdn = ?', [msisdn])).rows[0]?.x;

  test('when a number dials for the first time, then the customer is created; when it dials again, then the same customer is only read, with no new row version', async () => {
    const msisdn = '254711000501' as Msisdn;
    const first = await findOrCreateCustomer(svc.db, msisdn);
    expect(first).toMatchObject({ msisdn, language: 'en', created: true, hasPin: false });
    const version = await xmin(msisdn);
    const again = await findOrCreateCustomer(svc.db, msisdn);
    expect(again).toEqual({ ...first, created: false });
    expect(await xmin(msisdn)).toBe(version);
  });

  test('when twelve first requests of one new number race, then one customer exists, exactly one request created it and all got its id', async () => {
    const msisdn = '254711000502' as Msisdn;
    const all = await Promise.all(Array.from({ length: 12 }, () => findOrCreateCustomer(svc.db, msisdn)));
    expect(new Set(all.map((c) => c.id)).size).toBe(1);
    expect(all.filter((c) => c.created)).toHaveLength(1);
    expect(await svc.db('customers').where({ msisdn }).count({ n: '*' })).toEqual([{ n: 1 }]);
  });
});
