import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import type { RunConfig } from '../../config';
import type { Db } from '../../db/knex';
import type { Outbox } from '../../infra/outbox';
import type { Trx } from '../../ledger/ledger';
import type { Logger } from '../../lib/logger';
import type { DarajaClient } from '../../vendors/daraja-client';
import { type OrderStatus } from '../../orders/order-states';

/** What the sell use cases need (Services has all of it). */
export interface PayoutDeps {
  db: Db;
  outbox: Outbox;
  daraja: DarajaClient;
  log: Logger;
  config: Pick<RunConfig, 'payouts'>;
}

export type PayoutStatus = 'created' | 'requested' | 'accepted' | 'paid' | 'failed' | 'review';

export interface Payout {
  id: string;
  order_id: string;
  msisdn: string;
  amount_kes: number;
  status: PayoutStatus;
  attempts: number;
  maybe_sent: boolean;
  conversation_id: string | null;
  transaction_id: string | null;
  status_checks: number;
  /** Set just before a B2C request leaves, cleared with its answer: still set = an attempt whose answer nobody heard. */
  in_flight_at: Date | null;
  /** Transaction Status checks the reconciliation sweep made (src/payments/reconcile-payouts.ts). */
  sweep_checks: number;
}

/**
 * The payout id, sent as OriginatorConversationID: 'GP' + 16 unambiguous letters and digits (80 bits),
 * 18 characters, well inside what Daraja and the Transaction Status parameters carry.
 */
export function newPayoutId(): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
  let id = 'GP';
  for (const b of randomBytes(16)) id += alphabet[b % alphabet.length];
  return id;
}

export async function loadPayout(db: Trx, id: string): Promise<Payout | undefined> {
  return db('payouts').where({ id }).first();
}

/**
 * Schedules Transaction Status check number n+1 (`payout-status-<id>-<n>`). The counter makes the
 * checks one chain: a check that finds a newer one scheduled stands down, so however many timeouts
 * arrive, one check runs at a time. The job is relayed after commit (outbox.transaction), or by the sweep.
 */
export async function scheduleStatusCheck(trx: Knex.Transaction, outbox: Outbox, payoutId: string, delayMs: number): Promise<number> {
  const [row] = await trx('payouts')
    .where({ id: payoutId })
    .increment('status_checks', 1)
    .update({ updated_at: trx.fn.now() })
    .returning('status_checks');
  const check = row.status_checks as number;
  return outbox.write(trx, 'payout-status', `payout-status-${payoutId}-${check}`, { payoutId, check }, { delayMs });
}

/** Raw Daraja callbacks (B2C result, queue timeout, status result) are all kept, duplicates included. */
export async function recordPayoutCallback(
  trx: Knex.Transaction,
  kind: 'b2c_result' | 'b2c_timeout' | 'b2c_status',
  originatorConversationId: string | null,
  outcome: string,
  payload: unknown,
): Promise<void> {
  await trx('mpesa_callbacks').insert({ kind, originator_conversation_id: originatorConversationId, outcome, payload: JSON.stringify(payload) });
}
