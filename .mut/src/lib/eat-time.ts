/**
 * Dates as savers read them: East Africa Time (UTC+3, no daylight saving), short enough for a
 * 160-character screen. Pure arithmetic, so it does not depend on the server's time zone.
 */
const EAT_OFFSET_MS = 3 * 60 * 60 * 1000;

const two = (n: number) => String(n).padStart(2, '0');
const eat = (at: Date | number | string) => new Date(new Date(at).getTime() + EAT_OFFSET_MS);

/** 26/11 */
export function eatDayMonth(at: Date | number | string): string {
  const d = eat(at);
  return `${two(d.getUTCDate())}/${two(d.getUTCMonth() + 1)}`;
}

/** 14:05 */
export function eatTime(at: Date | number | string): string {
  const d = eat(at);
  return `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}`;
}

/** 26/11 14:05 */
export function eatDateTime(at: Date | number | string): string {
  return `${eatDayMonth(at)} ${eatTime(at)}`;
}
