import type { Redis } from 'ioredis';

/**
 * A USSD request's Redis work in two round trips, each one script (EVALSHA): `begin` ticks the phone's request
 * limit and reads what the request needs; `commit` writes what it changed. The values are opaque strings here
 * (src/ussd/session-store.ts gives them meaning). Redis only: without Redis the session store composes the same
 * steps from the key-value store and the limiter.
 */
export interface UssdTurns {
  begin(keys: TurnKeys, limit: { points: number; windowMs: number }): Promise<TurnRead>;
  /**
   * Ticks the limit and, if the stored session still starts with `expectedPrefix` (or is absent, for ''), writes
   * the new one and the resume point: one round trip. Otherwise writes nothing and reads, as `begin` does.
   */
  advance(keys: TurnKeys, limit: { points: number; windowMs: number }, expectedPrefix: string, writes: Omit<TurnWrites, 'profile'>): Promise<TurnRead | 'saved'>;
  /** Writes the session and resume point; the profile only where `forget` left no marker (and none is cached). */
  commit(writes: TurnWrites): Promise<void>;
  /**
   * Drops a cached profile and, for `markerMs`, keeps any profile from being cached again at that key: a request
   * that read the database before the change would otherwise cache what it read after the change was made.
   */
  forget(key: string, markerMs: number): Promise<void>;
}

export interface TurnKeys {
  limit: string;
  session: string;
  resume: string;
  profile: string;
}

/** `resume` and `profile` are read only when there is no session yet (its first screen). */
export type TurnRead = { allowed: false } | { allowed: true; session: string | null; resume: string | null; profile: string | null };

export interface TurnWrites {
  session: { key: string; value: string; ttlMs: number };
  /** A value to record, null to clear, undefined to leave as it is. */
  resume: { key: string; value: string | null | undefined; ttlMs: number };
  profile?: { key: string; value: string; ttlMs: number };
}

// A fixed window per phone, as rate-limiter-flexible counted it (same key, a plain counter): the first request
// of a window starts it. A refused request changes nothing else.
const BEGIN = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then return {0} end
local session = redis.call('GET', KEYS[2])
if session then return {1, session} end
return {1, false, redis.call('GET', KEYS[3]), redis.call('GET', KEYS[4])}`;

// The write only if the stored session is still the one the caller computed from (its first characters carry its
// `rev`), or still absent: another process may have answered a screen of this session meanwhile.
const ADVANCE = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n > tonumber(ARGV[1]) then return {0} end
local session = redis.call('GET', KEYS[2])
local expected = ARGV[3]
local unchanged
if expected == '' then unchanged = not session else unchanged = session and string.sub(session, 1, #expected) == expected end
if unchanged then
  redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[5])
  if ARGV[6] == 'set' then redis.call('SET', KEYS[3], ARGV[7], 'PX', ARGV[8])
  elseif ARGV[6] == 'clear' then redis.call('DEL', KEYS[3]) end
  return {2}
end
if session then return {1, session} end
return {1, false, redis.call('GET', KEYS[3]), redis.call('GET', KEYS[4])}`;

const COMMIT = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if ARGV[3] == 'set' then redis.call('SET', KEYS[2], ARGV[4], 'PX', ARGV[5])
elseif ARGV[3] == 'clear' then redis.call('DEL', KEYS[2]) end
if ARGV[6] ~= '' then redis.call('SET', KEYS[3], ARGV[6], 'PX', ARGV[7], 'NX') end
return 1`;

type Scripted = Redis & {
  ussdBegin(limitKey: string, sessionKey: string, resumeKey: string, profileKey: string, points: number, windowMs: number): Promise<[0] | [1, string] | [1, null, string | null, string | null]>;
  ussdCommit(sessionKey: string, resumeKey: string, profileKey: string, ...args: Array<string | number>): Promise<number>;
  ussdAdvance(limitKey: string, sessionKey: string, resumeKey: string, profileKey: string, ...args: Array<string | number>): Promise<[0] | [2] | [1, string] | [1, null, string | null, string | null]>;
};

const resumeMode = (value: string | null | undefined) => (value === undefined ? 'keep' : value === null ? 'clear' : 'set');

export function redisUssdTurns(redis: Redis): UssdTurns {
  // defineCommand sends EVALSHA, and EVAL once if Redis does not know the script yet (after a restart).
  redis.defineCommand('ussdBegin', { numberOfKeys: 4, lua: BEGIN });
  redis.defineCommand('ussdCommit', { numberOfKeys: 3, lua: COMMIT });
  redis.defineCommand('ussdAdvance', { numberOfKeys: 4, lua: ADVANCE });
  const r = redis as Scripted;
  return {
    async begin(keys, limit) {
      const out = await r.ussdBegin(keys.limit, keys.session, keys.resume, keys.profile, limit.points, limit.windowMs);
      if (out[0] === 0) return { allowed: false };
      return { allowed: true, session: out[1] ?? null, resume: out[2] ?? null, profile: out[3] ?? null };
    },
    async advance(keys, limit, expectedPrefix, w) {
      const out = await r.ussdAdvance(
        keys.limit, keys.session, keys.resume, keys.profile,
        limit.points, limit.windowMs, expectedPrefix, w.session.value, w.session.ttlMs, resumeMode(w.resume.value), w.resume.value ?? '', w.resume.ttlMs,
      );
      if (out[0] === 2) return 'saved';
      if (out[0] === 0) return { allowed: false };
      return { allowed: true, session: out[1] ?? null, resume: out[2] ?? null, profile: out[3] ?? null };
    },
    async commit(w) {
      await r.ussdCommit(
        w.session.key, w.resume.key, w.profile?.key ?? w.session.key,
        w.session.value, w.session.ttlMs, resumeMode(w.resume.value), w.resume.value ?? '', w.resume.ttlMs, w.profile?.value ?? '', w.profile?.ttlMs ?? 0,
      );
    },
    async forget(key, markerMs) {
      // An empty value reads as "no profile" (the session store reads the database) and blocks the NX of commit.
      await redis.set(key, '', 'PX', markerMs);
    },
  };
}
