'use strict';
/**
 * The hardware's limit for a USSD answer: a bare express handler answering a constant CON, with no body parsing,
 * no session and no database. Same express version and process model as the service.
 */
const express = require('express');

const REPLY = 'CON Gold Savings\n1 Buy gold';
const app = express();
app.disable('x-powered-by');
app.get('/ready', (_req, res) => res.send('ok'));
app.post('/ussd', (_req, res) => {
  res.type('text/plain').send(REPLY);
});
app.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
