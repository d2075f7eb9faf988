/** What replaces a PIN in anything that records USSD text. */
export const SCRUBBED = 'xxxx';

/**
 * Africa's Talking repeats every input of a session in `text` (and in the end-of-session `input`),
 * PINs included. Whatever records it goes through here first: the positions the session noted as
 * typed on a PIN screen are masked. When the session is unknown, or the text does not line up with
 * it, every 4-digit entry is masked instead (a PIN is always 4 digits; an amount of 4 digits is a
 * harmless loss).
 */
export function scrubUssdInput(input: string, session: { secretInputs: number[]; consumed: number } | null): string {
  if (input === '') return '';
  const parts = input.split('*');
  if (session && parts.length === session.consumed) return parts.map((p, i) => (session.secretInputs.includes(i) ? SCRUBBED : p)).join('*');
  return parts.map((p) => (/^\d{4}$/.test(p.trim()) ? SCRUBBED : p)).join('*');
}
