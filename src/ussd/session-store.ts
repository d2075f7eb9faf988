import type { KeyValueStore } from '../infra/kv-store';
import type { MenuState, Reply } from './machine';

/** A USSD session between requests. Holds no PIN and no raw `text`: only where the user is. */
export interface UssdSession {
  customerId: number;
  msisdn: string;
  language: string;
  state: MenuState;
  /** How many `*`-separated inputs of `text` have been applied; a repeat of the same request is answered from lastReply. */
  consumed: number;
  lastReply: Reply;
}

export class SessionStore {
  constructor(
    private readonly store: KeyValueStore,
    private readonly keyPrefix: string,
    private readonly ttlSeconds: number,
  ) {}

  async get(sessionId: string): Promise<UssdSession | null> {
    const raw = await this.store.get(this.key(sessionId));
    return raw ? (JSON.parse(raw) as UssdSession) : null;
  }

  async save(sessionId: string, session: UssdSession): Promise<void> {
    await this.store.set(this.key(sessionId), JSON.stringify(session), this.ttlSeconds * 1000);
  }

  private key(sessionId: string) {
    return `${this.keyPrefix}:ussd:session:${sessionId}`;
  }
}
