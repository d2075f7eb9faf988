import { catalogFor, LANGUAGES } from '../../src/i18n';
import { en } from '../../src/i18n/en';
import { sw } from '../../src/i18n/sw';
import { STATEMENT_SMS_LIMIT, statementSmsBody, type StatementRow } from '../../src/wallet/statement';

const GSM7 = /^[A-Za-z0-9 \n@£$¥èéùìòÇØøÅå_^{}\\[~\]|€ÆæßÉ!"#¤%&'()*+,\-./:;<=>?¡ÄÖÑÜ§¿äöñüà]*$/;

/** The longest value each SMS placeholder takes in practice. */
const LONGEST: Record<string, string> = {
  receipt: 'NLJ7RT61SVXX',
  grams: '9999.9999',
  balance: '9999.9999',
  kes: '250,000',
  price: '99,999.99',
  attempts: '3',
  until: '23:59',
};

function everySms(language: 'en' | 'sw'): Array<[string, string]> {
  const t = catalogFor(language);
  const reasons = [...Object.values(t.sms.reasons), ...Object.values(t.sms.sellReasons)];
  const longestReason = reasons.reduce((a, b) => (b.length > a.length ? b : a));
  const args = new Proxy({}, { get: (_target, key: string) => (key === 'reason' ? longestReason : LONGEST[key] ?? 'X'.repeat(10)) });
  const out: Array<[string, string]> = [];
  for (const [key, value] of Object.entries(t.sms)) {
    if (typeof value === 'function' && !['statementRow', 'statementBalance'].includes(key)) out.push([key, (value as (p: unknown) => string)(args)]);
  }
  return out;
}

describe('message catalogs', () => {
  test('Swahili has every text English has, of the same kind', () => {
    const shape = (o: object): unknown => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'object' ? shape(v) : typeof v]));
    expect(shape(sw)).toEqual(shape(en));
  });

  test.each(LANGUAGES.map((l) => [l] as const))('every %s SMS fits one 160-character GSM-7 segment at its longest', (language) => {
    for (const [key, body] of everySms(language)) {
      expect({ key, body, fits: body.length <= 160 && GSM7.test(body) }).toEqual({ key, body, fits: true });
    }
  });

  test.each(LANGUAGES.map((l) => [l] as const))('every %s USSD text is plain GSM-7', (language) => {
    const texts = Object.values(catalogFor(language).ussd).flatMap((v) => (typeof v === 'string' ? [v] : []));
    for (const text of texts) expect(text).toMatch(GSM7);
  });
});

describe('the statement SMS', () => {
  const row = (i: number, gramsUg: number, kesCents: number): StatementRow => ({ at: `2026-11-${10 + i}T10:00:00Z`, kind: i % 2 ? 'buy' : 'sell', gramsUg, kesCents });

  test.each(LANGUAGES.map((l) => [l] as const))('in %s, ten everyday movements fit two segments, all ten shown, with the balance', (language) => {
    const t = catalogFor(language);
    const rows = Array.from({ length: 10 }, (_, i) => row(i, 1_176_470, 1_000_000)); // KES 10,000 = 1.1764 g at 8,500/g
    const body = statementSmsBody(t, rows, 123_456_789);
    expect(body.length).toBeLessThanOrEqual(STATEMENT_SMS_LIMIT);
    expect(body).toMatch(GSM7);
    expect(body.split('\n')).toHaveLength(12);
    expect(body.split('\n')[11]).toBe(t.sms.statementBalance('123.4567'));
    expect(body.split('\n')[1]).toBe(t.sms.statementRow('10/11', 'sell', '1.1764', '10,000'));
  });

  test.each(LANGUAGES.map((l) => [l] as const))('in %s, ten of the largest single orders (KES 150,000) still fit at least nine rows', (language) => {
    const rows = Array.from({ length: 10 }, (_, i) => ({ ...row(i, 17_647_058, 15_000_000), kind: 'buy' as const }));
    const body = statementSmsBody(catalogFor(language), rows, 123_456_789);
    expect(body.length).toBeLessThanOrEqual(STATEMENT_SMS_LIMIT);
    expect(body.split('\n').length).toBeGreaterThanOrEqual(10);
  });

  test.each(LANGUAGES.map((l) => [l] as const))('in %s, absurdly large movements still fit: the oldest rows give way', (language) => {
    const rows = Array.from({ length: 10 }, (_, i) => row(i, 9_999_999_999, 99_999_999_999));
    const body = statementSmsBody(catalogFor(language), rows, 9_999_999_999);
    expect(body.length).toBeLessThanOrEqual(STATEMENT_SMS_LIMIT);
    expect(body.split('\n').length).toBeGreaterThanOrEqual(5);
    expect(body.split('\n')[1]).toContain('10/11');
  });

  test('with no movements it says so', () => {
    expect(statementSmsBody(en, [], 0)).toBe(`${en.sms.statementTitle}\n${en.sms.statementEmpty}\n${en.sms.statementBalance('0.0000')}`);
  });
});
