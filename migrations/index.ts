import type { Knex } from 'knex';
import * as ledger from './20261126_001_ledger';
import * as orders from './20261126_002_orders';
import * as kvStore from './20261126_003_kv_store';
import * as smsDelivery from './20261126_004_sms_delivery';
import * as payouts from './20261126_005_payouts';
import * as wallet from './20261126_006_wallet';
import * as reconciliation from './20261126_007_reconciliation';
import * as security from './20261126_008_security';
import * as ops from './20261126_009_ops';
import * as finalStatuses from './20261204_010_final_statuses';
import * as payoutInFlight from './20261204_013_payout_in_flight';
import * as sessionPerPhone from './20261204_014_session_per_phone';
import * as c2bPayments from './20261204_016_c2b_payments';
import * as ledgerBatches from './20261205_017_ledger_batches';
import * as placeBuy from './20261205_018_place_buy';
import * as functionPlans from './20261205_019_function_plans';
import * as openBuyIndex from './20261205_020_open_buy_index';
import * as dailyLimitRule from './20261205_021_daily_limit_rule';
import * as dropCustomerOrdersIndex from './20261205_022_drop_customer_orders_index';
import * as genericFunctionPlans from './20261205_023_generic_function_plans';

/**
 * Migrations listed in code rather than discovered on disk, so the same list runs from TypeScript
 * (tests, knex CLI via knexfile.ts) and from the compiled build (npm start). Append, never reorder.
 */
const migrations: Record<string, Knex.Migration> = {
  '20261126_001_ledger': ledger,
  '20261126_002_orders': orders,
  '20261126_003_kv_store': kvStore,
  '20261126_004_sms_delivery': smsDelivery,
  '20261126_005_payouts': payouts,
  '20261126_006_wallet': wallet,
  '20261126_007_reconciliation': reconciliation,
  '20261126_008_security': security,
  '20261126_009_ops': ops,
  '20261204_010_final_statuses': finalStatuses,
  '20261204_014_session_per_phone': sessionPerPhone,
  '20261204_016_c2b_payments': c2bPayments,
  // 013 after 016: appended when it was written (the list is append-only).
  '20261204_013_payout_in_flight': payoutInFlight,
  '20261205_017_ledger_batches': ledgerBatches,
  '20261205_018_place_buy': placeBuy,
  '20261205_019_function_plans': functionPlans,
  '20261205_020_open_buy_index': openBuyIndex,
  '20261205_021_daily_limit_rule': dailyLimitRule,
  '20261205_022_drop_customer_orders_index': dropCustomerOrdersIndex,
  '20261205_023_generic_function_plans': genericFunctionPlans,
};

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(migrations),
  getMigrationName: (name) => name,
  getMigration: async (name) => migrations[name]!,
};
