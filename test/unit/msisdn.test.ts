import { maskMsisdn, toE164, toMpesaMsisdn, type Msisdn } from '../../src/lib/msisdn';

describe('phone numbers', () => {
  test.each([
    ['+254712345678', '254712345678'],
    ['254712345678', '254712345678'],
    ['0712345678', '254712345678'],
    ['+254110123456', '254110123456'],
    ['+254708374149', '254708374149'],
  ])('%s is the M-Pesa number %s', (raw, msisdn) => expect(toMpesaMsisdn(raw)).toBe(msisdn));

  test.each(['', 'abc', '+255712345678', '+254202345678', '+25471234567', '+2547123456789', '+1 415 555 0100'])(
    '%p cannot be an M-Pesa number',
    (raw) => expect(toMpesaMsisdn(raw)).toBeNull(),
  );

  test('masking keeps only the first 4 and last 2 digits', () => {
    expect(maskMsisdn('254712345649')).toBe('2547******49');
    expect(maskMsisdn('+254712345649')).toBe('2547******49');
    expect(maskMsisdn('12')).toBe('***');
  });

  test('E.164 for Africa\'s Talking', () => expect(toE164('254712345678' as Msisdn)).toBe('+254712345678'));
});

test('a remembered answer is the same as a fresh parse, refusals included', () => {
  for (let i = 0; i < 2; i++) {
    expect(toMpesaMsisdn('+254712345678')).toBe('254712345678');
    expect(toMpesaMsisdn('+254201234567')).toBeNull();
    expect(toMpesaMsisdn('not a phone')).toBeNull();
  }
});
