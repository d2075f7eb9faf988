import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import nock from 'nock';
import { RedisKeyValueStore } from '../../src/infra/kv-store';
import { HttpPriceFeed } from '../../src/prices/price-source';
import { TEST_REDIS_URL } from '../support/test-env';
import { en } from '../../src/i18n/en';
import { movedTooFar } from '../../src/prices/price-quote';
import { expectBooksBalanced, fundPoolGrams, startTestService, waitFor, withRedis, type TestService } from '../support/harness';
import { dial } from '../support/http';
import { OPS_TOKEN, ops } from '../support/ops';
import { nextPhone } from '../support/phones';

/**
 * A price feed that suddenly jumps (KES 1/g, a decimal point lost) would let anyone buy the pool
 * cheaply and sell it back at the restored price. A quote more than PRICE_MAX_MOVE_PERCENT away from
 * the last accepted one pauses trading with an ops alert instead of being used.
 */

const HOME_EN = `${en.ussd.homeTitle}\n${en.ussd.homeMenu}`;

describe('movedTooFar (integer percent of the last accepted quote)', () => {
  const last = { buyCentsPerGram: 850_000, sellCentsPerGram: 824_500, asOf: '2026-12-04T08:00:00Z' };
  test.each([
    ['exactly 10% up on buy', { buyCentsPerGram: 935_000, sellCentsPerGram: 824_500 }, false],
    ['one cent over 10% up on buy', { buyCentsPerGram: 935_001, sellCentsPerGram: 824_500 }, true],
    ['exactly 10% down on sell', { buyCentsPerGram: 850_000, sellCentsPerGram: 742_050 }, false],
    ['one cent over 10% down on sell', { buyCentsPerGram: 850_000, sellCentsPerGram: 742_049 }, true],
    ['KES 1/g', { buyCentsPerGram: 100, sellCentsPerGram: 97 }, true],
  ])('%s', (_what, next, expected) => {
    expect(movedTooFar(last, { ...next, asOf: last.asOf }, 10)).toBe(expected);
  });
});

describe('a price feed that jumps pauses trading', () => {
  const FEED = 'https://prices.example.com';
  let answer: { buyKesPerGram: string; sellKesPerGram: string } = { buyKesPerGram: '9000.50', sellKesPerGram: '8700.25' };
  let svc: TestService;
  beforeAll(async () => {
    nock(FEED).persist().get('/v1/gold').reply(() => [200, { ...answer, asOf: new Date(Date.now() - 1000).toISOString() }]);
    svc = await startTestService({ PRICE_PROVIDER: 'http', PRICE_URL: `${FEED}/v1/gold`, PRICE_POLL_SECONDS: '1', PRICE_MAX_MOVE_PERCENT: '10', OPS_API_TOKEN: OPS_TOKEN });
    await fundPoolGrams(svc.db, 10);
  });
  afterEach(() => expectBooksBalanced(svc.db));
  afterAll(async () => {
    await svc.close();
    nock.cleanAll();
  });

  const prices = async () => (await ops(svc, '/ops/prices')).json;
  const openAlerts = () => svc.db('ops_alerts').where({ kind: 'price_jump' }).whereNull('resolved_at');

  test('when the feed says KES 1/g, then nothing is dealt at it or at the old price, one alert is raised, and trading resumes once the feed is back in band', async () => {
    await waitFor(async () => (await prices()).quote?.buyCentsPerGram === 900_050, 'the first accepted quote');
    answer = { buyKesPerGram: '1.00', sellKesPerGram: '0.97' };
    await waitFor(async () => (await prices()).paused?.quote.buyCentsPerGram === 100, 'the pause');
    const state = await prices();
    expect(state.quote).toBeNull();
    expect(state.accepted.buyCentsPerGram).toBe(900_050);

    const phone = nextPhone();
    await dial(svc.url, [], { phoneNumber: phone }); // past the first dial's language offer
    expect((await dial(svc.url, ['1', '500'], { phoneNumber: phone })).last).toBe(`CON ${en.ussd.priceUnavailable}\n${HOME_EN}`);
    expect((await dial(svc.url, ['5'], { phoneNumber: phone })).last).toBe(`CON ${en.ussd.priceUnavailable}\n${HOME_EN}`);
    expect(await svc.db('orders').count({ n: '*' })).toEqual([{ n: 0 }]);

    // Polled again and again while paused: still one alert.
    await waitFor(async () => (await prices()).paused?.at !== state.paused.at, 'another poll while paused');
    const alerts = await openAlerts();
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ severity: 'error', order_id: null });

    answer = { buyKesPerGram: '9100.00', sellKesPerGram: '8800.00' };
    await waitFor(async () => (await prices()).quote?.buyCentsPerGram === 910_000, 'trading to resume');
    expect((await prices()).paused).toBeNull();
    // The pause's alert is answered by the feed's return (closing it by hand would be refused).
    await waitFor(async () => (await openAlerts()).length === 0, 'the price_jump alert to close');
    expect((await svc.db('ops_alerts').where({ id: alerts[0].id }).first()).resolution).toBe('the feed came back within the band: trading resumed');
    expect((await dial(svc.url, ['1', '900'], { phoneNumber: phone })).last).toBe(`CON ${en.ussd.buyConfirm('900', '0.0989', '9,100')}`);
  });

  test('when a real move is larger than the band, then an operator accepts the new price and the alert closes with who did it', async () => {
    await waitFor(async () => (await prices()).quote !== null, 'an accepted quote');
    expect((await ops(svc, '/ops/prices/accept', { body: { operator: 'amina', note: 'nothing paused' } })).status).toBe(409);
    answer = { buyKesPerGram: '12000.00', sellKesPerGram: '11640.00' };
    await waitFor(async () => (await prices()).paused?.quote.buyCentsPerGram === 1_200_000, 'the pause');
    expect((await ops(svc, '/ops/prices/accept', { body: { operator: 'amina' } })).status).toBe(400);
    expect((await ops(svc, '/ops/prices/accept', { body: { operator: 'amina', note: 'LBMA moved' }, token: 'wrong-token-wrong-token-wrong' })).status).toBe(401);

    // Prices the operator did not look at (a later poll replaced the paused quote) are not accepted.
    const stale = await ops(svc, '/ops/prices/accept', { body: { operator: 'amina', note: 'LBMA moved', buyCentsPerGram: 1_100_000, sellCentsPerGram: 1_067_000 } });
    expect(stale).toMatchObject({ status: 409, json: { ok: false, error: 'paused_quote_changed', paused: { buyCentsPerGram: 1_200_000, sellCentsPerGram: 1_164_000 } } });
    expect((await prices()).quote).toBeNull();
    expect((await ops(svc, '/ops/prices/accept', { body: { operator: 'amina', note: 'x', buyCentsPerGram: 1_200_000 } })).status).toBe(400);

    const accepted = await ops(svc, '/ops/prices/accept', { body: { operator: 'amina', note: 'LBMA moved', buyCentsPerGram: 1_200_000, sellCentsPerGram: 1_164_000 } });
    expect(accepted.status).toBe(200);
    expect(accepted.json.accepted.buyCentsPerGram).toBe(1_200_000);
    expect((await prices()).quote.buyCentsPerGram).toBe(1_200_000);
    expect(await openAlerts()).toEqual([]);
    const closed = await svc.db('ops_alerts').where({ kind: 'price_jump' }).orderBy('id', 'desc').first();
    expect(closed.resolution).toBe('price accepted by amina: LBMA moved');
  });

  test('when the feed walks in steps each inside the band, then the step that takes it past the band from the start of the window pauses trading', async () => {
    answer = { buyKesPerGram: '12000.00', sellKesPerGram: '11640.00' };
    await waitFor(async () => (await prices()).quote?.buyCentsPerGram === 1_200_000, 'the accepted quote');
    // +8%: inside the band from both the last quote and the window's start.
    answer = { buyKesPerGram: '12960.00', sellKesPerGram: '12571.20' };
    await waitFor(async () => (await prices()).quote?.buyCentsPerGram === 1_296_000, 'the first step');
    // +7.7% from the last quote, but +16.7% from where the window began: paused.
    answer = { buyKesPerGram: '14000.00', sellKesPerGram: '13580.00' };
    await waitFor(async () => (await prices()).paused?.quote.buyCentsPerGram === 1_400_000, 'the pause');
    expect((await prices()).quote).toBeNull();
    // The alert is raised right after the pause is stored (two stores: the shared KV store, then Postgres).
    const alert = await waitFor(async () => (await openAlerts()).find((a) => a.details.quote.buyCentsPerGram === 1_400_000), 'the price_jump alert');
    expect(alert.details).toMatchObject({ last: { buyCentsPerGram: 1_200_000 }, quote: { buyCentsPerGram: 1_400_000 } });
    // Back within the band of both: trading resumes.
    answer = { buyKesPerGram: '12500.00', sellKesPerGram: '12125.00' };
    await waitFor(async () => (await prices()).quote?.buyCentsPerGram === 1_250_000, 'trading to resume');
    await svc.db('ops_alerts').where({ kind: 'price_jump' }).whereNull('resolved_at').update({ resolved_at: svc.db.fn.now(), resolution: 'test' });
  });

  test('when the feed has been down for days, then the last accepted quote is still the baseline (kept for a year, not a day)', async () => {
    const ttl = await withRedis((r) => r.pttl(`${svc.config.queuePrefix}:prices:latest`));
    expect(ttl).toBeGreaterThan(300 * 86_400_000);
  });
});

describe('the drift window slides (no boundary resets it)', () => {
  const FEED = 'https://drift-feed.example.com';
  const redis = new Redis(TEST_REDIS_URL);
  const prefix = `drift-${randomUUID()}`;
  const feed = new HttpPriceFeed(new RedisKeyValueStore(redis), prefix, `${FEED}/v1/gold`, 1, 3600 * 48, 10);
  afterAll(async () => {
    await redis.del(`${prefix}:prices:latest`);
    redis.disconnect();
  });
  const start = Date.parse('2026-12-05T10:30:00Z');
  async function pollAt(minutes: number, buyKes: string, sellKes: string) {
    const at = new Date(start + minutes * 60_000);
    nock(FEED).get('/v1/gold').reply(200, { buyKesPerGram: buyKes, sellKesPerGram: sellKes, asOf: at.toISOString() });
    return feed.poll(() => at).then(
      (q) => ({ accepted: q.buyCentsPerGram }),
      (err: Error) => ({ refused: err.name }),
    );
  }

  test('when the feed steps down 9.5% an hour apart, across hour boundaries, then the second step pauses trading; after 24 hours the old high no longer counts', async () => {
    expect(await pollAt(0, '10000.00', '9700.00')).toEqual({ accepted: 1_000_000 });
    expect(await pollAt(61, '9050.00', '8778.50')).toEqual({ accepted: 905_000 });
    // 9.5% below the last accepted quote, but 18% below the hour before's high: paused.
    expect(await pollAt(122, '8190.00', '7944.30')).toEqual({ refused: 'PriceJump' });
    expect((await feed.status()).paused?.quote.buyCentsPerGram).toBe(819_000);
    // A day and more later the 10,000 high has left the window; 8,190 is within 10% of 9,050.
    expect(await pollAt(61 + 25 * 60, '8190.00', '7944.30')).toEqual({ accepted: 819_000 });
  });
});
