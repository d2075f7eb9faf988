import { darajaPassword, darajaTimestamp } from '../../src/vendors/daraja-time';

describe('Daraja timestamp and password', () => {
  test('the timestamp is East Africa Time, UTC+3, across a day boundary', () => {
    expect(darajaTimestamp(new Date('2026-11-26T22:30:05Z'))).toBe('20261127013005');
    expect(darajaTimestamp(new Date('2026-01-01T00:00:00Z'))).toBe('20260101030000');
  });

  test('the password is base64(shortcode + passkey + timestamp)', () => {
    expect(darajaPassword('174379', 'pk', '20261127013005')).toBe(Buffer.from('174379pk20261127013005').toString('base64'));
  });
});
