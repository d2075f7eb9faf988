/**
 * What Postgres cannot store in text or jsonb although JSON can carry it: NUL, and half of a UTF-16 surrogate pair
 * (half an emoji; as raw bytes either is invalid UTF-8 and arrives as U+FFFD, but JSON can escape it: `\u0000`,
 * `\ud83d`). One home for the rule: callbacks refuse such a body (callback-guard.ts), Paybill confirmations, whose
 * money has already moved, keep it with U+FFFD in place (record-c2b-confirmation.ts).
 */
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const UNSTORABLE_ALL = new RegExp(UNSTORABLE.source, 'g');

/** Whether a parsed JSON value holds such text anywhere, in a key or a string (however deep: no recursion). */
export function holdsUnstorableText(value: unknown): boolean {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') {
      if (UNSTORABLE.test(v)) return true;
    } else if (Array.isArray(v)) {
      stack.push(...v);
    } else if (v !== null && typeof v === 'object') {
      for (const [k, inner] of Object.entries(v)) {
        if (UNSTORABLE.test(k)) return true;
        stack.push(inner);
      }
    }
  }
  return false;
}

/** The value as Postgres can store it: each NUL and each half of a surrogate pair becomes U+FFFD. */
export function storable(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(UNSTORABLE_ALL, '\ufffd');
  if (Array.isArray(value)) return value.map(storable);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [storable(k) as string, storable(v)]));
  return value;
}
