import { en } from '../../src/i18n/en';
import { formatReply, startMenu, step, type MenuContext, type MenuState } from '../../src/ussd/machine';
import { screens } from '../../src/ussd/screens';

const ctx: MenuContext = { t: en, buyLimits: { minKes: 10, maxKes: 150_000 }, priceCentsPerGram: 850_000 };

function walk(inputs: string[]) {
  let result = startMenu(screens, ctx);
  const replies = [formatReply(result.reply)];
  for (const input of inputs) {
    result = step(screens, result.state, input, ctx);
    replies.push(formatReply(result.reply));
  }
  return { result, replies };
}

describe('USSD menu machine', () => {
  test.each<[string[], RegExp, string]>([
    [[], /^CON Gold Savings\n1 Buy gold$/, 'home'],
    [['1'], /^CON Enter amount in KES/, 'buy.amount'],
    [['1', '500'], /^CON Buy 0\.0588 g of gold for KES 500/, 'buy.confirm'],
    [['7'], /^CON Invalid choice\.\nGold Savings/, 'home'],
    [['1', 'abc'], /^CON Enter whole shillings only/, 'buy.amount'],
    [['1', '-5'], /^CON Enter whole shillings only/, 'buy.amount'],
    [['1', '10.5'], /^CON Enter whole shillings only/, 'buy.amount'],
    [['1', '1e5'], /^CON Enter whole shillings only/, 'buy.amount'],
    [['1', '9'], /^CON Minimum is KES 10\./, 'buy.amount'],
    [['1', '150001'], /^CON Maximum is KES 150,000\./, 'buy.amount'],
    [['1', '500', '3'], /^CON Invalid choice\.\nBuy 0\.0588 g/, 'buy.confirm'],
    [['1', '0'], /^CON Gold Savings/, 'home'],
    [['1', '500', '0'], /^CON Enter amount in KES/, 'buy.amount'],
    [['1', '500', '00'], /^CON Gold Savings/, 'home'],
  ])('inputs %j -> %s', (inputs, reply, screen) => {
    const { result, replies } = walk(inputs);
    expect(replies[replies.length - 1]).toMatch(reply);
    expect(result.state.screen).toBe(screen);
    expect(result.effect).toBeUndefined();
  });

  test('confirming ends the session with exactly one order effect carrying the quoted price', () => {
    const { result, replies } = walk(['1', '500', '1']);
    expect(replies[3]).toMatch(/^END Request received/);
    expect(result.effect).toEqual({ type: 'placeBuyOrder', amountKes: 500, priceCentsPerGram: 850_000, gramsUg: 58_823 });
  });

  test('cancelling ends the session with no effect', () => {
    const { result, replies } = walk(['1', '500', '2']);
    expect(replies[3]).toMatch(/^END Purchase cancelled/);
    expect(result.effect).toBeUndefined();
  });

  test('every screen, including each re-prompt and the largest amounts, fits 160 characters of GSM-7', () => {
    const gsm7 = /^[A-Za-z0-9 \n@£$¥èéùìòÇØøÅå_^{}\\[~\]|€ÆæßÉ!"#¤%&'()*+,\-./:;<=>?¡ÄÖÑÜ§¿äöñüà]*$/;
    const paths = [[], ['1'], ['7'], ['1', 'abc'], ['1', '9'], ['1', '150001'], ['1', '150000'], ['1', '150000', '9'], ['1', '150000', '1'], ['1', '10', '2']];
    for (const inputs of paths) {
      for (const reply of walk(inputs).replies) {
        expect(reply.length).toBeLessThanOrEqual(160);
        expect(reply).toMatch(gsm7);
      }
    }
  });

  test('the machine is pure: the same state and input give the same result', () => {
    const state: MenuState = { screen: 'buy.amount', history: ['home'], data: {} };
    expect(step(screens, state, '500', ctx)).toEqual(step(screens, state, '500', ctx));
    expect(state).toEqual({ screen: 'buy.amount', history: ['home'], data: {} });
  });
});
