let counter = 0;

/**
 * A fresh Safaricom number per call (+2547200xxxxx): one open buy per phone is a database rule, so a
 * test that places several orders at once needs as many phones. Unique within a test file, which is
 * all that matters: every file has its own database.
 */
export function nextPhone(): string {
  counter += 1;
  return `+2547200${String(counter).padStart(5, '0')}`;
}

/** The same number as Daraja and our database write it (no plus). */
export const msisdnOf = (phone: string) => phone.replace(/^\+/, '');
