/**
 * A database error that says the CONNECTION went away (terminated backend, reset socket, server shutting down),
 * not that a statement was refused. The pool can hand out such a dead connection once more before it notices,
 * so a caller whose work is idempotent may try once again on a fresh one.
 */
export function isConnectionLost(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | null;
  if (!e) return false;
  if (e.code && ['57P01', '57P02', '57P03', '08000', '08003', '08006', 'ECONNRESET', 'EPIPE', 'ECONNREFUSED'].includes(e.code)) return true;
  return /Connection terminated|connection (is )?closed|Client has encountered a connection error/i.test(e.message ?? '');
}
