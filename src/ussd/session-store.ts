import type { KeyValueStore } from '../infra/kv-store';
import type { MenuState, Reply, Snapshot } from './machine';

/**
 * A USSD session between requests. Holds no PIN and no raw `text`: only where the user is, and
 * which positions of `text` were PINs (so whatever records `text` can scrub them).
 */
export interface UssdSession {
  customerId: number;
  msisdn: string;
  state: MenuState;
  /** How many `*`-separated inputs of `text` have been applied; a repeat of the same request is answered from lastReply. */
  consumed: number;
  lastReply: Reply;
  /** 0-based positions in `text` typed on a PIN screen. */
  secretInputs: number[];
}

export class SessionStore {
  constructor(
    private readonly store: KeyValueStore,
    private readonly keyPrefix: string,
    private readonly ttlSeconds: number,
    private readonly resumeSeconds = 120,
  ) {}

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
}

/** Where a phone's USSD session is kept (tests read it to check what is, and is not, stored). */
export function sessionKey(keyPrefix: string, msisdn: string, sessionId: string): string {
  return `${keyPrefix}:ussd:session:${msisdn}:${sessionId}`;
}

/** What makes a USSD session's order (and its SMS) unique: the phone and the session id together. */
export function ussdSourceKey(msisdn: string, sessionId: string): string {
  return `ussd:${msisdn}:${sessionId}`;
}
