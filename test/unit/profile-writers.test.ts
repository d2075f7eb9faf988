import fs from 'node:fs';
import path from 'node:path';

/**
 * The USSD menu caches what it shows of a customer (language, PIN set, PIN lock) for a day and drops that copy
 * after every USSD effect that can change it (src/ussd/session-store.ts, PROFILE_CACHE_MS). That is only right
 * while those effects are the only code that writes the columns. A new writer (an operator unlocking a wallet, an
 * API changing the language) must drop the cached profile too; this test names the writers so that it is noticed.
 */
const SRC = path.join(__dirname, '..', '..', 'src');
const PROFILE_COLUMNS = /\b(pin_hash|pin_failed_attempts|pin_locked_until|language_chosen_at)\b|update\(\{\s*language\b/;
const WALLET_PIN_WRITERS = /\b(verifyWalletPin|confirmNewPin)\b/;

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const files = sources(SRC).map((p) => ({ file: path.relative(SRC, p), text: fs.readFileSync(p, 'utf8') }));

test('only the wallet PIN rules, the USSD effects and the customer read touch the cached profile columns', () => {
  expect(files.filter((f) => PROFILE_COLUMNS.test(f.text)).map((f) => f.file).sort()).toEqual(['orders/customers.ts', 'ussd/perform-effect.ts', 'wallet/wallet-pin.ts']);
});

test('the PIN checks and PIN saves are performed only by the USSD effects, which drop the cached profile', () => {
  expect(files.filter((f) => f.file !== 'wallet/wallet-pin.ts' && WALLET_PIN_WRITERS.test(f.text)).map((f) => f.file)).toEqual(['ussd/perform-effect.ts']);
  const handler = files.find((f) => f.file === 'ussd/handle-ussd.ts')!.text;
  expect(handler).toMatch(/PIN_EFFECTS: ReadonlySet<string> = new Set\(\['verifyPin', 'placeSellOrder', 'stagePin', 'savePin'\]\)/);
  expect(handler).toMatch(/PROFILE_EFFECTS: ReadonlySet<string> = new Set\(\[\.\.\.PIN_EFFECTS, 'setLanguage'\]\)/);
});
