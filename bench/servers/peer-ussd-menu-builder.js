'use strict';
/**
 * The peer: the same three screens (main menu -> amount -> confirm) written with ussd-menu-builder, the npm USSD
 * menu library in common use, with its sessions in Redis through the library's custom session config
 * (start/get/set/end, promise style, ioredis). What the service's own screens do that matters for cost is
 * mirrored: form parsing, amount validation, integer grams, the quote kept in the session.
 *
 * A UssdMenu keeps the request it is running in fields of the instance (args, val, onResult), so one shared
 * instance mixes up concurrent requests; a menu is therefore built per request, which is cheap (a few objects).
 */
const express = require('express');
const { Redis } = require('ioredis');
const UssdMenu = require('ussd-menu-builder');

const PREFIX = process.env.PEER_PREFIX || 'bench:peer';
const TTL_SECONDS = 300;
const MIN_KES = 10;
const MAX_KES = 150000;
const PRICE_CENTS_PER_GRAM = 850000;
const redis = new Redis(process.env.REDIS_URL || 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
const key = (sessionId) => `${PREFIX}:${sessionId}`;
const kes = (n) => n.toLocaleString('en-KE');

const sessionConfig = {
  // Called by menu.run() before any state: (re)arm the session's expiry.
  start: (sessionId) => redis.pexpire(key(sessionId), TTL_SECONDS * 1000),
  end: (sessionId) => redis.del(key(sessionId)),
  set: (sessionId, k, value) => redis.multi().hset(key(sessionId), k, JSON.stringify(value)).pexpire(key(sessionId), TTL_SECONDS * 1000).exec(),
  get: async (sessionId, k) => {
    const raw = await redis.hget(key(sessionId), k);
    return raw === null ? undefined : JSON.parse(raw);
  },
};

function buildMenu() {
  const menu = new UssdMenu();
  menu.sessionConfig(sessionConfig);
  menu.startState({
    run: () => menu.con('Gold Savings\n1 Buy gold'),
    next: { 1: 'buy.amount' },
  });
  menu.state('buy.amount', {
    run: () => menu.con(`Enter amount in KES to buy gold\n(min ${kes(MIN_KES)}, max ${kes(MAX_KES)})\n0 Back`),
    next: { '*^\\d{1,9}$': 'buy.confirm' },
  });
  menu.state('buy.confirm', {
    run: async () => {
      const amountKes = Number(menu.val);
      if (amountKes < MIN_KES || amountKes > MAX_KES) return menu.con(`Amount must be between KES ${kes(MIN_KES)} and ${kes(MAX_KES)}.`);
      const gramsUg = Math.floor((amountKes * 100 * 1_000_000) / PRICE_CENTS_PER_GRAM);
      await menu.session.set('quote', { amountKes, gramsUg, priceCentsPerGram: PRICE_CENTS_PER_GRAM });
      menu.con(`Buy ${(gramsUg / 1e6).toFixed(4)} g of gold for KES ${kes(amountKes)}\nPrice KES ${kes(PRICE_CENTS_PER_GRAM / 100)}/g\n1 Confirm\n2 Cancel`);
    },
    next: { 1: 'buy.submit', 2: 'buy.cancel' },
  });
  menu.state('buy.submit', { run: () => menu.end('Request received. You will get an M-Pesa prompt.') });
  menu.state('buy.cancel', { run: () => menu.end('Purchase cancelled. Nothing was charged.') });
  return menu;
}

const app = express();
app.disable('x-powered-by');
app.get('/ready', (_req, res) => res.send('ok'));
app.post('/ussd', express.urlencoded({ extended: false, limit: '8kb' }), (req, res) => {
  const menu = buildMenu();
  menu.on('error', () => {
    if (!res.headersSent) res.type('text/plain').send('END Sorry, the service is busy.');
  });
  const { sessionId, serviceCode, phoneNumber, text = '' } = req.body ?? {};
  menu.run({ sessionId, serviceCode, phoneNumber, text }, (reply) => {
    if (!res.headersSent) res.type('text/plain').send(reply);
  });
});
app.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => {
  redis.disconnect();
  process.exit(0);
});
