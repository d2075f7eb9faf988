import fc from 'fast-check';
import { maskMsisdn, parseWithLibrary, toE164, toMpesaMsisdn, type Msisdn } from '../../src/lib/msisdn';

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

describe('the usual forms are answered without the library, exactly as the library answers them', () => {
  // Random national numbers in each usual form, then every 4-digit start of one: a range that a libphonenumber-js
  // upgrade adds, drops or splits fails here.
  test('every national prefix in +254, 254 and 0 forms', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 999 }), fc.integer({ min: 0, max: 999_999 }), fc.constantFrom('+254', '254', '0'), (prefix, rest, form) => {
        const raw = `${form}${String(prefix).padStart(3, '0')}${String(rest).padStart(6, '0')}`;
        expect(toMpesaMsisdn(raw)).toBe(parseWithLibrary(raw));
      }),
      { numRuns: 10_000 },
    );
    // Every 4-digit start, no randomness: a range split at the 4th digit fails every run.
    for (let prefix = 0; prefix < 10_000; prefix++) {
      for (const form of ['+254', '254', '0']) {
        const raw = `${form}${String(prefix).padStart(4, '0')}${String(prefix * 97).padStart(5, '0').slice(-5)}`;
        expect(toMpesaMsisdn(raw)).toBe(parseWithLibrary(raw));
      }
    }
  });

  test('anything else a caller may send', () => {
    const digitsAndSigns = fc.string({ unit: fc.constantFrom('0', '1', '2', '4', '5', '7', '9', '+', ' ', '-', '(', ')'), maxLength: 16 });
    fc.assert(fc.property(digitsAndSigns, (raw) => expect(toMpesaMsisdn(raw)).toBe(parseWithLibrary(raw))), { numRuns: 5_000 });
    for (const raw of ['+254 712 345 678', '(0712) 345678', ' 0712345678', '+2540712345678', '2547123456789', '+254-110-123456']) {
      expect(toMpesaMsisdn(raw)).toBe(parseWithLibrary(raw));
    }
  });
});
