import type { Db } from '../db/knex';
import type { Logger } from '../lib/logger';
import { formatKes } from '../lib/units';
import { logOpsAlerts, raiseOpsAlert } from '../notifications/ops-alerts';
import type { PriceJump } from './price-quote';
import type { AcceptPaused, HttpPriceFeed } from './price-source';

/** The feed jumped and trading is paused: one `price_jump` alert per pause, however many polls it lasts. */
export async function raisePriceJumpAlert(deps: { db: Db; log: Logger }, jump: PriceJump): Promise<void> {
  const alert = await deps.db.transaction((trx) =>
    raiseOpsAlert(trx, {
      kind: 'price_jump',
      severity: 'error',
      orderId: null,
      message: `Gold price feed moved more than ${jump.maxMovePercent}% (buy ${formatKes(jump.last.buyCentsPerGram)} -> ${formatKes(jump.quote.buyCentsPerGram)} KES/g): trading is paused until the feed comes back or an operator accepts the new price`,
      details: { last: jump.last, quote: jump.quote, maxMovePercent: jump.maxMovePercent },
      dedupeKey: `price-jump-${jump.since}`,
    }),
  );
  logOpsAlerts(deps.log, [alert]);
}

/**
 * An operator accepts the paused quote: it becomes the price dealt at, and the open `price_jump`
 * alerts are closed with who accepted it and why. `seen`: the paused prices the operator looked at.
 */
export async function acceptPausedPrice(
  deps: { db: Db; prices: HttpPriceFeed },
  by: { operator: string; note: string; seen?: { buyCentsPerGram: number; sellCentsPerGram: number } },
): Promise<AcceptPaused> {
  const answer = await deps.prices.acceptPaused(by.seen);
  if (!answer.ok) return answer;
  await deps.db('ops_alerts')
    .where({ kind: 'price_jump' })
    .whereNull('resolved_at')
    .update({ resolved_at: deps.db.fn.now(), resolution: `price accepted by ${by.operator}: ${by.note}` });
  return answer;
}

/** The feed came back within the band by itself and trading resumed: the pause's alerts are answered. */
export async function closeResumedPriceJumps(db: Db): Promise<void> {
  await db('ops_alerts').where({ kind: 'price_jump' }).whereNull('resolved_at').update({ resolved_at: db.fn.now(), resolution: 'the feed came back within the band: trading resumed' });
}
