import type { Db } from '../db/knex';
import { toMpesaMsisdn } from '../lib/msisdn';
import { scrubUssdInput } from './scrub-input';
import type { SessionStore } from './session-store';

export interface UssdEvent {
  sessionId: string;
  status: string;
  serviceCode?: string | undefined;
  networkCode?: string | undefined;
  phoneNumber?: string | undefined;
  input?: string | undefined;
  durationInMillis?: number | undefined;
  cost?: string | undefined;
  errorMessage?: string | undefined;
  hopsCount?: number | undefined;
  date?: string | undefined;
}

/**
 * Records Africa's Talking's end-of-session notification, once per session and phone (a repeat changes nothing).
 * `input` repeats every input of the session, PINs included: it is scrubbed with the positions the
 * session noted, before it is stored. The raw notification itself is never kept.
 */
export async function recordUssdEvent(deps: { db: Db; sessions: SessionStore }, e: UssdEvent): Promise<'recorded' | 'duplicate'> {
  const msisdn = e.phoneNumber ? toMpesaMsisdn(e.phoneNumber) : null;
  // Without the phone the session cannot be found: the input is then scrubbed of every 4-digit entry.
  const session = msisdn ? await deps.sessions.get(msisdn, e.sessionId) : null;
  const inserted = await deps.db('ussd_events')
    .insert({
      session_id: e.sessionId,
      msisdn,
      service_code: e.serviceCode ?? null,
      network_code: e.networkCode ?? null,
      status: e.status,
      input: e.input === undefined ? null : scrubUssdInput(e.input, session),
      duration_ms: e.durationInMillis ?? null,
      cost: e.cost ?? null,
      error_message: e.errorMessage ? e.errorMessage.slice(0, 500) : null,
      hops_count: e.hopsCount ?? null,
      reported_date: e.date ?? null,
    })
    .onConflict(['session_id', 'msisdn'])
    .ignore()
    .returning('id');
  return inserted.length > 0 ? 'recorded' : 'duplicate';
}
