import { catalogFor, LANGUAGES } from '../../src/i18n';

const GSM7 = /^[A-Za-z0-9 \n@£$¥èéùìòÇØøÅå_^{}\\[~\]|€ÆæßÉ!"#¤%&'()*+,\-./:;<=>?¡ÄÖÑÜ§¿äöñüà]*$/;

describe.each(LANGUAGES)('the END screens of the abuse limits, in %s', (language) => {
  const t = catalogFor(language).ussd;
  test.each([
    ['too many USSD requests', t.tooManyRequests],
    ['a payment already waiting', t.paymentPending],
    ['too many payment requests (longest wait)', t.tooManyPayments('60')],
    ['an unreadable request', t.invalidRequest],
  ])('%s fits one USSD screen in plain GSM-7', (_what, text) => {
    expect(`END ${text}`.length).toBeLessThanOrEqual(160);
    expect(text).toMatch(GSM7);
    expect(text.length).toBeGreaterThan(20);
  });
});
