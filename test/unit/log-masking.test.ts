import { createLogger } from '../../src/lib/logger';
import { maskPhoneNumbersIn } from '../../src/lib/msisdn';

function capture() {
  const lines: string[] = [];
  return { lines, log: createLogger('info', { write: (line: string) => void lines.push(line) }) };
}

describe('log masking', () => {
  test('when free text holds phone numbers in any usual form, then each is masked and other numbers are left alone', () => {
    expect(maskPhoneNumbersIn('to 254712345649, +254112345649 and 0712345649; order 1234567890123; ws_CO_254712345649999')).toBe(
      'to 2547******49, 2541******49 and 0712****49; order 1234567890123; ws_CO_254712345649999',
    );
  });

  test('when a message, a field, a nested field, a numeric PhoneNumber or an error carries a phone number, then the log line holds only the masked form', () => {
    const { lines, log } = capture();
    log.error(
      { err: new Error('insert into "orders" values (\'254712345649\') - duplicate key'), detail: { who: '+254712345649', items: [{ Value: 254712345649 }] } },
      'failed for 254712345649',
    );
    const line = lines.join('');
    expect(line).not.toMatch(/712345649/);
    expect(line).toContain('2547******49');
    expect(JSON.parse(line).msg).toBe('failed for 2547******49');
  });

  test('when secrets are logged by name, then they are redacted', () => {
    const { lines, log } = capture();
    log.info({ Password: 'pw-1', password: 'pw-2', passkey: 'pk-3', token: 'tok-4', access_token: 'tok-5', headers: { authorization: 'Bearer tok-6' }, SecurityCredential: 'sc-7', text: '1*500*1234', pin: '1234' }, 'x');
    for (const secret of ['pw-1', 'pw-2', 'pk-3', 'tok-4', 'tok-5', 'tok-6', 'sc-7', '1*500*1234', '"1234"']) expect(lines.join('')).not.toContain(secret);
  });
});
