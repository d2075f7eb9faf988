'use strict';
/**
 * The vendors, on 127.0.0.1, inside the bench process: the project's Daraja emulator (src/emulators/daraja-emulator.ts,
 * built) mounted at the root of an express app of the bench's own, with a recorder in front of STK Push that
 * notes when each push arrived (by AccountReference = the order reference); and an Africa's Talking SMS endpoint
 * that accepts everything. Pushes open "human" prompts in the emulator, which stay open (no callback) until the
 * stand-in is closed.
 */
const http = require('node:http');
const express = require('express');
const { dist } = require('./env');
const { DARAJA_CREDENTIALS, freePort } = require('./processes');

async function startVendorStandIn() {
  const { createDarajaEmulator } = dist('src/emulators/daraja-emulator');
  const { createLogger } = dist('src/lib/logger');
  const emulator = createDarajaEmulator({
    ...DARAJA_CREDENTIALS,
    log: createLogger('silent'),
    promptTimeoutMs: 60 * 60 * 1000, // nobody answers during the bench; close() clears the prompts
    callbackDelayMs: 60 * 60 * 1000,
  });
  const arrivals = new Map(); // AccountReference -> performance.now() when the push arrived
  const refused = [];
  let smsCount = 0;
  const app = express();
  app.disable('x-powered-by');
  app.post('/mpesa/stkpush/v1/processrequest', (req, res, next) => {
    const at = performance.now();
    res.on('finish', () => {
      const ref = req.body?.AccountReference;
      if (res.statusCode === 200 && typeof ref === 'string') arrivals.set(ref, at);
      else if (refused.length < 1000) refused.push(`${res.statusCode} ${ref ?? '?'}`);
    });
    next();
  });
  app.post('/at/version1/messaging', express.urlencoded({ extended: false }), (req, res) => {
    smsCount++;
    res.status(201).json({ SMSMessageData: { Message: 'Sent to 1/1', Recipients: [{ statusCode: 101, number: req.body.to, status: 'Success', cost: 'KES 0.8000', messageId: `ATXid_bench_${smsCount}` }] } });
  });
  app.use(emulator.router);
  const port = await freePort();
  const server = http.createServer(app);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    url: `http://127.0.0.1:${port}`,
    darajaUrl: `http://127.0.0.1:${port}`,
    atUrl: `http://127.0.0.1:${port}/at`,
    arrivals,
    refused,
    smsCount: () => smsCount,
    async close() {
      emulator.close();
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

module.exports = { startVendorStandIn };
