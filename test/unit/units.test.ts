import { centsForMicrograms, formatGrams, formatKes, microgramsForCents, microgramsForPayout, parseGramsToMicrograms, parseKesToCents } from '../../src/lib/units';

describe('units', () => {
  test.each([
    ['8500', 850000],
    ['8500.5', 850050],
    ['8500.50', 850050],
    ['0.01', 1],
  ])('parseKesToCents(%s) = %d', (text, cents) => expect(parseKesToCents(text)).toBe(cents));

  test.each(['', 'abc', '-5', '1e5', '10.555', '1,000', '0x10', ' .5'])('parseKesToCents rejects %p', (text) => {
    expect(parseKesToCents(text)).toBeNull();
  });

  test('grams parse to micrograms without floating point', () => {
    expect(parseGramsToMicrograms('2.5')).toBe(2_500_000);
    expect(parseGramsToMicrograms('0.000001')).toBe(1);
    expect(parseGramsToMicrograms('1000')).toBe(1_000_000_000);
    expect(parseGramsToMicrograms('0.0000001')).toBeNull();
  });

  test('a buyer gets gold rounded down: the house never gives a fraction it was not paid for', () => {
    // 500 KES at 8,500 KES/g = 58823.529... ug
    expect(microgramsForCents(50_000, 850_000)).toBe(58_823);
    // exact division stays exact
    expect(microgramsForCents(850_000, 850_000)).toBe(1_000_000);
    // largest buy at a low price stays exact in integers
    expect(microgramsForCents(25_000_000, 1)).toBe(25_000_000_000_000);
    expect(() => microgramsForCents(10.5, 850_000)).toThrow(RangeError);
    expect(() => microgramsForCents(100, 0)).toThrow(RangeError);
  });

  test('grams show 4 decimals, truncated', () => {
    expect(formatGrams(58_823)).toBe('0.0588');
    expect(formatGrams(1_176_470)).toBe('1.1764');
    expect(formatGrams(0)).toBe('0.0000');
    expect(formatGrams(12_000_099)).toBe('12.0000');
    expect(formatGrams(-58_823)).toBe('-0.0588');
  });

  test('KES show thousands separators and cents only when present', () => {
    expect(formatKes(850_000)).toBe('8,500');
    expect(formatKes(850_050)).toBe('8,500.50');
    expect(formatKes(15_000_000)).toBe('150,000');
    expect(formatKes(5)).toBe('0.05');
  });

  test('a seller gives up gold rounded up; gold is valued rounded down', () => {
    // KES 500 at 8,000/g = 62500 ug exactly; KES 500 at 8,500/g = 58823.53 -> 58824 ug
    expect(microgramsForPayout(50_000, 800_000)).toBe(62_500);
    expect(microgramsForPayout(50_000, 850_000)).toBe(58_824);
    expect(centsForMicrograms(58_824, 850_000)).toBe(50_000);
    expect(centsForMicrograms(58_823, 850_000)).toBe(49_999);
    expect(centsForMicrograms(1_000_000, 850_000)).toBe(850_000);
  });
});
