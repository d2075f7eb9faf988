import { execFileSync } from 'node:child_process';
import path from 'node:path';

/**
 * Node 20's V8 gives every object made by optimized code from a spread followed by a property the source lacks
 * (`{ ...ctx, t }`) a hidden class of its own, and such objects survive young-generation GCs: the menu made several per
 * screen, and that was most of what grew the web process's heap under USSD load (src/lib/merged.ts). Here the built
 * menu walks main menu -> buy -> amount -> quote -> confirm until V8 has optimized it, then the objects of further
 * walks (what each screen renders from, the states, their data, the resume points) must share one hidden class per
 * kind. With the spreads back, each walk's objects get new ones. npm test builds dist/ first.
 */
test('after V8 optimizes the menu, every walk\'s objects keep the same hidden classes', () => {
  const root = path.resolve(__dirname, '../..');
  const script = `
    const { startMenu, step, resume, snapshotOf } = require('./dist/src/ussd/machine');
    const { screens: real } = require('./dist/src/ussd/screens');
    let views = [];
    const screens = Object.fromEntries(Object.entries(real).map(([id, s]) => [id, { ...s, render: (v, d, room) => { views.push(v); return s.render(v, d, room); } }]));
    const profile = { language: 'en', offerLanguage: false, hasPin: false, lockedUntil: null };
    const quote = { buyCentsPerGram: 850000, sellCentsPerGram: 800000, asOf: '2026-12-05T00:00:00.000Z' };
    const walk = () => {
      views = [];
      const ctx = { now: Date.now(), msisdn: '254712345678', buyLimits: { minKes: 10, maxKes: 70000 }, sellLimits: { minKes: 10, maxKes: 70000 }, sellEnabled: true, quoteTtlMs: 60000, paybill: null };
      const home = startMenu(screens, ctx, profile);
      const amount = step(screens, home.state, '1', ctx);
      let confirm = step(screens, amount.state, '500', ctx);
      const loading = confirm.state;
      while (confirm.effect) confirm = resume(screens, confirm.state, { type: 'loadQuote', quote }, ctx);
      if (!/Confirm/.test(confirm.reply.text)) throw new Error('the walk did not reach the confirm screen: ' + confirm.reply.text);
      return { views, states: [home.state, amount.state, loading, confirm.state], data: [amount.state.data, loading.data, confirm.state.data], snapshot: snapshotOf(screens, confirm.state, confirm.reply) };
    };
    for (let i = 0; i < 60000; i++) walk();
    const first = walk();
    const differ = [];
    for (let i = 0; i < 50; i++) {
      const w = walk();
      for (const kind of ['views', 'states', 'data']) w[kind].forEach((o, j) => { if (!%HaveSameMap(o, first[kind][j])) differ.push(kind + '[' + j + ']'); });
      if (!%HaveSameMap(w.snapshot, first.snapshot)) differ.push('snapshot');
    }
    console.log(JSON.stringify([...new Set(differ)]));
  `;
  const out = execFileSync(process.execPath, ['--allow-natives-syntax', '-e', script], { cwd: root, encoding: 'utf8' });
  expect(JSON.parse(out)).toEqual([]);
});
