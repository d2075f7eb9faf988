import { randomInt } from 'node:crypto';
import type { KeyValueStore } from '../infra/kv-store';
import type { Limiter } from '../infra/limiter';
import type { UssdTurns } from '../infra/ussd-turns';
import type { MenuState, Reply, Snapshot } from './machine';
import { RememberedSessions } from './remembered-sessions';

/**
 * A USSD session between requests. Holds no PIN and no raw `text`: only where the user is, and
 * which positions of `text` were PINs (so whatever records `text` can scrub them).
 */
export interface UssdSession {
  /**
   * Names the write that stored this state: a fresh random number each write (0: never stored). Kept FIRST in the
   * JSON, whose first characters the conditional write compares. Not a counter: two processes answering copies of
   * one request from the same stored state would both write "rev + 1", and the one that remembers its own would then
   * pass the check against the other's different session (ABA).
   */
  rev: number;
  customerId: number;
  msisdn: string;
  state: MenuState;
  /** How many `*`-separated inputs of `text` have been applied; a repeat of the same request is answered from lastReply. */
  consumed: number;
  lastReply: Reply;
  /** 0-based positions in `text` typed on a PIN screen. */
  secretInputs: number[];
}

/**
 * What the menu needs of a returning customer, kept in Redis between sessions so that a session's first screen
 * reads no database. Only for showing the menu: every decision (a PIN check, a lock) reads the database itself.
 */
export interface CachedProfile {
  customerId: number;
  language: string;
  hasPin: boolean;
  languageChosen: boolean;
  pinLockedUntil: number | null;
}

/** The start of a request: refused by the per-phone limit, or what it needs (resume and profile: first screen only). */
export type Turn = { allowed: false } | { allowed: true; session: UssdSession | null; resume: Snapshot | null; profile: CachedProfile | null };

/**
 * How long a cached profile is believed: a day, so that a saver who dials daily starts without Postgres. It is dropped
 * whenever a USSD PIN or language effect runs, and those effects are the only writers of what it holds (PIN, tries,
 * lock, language; test/unit/profile-writers.test.ts). Every PIN check reads the database anyway.
 */
export const PROFILE_CACHE_MS = 24 * 3_600_000;

/** Longer than any request takes between reading the customer and writing the cache. */
const PROFILE_FORGET_MARKER_MS = 60_000;

export interface RequestLimit {
  limiter: Limiter;
  /** Requests per phone per minute (USSD_REQUESTS_PER_MINUTE). */
  points: number;
  /** The limiter's key prefix: `<prefix>:<msisdn>` is the counter, in Redis or in Postgres. */
  keyPrefix: string;
}

/**
 * Sessions this process answered last, at most this many (the one written longest ago forgotten first), in slots of
 * this many bytes of JSON (a session is about 0.5 kB; one that does not fit is simply not remembered).
 */
const KNOWN_MAX = 20_000;
const KNOWN_SLOT_BYTES = 1024;

/** What this process last computed for a session; its `rev` is what Redis holds of it (0: nothing stored yet). */
export type KnownSession = UssdSession;

export class SessionStore {
  /**
   * The last state this process computed for each session it answered: lets the next screen be written in one
   * round trip (commitIfUnchanged) when nobody else moved the session meanwhile. Redis stays the truth.
   */
  private readonly knownSessions = new RememberedSessions(KNOWN_MAX, KNOWN_SLOT_BYTES);

  constructor(
    private readonly store: KeyValueStore,
    private readonly keyPrefix: string,
    private readonly ttlSeconds: number,
    private readonly resumeSeconds = 120,
    private readonly fast?: { turns?: UssdTurns; limit: RequestLimit },
  ) {}

  /**
   * A request's start. With Redis: ONE script ticks the phone's limit and reads the session (or, on a session's
   * first screen, the resume point and the cached profile). Without: the limiter, then the reads, one by one.
   */
  async begin(msisdn: string, sessionId: string): Promise<Turn> {
    const limit = this.fast?.limit;
    if (this.fast?.turns && limit) {
      const read = await this.fast.turns.begin(
        { limit: `${limit.keyPrefix}:${msisdn}`, session: this.key(msisdn, sessionId), resume: this.resumeKey(msisdn), profile: this.profileKey(msisdn) },
        { points: limit.points, windowMs: 60_000 },
      );
      if (!read.allowed) return { allowed: false };
      return { allowed: true, session: parse(read.session), resume: parse(read.resume), profile: parse(read.profile) };
    }
    if (limit && !(await limit.limiter.consume(msisdn)).allowed) return { allowed: false };
    const session = await this.get(msisdn, sessionId);
    return { allowed: true, session, resume: session ? null : await this.getResume(msisdn), profile: null };
  }

  /**
   * A request's end: the session saved, the resume point recorded (a snapshot), cleared (null) or kept
   * (undefined), and the profile cached if this request read it from the database. One script with Redis.
   */
  async commit(msisdn: string, sessionId: string, session: UssdSession, resume: Snapshot | null | undefined, profile?: CachedProfile): Promise<void> {
    if (this.fast?.turns) {
      const json = JSON.stringify(session);
      await this.fast.turns.commit({
        session: { key: this.key(msisdn, sessionId), value: json, ttlMs: this.ttlSeconds * 1000 },
        resume: { key: this.resumeKey(msisdn), value: resume === undefined || resume === null ? resume : JSON.stringify(resume), ttlMs: this.resumeSeconds * 1000 },
        ...(profile ? { profile: { key: this.profileKey(msisdn), value: JSON.stringify(profile), ttlMs: PROFILE_CACHE_MS } } : {}),
      });
      this.remember(msisdn, sessionId, session, json);
      return;
    }
    await this.save(msisdn, sessionId, session);
    if (resume === null) await this.clearResume(msisdn);
    else if (resume !== undefined) await this.saveResume(msisdn, resume);
  }

  /** What this process last computed for the session, if it answered its last screen (Redis only). */
  known(msisdn: string, sessionId: string): KnownSession | undefined {
    const json = this.knownSessions.get(this.key(msisdn, sessionId), Date.now());
    return json === undefined ? undefined : (JSON.parse(json) as UssdSession);
  }

  /**
   * Remembers the state just computed. Its `rev` must be what Redis holds of it: the rev just written, or 0 for a
   * main menu that wrote nothing. `json`: the session as just written, when it was.
   */
  remember(msisdn: string, sessionId: string, session: UssdSession, json = JSON.stringify(session)): void {
    if (!this.fast?.turns) return;
    const key = this.key(msisdn, sessionId);
    if (session.lastReply.end) this.knownSessions.delete(key);
    else this.knownSessions.set(key, json, Date.now() + this.ttlSeconds * 1000);
  }

  /**
   * One round trip: ticks the phone's limit and writes `next` (and the resume point) only if Redis still holds the
   * session at `storedRev` (0: holds none). 'saved', or else what `begin` would have returned (the limit already
   * ticked).
   */
  async commitIfUnchanged(msisdn: string, sessionId: string, storedRev: number, next: UssdSession, resume: Snapshot | null | undefined): Promise<'saved' | Turn> {
    const limit = this.fast!.limit;
    const json = JSON.stringify(next);
    const out = await this.fast!.turns!.advance(
      { limit: `${limit.keyPrefix}:${msisdn}`, session: this.key(msisdn, sessionId), resume: this.resumeKey(msisdn), profile: this.profileKey(msisdn) },
      { points: limit.points, windowMs: 60_000 },
      storedRev === 0 ? '' : `{"rev":${storedRev},`,
      {
        session: { key: this.key(msisdn, sessionId), value: json, ttlMs: this.ttlSeconds * 1000 },
        resume: { key: this.resumeKey(msisdn), value: resume === undefined || resume === null ? resume : JSON.stringify(resume), ttlMs: this.resumeSeconds * 1000 },
      },
    );
    if (out === 'saved') {
      this.remember(msisdn, sessionId, next, json);
      return 'saved';
    }
    this.knownSessions.delete(this.key(msisdn, sessionId));
    if (!out.allowed) return { allowed: false };
    return { allowed: true, session: parse(out.session), resume: parse(out.resume), profile: parse(out.profile) };
  }

  /**
   * The cached profile is stale (a PIN or language changed): sessions read the database, and for the next minute
   * nothing caches it again, so that a first screen that read the database just before the change (another
   * session of the same phone) cannot put the old profile back for a day.
   */
  async forgetProfile(msisdn: string): Promise<void> {
    if (this.fast?.turns) await this.fast.turns.forget(this.profileKey(msisdn), PROFILE_FORGET_MARKER_MS);
  }

  /**
   * A session is the phone's and the session id's together: Africa's Talking's ids are unique per
   * session, but nothing stops another phone from sending the same id, and it must never read or
   * rewrite the first phone's session.
   */
  async get(msisdn: string, sessionId: string): Promise<UssdSession | null> {
    const raw = await this.store.get(this.key(msisdn, sessionId));
    return raw ? (JSON.parse(raw) as UssdSession) : null;
  }

  async save(msisdn: string, sessionId: string, session: UssdSession): Promise<void> {
    await this.store.set(this.key(msisdn, sessionId), JSON.stringify(session), this.ttlSeconds * 1000);
  }

  /** Where this phone's last session dropped, if it did so within the resume window. */
  async getResume(msisdn: string): Promise<Snapshot | null> {
    const raw = await this.store.get(this.resumeKey(msisdn));
    return raw ? (JSON.parse(raw) as Snapshot) : null;
  }

  async saveResume(msisdn: string, snapshot: Snapshot): Promise<void> {
    await this.store.set(this.resumeKey(msisdn), JSON.stringify(snapshot), this.resumeSeconds * 1000);
  }

  async clearResume(msisdn: string): Promise<void> {
    await this.store.delete(this.resumeKey(msisdn));
  }

  private key(msisdn: string, sessionId: string) {
    return sessionKey(this.keyPrefix, msisdn, sessionId);
  }

  private resumeKey(msisdn: string) {
    return `${this.keyPrefix}:ussd:resume:${msisdn}`;
  }

  private profileKey(msisdn: string) {
    return `${this.keyPrefix}:ussd:profile:${msisdn}`;
  }
}

function parse<T>(raw: string | null): T | null {
  return raw ? (JSON.parse(raw) as T) : null;
}

/** A new `rev`: 1 to 2^48, unique among the writes of one session for all practical purposes. */
export function newRev(): number {
  return randomInt(1, 2 ** 48);
}

/** Where a phone's USSD session is kept (tests read it to check what is, and is not, stored). */
export function sessionKey(keyPrefix: string, msisdn: string, sessionId: string): string {
  return `${keyPrefix}:ussd:session:${msisdn}:${sessionId}`;
}

/** What makes a USSD session's order (and its SMS) unique: the phone and the session id together. */
export function ussdSourceKey(msisdn: string, sessionId: string): string {
  return `ussd:${msisdn}:${sessionId}`;
}
