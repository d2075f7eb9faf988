import type { Knex } from 'knex';
import type { Db } from '../db/knex';
import { catalogFor, type Catalog } from '../i18n';
import type { Outbox } from '../infra/outbox';
import { eatDayMonth } from '../lib/eat-time';
import { formatGrams, formatKes } from '../lib/units';
import { queueSms } from '../notifications/queue-sms';
import { walletBalance } from './balance';

export interface StatementRow {
  /** ISO 8601: when the movement was settled. */
  at: string;
  kind: 'buy' | 'sell';
  gramsUg: number;
  /** The order's KES amount; null for a movement that is not an order. */
  kesCents: number | null;
}

/** Two concatenated GSM-7 segments (153 characters each). */
export const STATEMENT_SMS_LIMIT = 306;

/**
 * The customer's last settled movements, newest first: posted ledger transfers into their account
 * (buys) and out of it (sells), with the KES amount of the order they belong to. Each side reads its
 * own (account, created_at) index, so the cost does not grow with the customer's history.
 */
export async function recentMovements(db: Db | Knex.Transaction, customerId: number, limit: number): Promise<StatementRow[]> {
  const account = await db('accounts').where({ customer_id: customerId }).first('id');
  if (!account) return [];
  const { rows } = await db.raw(
    `SELECT m.created_at, m.amount, m.kind, o.amount_cents
       FROM ((SELECT id, created_at, amount, reference, 'buy' AS kind FROM transfers
               WHERE credit_account_id = ? AND status = 'posted' ORDER BY created_at DESC, id DESC LIMIT ?)
             UNION ALL
             (SELECT id, created_at, amount, reference, 'sell' AS kind FROM transfers
               WHERE debit_account_id = ? AND status = 'posted' ORDER BY created_at DESC, id DESC LIMIT ?)) m
       LEFT JOIN orders o ON o.reference = m.reference
      ORDER BY m.created_at DESC, m.id DESC
      LIMIT ?`,
    [account.id, limit, account.id, limit, limit],
  );
  return rows.map((r: { created_at: Date; amount: string | number; kind: 'buy' | 'sell'; amount_cents: string | number | null }) => ({
    at: new Date(r.created_at).toISOString(),
    kind: r.kind,
    gramsUg: Number(r.amount),
    kesCents: r.amount_cents === null ? null : Number(r.amount_cents),
  }));
}

/**
 * The statement SMS within two segments: the title, the newest rows, the balance. At everyday amounts
 * all 10 rows and the balance fit; with very large ones the balance gives way first, then the oldest rows.
 */
export function statementSmsBody(t: Catalog, rows: StatementRow[], balanceUg: number): string {
  const balance = t.sms.statementBalance(formatGrams(balanceUg));
  if (rows.length === 0) return [t.sms.statementTitle, t.sms.statementEmpty, balance].join('\n');
  const lines = rows.map((r) => t.sms.statementRow(eatDayMonth(r.at), r.kind, formatGrams(r.gramsUg), r.kesCents === null ? '-' : formatKes(r.kesCents)));
  for (let n = lines.length; n > 1; n--) {
    for (const withBalance of [true, false]) {
      const body = [t.sms.statementTitle, ...lines.slice(0, n), ...(withBalance ? [balance] : [])].join('\n');
      if (body.length <= STATEMENT_SMS_LIMIT) return body;
    }
  }
  return [t.sms.statementTitle, lines[0]!].join('\n');
}

/** Queues the last 10 movements by SMS in the customer's language; once per `dedupeKey` (one per USSD session). */
export async function sendStatementSms(deps: { db: Db; outbox: Outbox }, customerId: number, dedupeKey: string): Promise<void> {
  await deps.outbox.transaction(async (trx) => {
    const customer = await trx('customers').where({ id: customerId }).first('msisdn', 'language');
    const rows = await recentMovements(trx, customerId, 10);
    const balance = await walletBalance(trx, customerId);
    return queueSms(trx, deps.outbox, {
      customerId,
      msisdn: customer.msisdn,
      body: statementSmsBody(catalogFor(customer.language), rows, balance.postedUg),
      purpose: 'statement',
      dedupeKey,
    });
  });
}
