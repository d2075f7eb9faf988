import { en } from '../../src/i18n/en';
import { USSD_LIMIT_PREFIX } from '../../src/orders/phone-limits';
import { handleUssd } from '../../src/ussd/handle-ussd';
import type { Services } from '../../src/services';
import { SessionStore, sessionKey } from '../../src/ussd/session-store';
import { AT_SECRET, SERVICE_CODE, USSD_PATH, startTestService, waitFor, withRedis, type TestService } from '../support/harness';

/**
 * POST /ussd/<secret> is answered before express (src/http/ussd-fast-path.ts). The same requests are sent to a
 * service taking that path and to one that cannot (an IP allowlist sends every request through express): every
 * answer, status and body, must be the same. Then the work a screen costs: Redis commands and SQL statements.
 */
describe('the USSD fast path answers exactly as express', () => {
  let fast: TestService;
  let viaExpress: TestService;
  beforeAll(async () => {
    // The outbox sweep (every second by default) would run its SQL inside the screens' statement count: an hour.
    fast = await startTestService({ OUTBOX_RELAY_INTERVAL_MS: '3600000' });
    viaExpress = await startTestService({ AT_CALLBACK_IP_ALLOWLIST: '127.0.0.0/8,::1/128' });
  });
  afterAll(async () => {
    await fast?.close();
    await viaExpress?.close();
  });

  const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
  const good = (sessionId: string, text = '') => form({ sessionId, serviceCode: SERVICE_CODE, phoneNumber: '+254711000777', text });

  const cases: Array<[string, { path?: string; body: string; type?: string }]> = [
    ['a first screen', { body: good('fp-1') }],
    ['a second screen', { body: good('fp-1', '1') }],
    ['a repeated field', { body: `${good('fp-2')}&text=1` }],
    ['a __proto__ field', { body: `${good('fp-3')}&__proto__=x` }],
    ['too many fields', { body: `${good('fp-4')}&${Array.from({ length: 20 }, (_, i) => `f${i}=1`).join('&')}` }],
    ['a body over 8 kB', { body: `${good('fp-5')}&pad=${'x'.repeat(9000)}` }],
    ['JSON instead of a form', { body: JSON.stringify({ sessionId: 'fp-6', serviceCode: SERVICE_CODE, phoneNumber: '+254711000777', text: '' }), type: 'application/json' }],
    ['no sessionId', { body: form({ serviceCode: SERVICE_CODE, phoneNumber: '+254711000777' }) }],
    ['a wrong secret', { path: '/ussd/not-the-secret', body: good('fp-7') }],
    ['a query string', { path: `${USSD_PATH}?x=1`, body: good('fp-8') }],
    ['an encoded secret', { path: `/ussd/${encodeURIComponent(AT_SECRET)}`, body: good('fp-9') }],
    ['a deeper path', { path: `${USSD_PATH}/more`, body: good('fp-10') }],
  ];

  test.each(cases)('%s', async (_name, c) => {
    const send = async (svc: TestService) => {
      const res = await fetch(`${svc.url}${c.path ?? USSD_PATH}`, { method: 'POST', headers: { 'content-type': c.type ?? 'application/x-www-form-urlencoded' }, body: c.body });
      return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
    };
    expect(await send(fast)).toEqual(await send(viaExpress));
  });

  test('a returning customer\'s main menu, amount screen and confirm screen cost one Redis round trip each (one script) and no SQL', async () => {
    const phone = '+254711000888';
    const walk = (sessionId: string, text: string) =>
      fetch(`${fast.url}${USSD_PATH}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form({ sessionId, serviceCode: SERVICE_CODE, phoneNumber: phone, text }) }).then((r) => r.text());
    // The first session ever reads (creates) the customer and caches the profile.
    expect(await walk('count-0', '')).toMatch(/^CON /);
    const sql: string[] = [];
    const onQuery = (q: { sql: string }) => sql.push(q.sql);
    fast.db.on('query', onQuery);
    try {
      await withRedis(async (monitorClient) => {
        const commands: string[] = [];
        const monitor = await monitorClient.monitor();
        // Commands a script runs show with source "lua": one round trip is what the client sent.
        monitor.on('monitor', (_time: string, args: string[], source: string) => {
          if (source !== 'lua' && args.some((a) => a.includes('254711000888'))) commands.push(String(args[0]).toUpperCase());
        });
        try {
          for (const [n, text] of ['', '1', '1*500'].entries()) {
            commands.length = 0;
            expect(await walk('count-1', text)).toMatch(/^CON /);
            // MONITOR shows commands in the order Redis ran them: once this marker shows, all of the screen's have.
            await monitorClient.get(`marker:254711000888:${n}`);
            await waitFor(async () => commands.includes('GET'), 'the marker in the MONITOR stream');
            // ioredis sends a script's first use on a connection as EVAL, later ones as EVALSHA: one round trip either way.
            expect({ text, commands: commands.map((c) => (c === 'EVAL' ? 'EVALSHA' : c)) }).toEqual({ text, commands: ['EVALSHA', 'GET'] });
          }
        } finally {
          monitor.disconnect();
        }
      });
      expect(sql).toEqual([]);
    } finally {
      fast.db.off('query', onQuery);
    }
  });

  test('a session moved on by another process meanwhile is not overwritten: the write is refused and the stored session answers', async () => {
    const phone = '+254711000999';
    const walk = (text: string) =>
      fetch(`${fast.url}${USSD_PATH}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form({ sessionId: 'moved-1', serviceCode: SERVICE_CODE, phoneNumber: phone, text }) }).then((r) => r.text());
    expect(await walk('')).toMatch(/^CON /);
    expect(await walk('1')).toMatch(/^CON /);
    const key = sessionKey(fast.config.queuePrefix, '254711000999', 'moved-1');
    // What another web process would have written after answering '1*500' itself.
    await withRedis(async (r) => {
      const stored = JSON.parse((await r.get(key))!);
      const moved = { ...stored, rev: stored.rev + 1, consumed: 2, lastReply: { end: false, text: 'answered by the other process' } };
      await r.set(key, JSON.stringify(moved), 'PX', 60_000);
    });
    expect(await walk('1*500')).toBe('CON answered by the other process');
    expect(JSON.parse((await withRedis((r) => r.get(key)))!)).toMatchObject({ consumed: 2, lastReply: { text: 'answered by the other process' } });
  });

  test('two processes answering copies of one request from the same stored state: the one that remembers its own write does not overwrite the other (no ABA on rev)', async () => {
    const s = fast.running.services;
    // Web process B: its own remembered sessions, the same Redis. Its write of the duplicate is held until A answered.
    const { sessions: b, release } = otherProcess(s);
    const req = (text: string) => ({ sessionId: 'aba-1', serviceCode: SERVICE_CODE, phoneNumber: '+254711000998', text });
    const key = sessionKey(s.config.queuePrefix, '254711000998', 'aba-1');
    const stored = async () => JSON.parse((await withRedis((r) => r.get(key)))!);
    const viaA = (text: string) => handleUssd(s, req(text));

    await viaA('');
    await viaA('1'); // A wrote the amount screen and remembers it
    // B reads that state (its script goes first: A and B share one Redis connection here); its write waits.
    const byB = handleUssd({ ...s, sessions: b }, req('1*500'));
    await new Promise((r) => setTimeout(r, 5)); // the two quotes get different times
    expect(await viaA('1*500')).toMatch(/^CON /); // A: one script, from its remembered state
    const aQuote = (await stored()).state.data.buy.quotedAt;
    release();
    expect(await byB).toMatch(/^CON /); // B's write replaces A's (as any second answer to a duplicate did before)
    const bQuote = (await stored()).state.data.buy.quotedAt;
    expect(bQuote).not.toBe(aQuote);
    // A's next screen must not be computed from A's own state over B's: the locked quote the saver confirms is
    // the one Redis holds. An invalid choice re-prompts, keeping the quote.
    expect(await viaA('1*500*9')).toMatch(/^CON /);
    expect((await stored()).state.data.buy.quotedAt).toBe(bQuote);
  });

  test('a first screen that read the customer before a PIN was set cannot put the old profile back in the cache', async () => {
    const s = fast.running.services;
    const phone = '+254711000997';
    const { sessions: other, release } = otherProcess(s);
    const req = (sessionId: string, text: string) => ({ sessionId, serviceCode: SERVICE_CODE, phoneNumber: phone, text });
    // Session 1's first screen reads the customer (no PIN yet); its write, profile included, is held back.
    const first = handleUssd({ ...s, sessions: other }, req('pc-1', ''));
    await waitFor(async () => (await s.db('customers').where({ msisdn: '254711000997' }).first()) !== undefined, 'session 1 read the new customer');
    // Meanwhile session 2 sets the wallet PIN.
    await handleUssd(s, req('pc-2', ''));
    expect(await handleUssd(s, req('pc-2', '3'))).toBe(`CON ${en.ussd.newPin}`);
    await handleUssd(s, req('pc-2', '3*4829'));
    expect(await handleUssd(s, req('pc-2', '3*4829*4829'))).toMatch(/^CON /);
    release();
    await first;
    // A later session knows the wallet has a PIN: My gold asks for it instead of offering to create one.
    await handleUssd(s, req('pc-3', ''));
    expect(await handleUssd(s, req('pc-3', '3'))).toBe(`CON ${en.ussd.enterPin}`);
  });

  test('a PIN effect drops the cached profile even when the session write after it fails', async () => {
    const s = fast.running.services;
    const phone = '+254711000996';
    const key = `${s.config.queuePrefix}:ussd:profile:254711000996`;
    const req = (sessionId: string, text: string) => ({ sessionId, serviceCode: SERVICE_CODE, phoneNumber: phone, text });
    await handleUssd(s, req('fw-0', '')); // a new customer: read from Postgres
    await handleUssd(s, req('fw-1', '')); // cached by now
    expect(JSON.parse((await withRedis((r) => r.get(key)))!)).toMatchObject({ hasPin: false });
    await handleUssd(s, req('fw-1', '3'));
    // The session write after the PIN is staged fails (Redis hiccup): the request fails, the staged PIN is in Postgres.
    const { sessions: failing } = otherProcess(s);
    failing.commit = async () => {
      throw new Error('redis went away');
    };
    await expect(handleUssd({ ...s, sessions: failing }, req('fw-1', '3*4829'))).rejects.toThrow('redis went away');
    expect(await withRedis((r) => r.get(key))).toBe('');
  });
});

/**
 * Another web process: its own SessionStore (its own remembered sessions) on the same Redis. Its session writes wait
 * until `release()`, so a test can order them against the first process's.
 */
function otherProcess(s: Services): { sessions: SessionStore; release: () => void } {
  const sessions = new SessionStore(s.kv, s.config.queuePrefix, s.config.ussd.sessionTtlSeconds, s.config.ussd.resumeSeconds, {
    turns: s.backends.ussdTurns!,
    limit: { limiter: s.limits.ussdRequests, points: s.config.limits.ussdRequestsPerMinute, keyPrefix: USSD_LIMIT_PREFIX(s.config.queuePrefix) },
  });
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const commit = sessions.commit.bind(sessions);
  sessions.commit = async (...args) => {
    await gate;
    return commit(...args);
  };
  return { sessions, release };
}
