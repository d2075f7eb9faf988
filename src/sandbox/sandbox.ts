import path from 'node:path';
import { Router } from 'express';
import type { RunConfig } from '../config';
import { createAtEmulator } from '../emulators/at-emulator';
import { createDarajaEmulator, EMULATOR_B2C_TEST_NUMBERS, EMULATOR_TEST_NUMBERS, HUMAN_PROMPT_BEHAVIOUR } from '../emulators/daraja-emulator';
import type { Logger } from '../lib/logger';
import type { InitiatorKeys } from './initiator-keys';
import { projectRoot } from '../lib/project-root';

// The emulator's sentence begins with "any other number:"; the lists below already say that.
const HUMAN_PROMPT = HUMAN_PROMPT_BEHAVIOUR.replace(/^any other number:\s*/i, '');

export interface Sandbox {
  /** Mounted only in emulator mode: /emulators/daraja, /emulators/at, /simulator. */
  router: Router;
  banner(port: number): string;
  close(): void;
}

/** The offline world the service talks to when MPESA_ENVIRONMENT=emulator: Safaricom, Africa's Talking, a phone. */
export function createSandbox(config: RunConfig, port: number, log: Logger, initiatorKeys: InitiatorKeys | null = null): Sandbox {
  const self = `http://127.0.0.1:${port}`;
  // Africa's Talking's callbacks live under the secret path here too (runService has filled it in).
  const atSecret = config.at.callbackSecret ?? '';
  const ussdPath = `/ussd/${atSecret}`;
  const daraja = createDarajaEmulator({
    consumerKey: config.mpesa.consumerKey,
    consumerSecret: config.mpesa.consumerSecret,
    shortcode: config.mpesa.shortcode,
    passkey: config.mpesa.passkey,
    // B2C as strict as M-Pesa: the shortcode, the initiator and its encrypted password must all match.
    ...(config.b2c && initiatorKeys
      ? {
          b2cShortcode: config.b2c.shortcode,
          initiatorName: config.b2c.initiatorName,
          initiatorPassword: config.b2c.initiatorPassword,
          initiatorPrivateKeyPem: initiatorKeys.privateKeyPem,
        }
      : {}),
    // Pay by Paybill: the service's C2B URLs, registered from the start.
    ...(config.c2b ? { c2bRegistration: { shortcode: config.c2b.shortcode, validationUrl: config.c2b.validationUrl, confirmationUrl: config.c2b.confirmationUrl } } : {}),
    log,
  });
  const at = config.at.emulator
    ? createAtEmulator({ username: config.at.username, apiKey: config.at.apiKey, deliveryReportUrl: `${self}/sms/delivery-reports/${atSecret}`, log })
    : null;

  const router = Router();
  router.use('/emulators/daraja', daraja.router);
  if (at) router.use('/emulators/at', at.router);
  const page = path.join(projectRoot(), 'simulator', 'index.html');
  router.get('/simulator', (_req, res) => res.sendFile(page));
  router.get('/simulator/config', (_req, res) =>
    res.json({ serviceCode: config.ussd.serviceCode, ussdPath, paybill: config.c2b?.shortcode ?? null, testNumbers: [...EMULATOR_TEST_NUMBERS, { msisdn: 'any other', behaviour: HUMAN_PROMPT }] }),
  );

  return {
    router,
    banner: (p) =>
      [
        '',
        'Gold wallet sandbox is ready (M-Pesa and Africa\'s Talking are emulated; nothing leaves this machine).',
        `  Phone simulator:  http://localhost:${p}/simulator     (terminal: npm run phone -- 254712345678 --url http://127.0.0.1:${p})`,
        `  USSD code:        ${config.ussd.serviceCode}`,
        `  USSD callback:    POST http://localhost:${p}${ussdPath}`,
        `  SMS:              ${at ? 'Africa\'s Talking emulator, inbox per phone in the simulator' : 'real Africa\'s Talking (' + config.at.username + ')'}`,
        '  Test phone numbers:',
        ...EMULATOR_TEST_NUMBERS.map((n) => `    ${n.msisdn}  ${n.behaviour}`),
        `    any other     ${HUMAN_PROMPT}`,
        ...(config.c2b ? [`  Pay by Paybill:   business no. ${config.c2b.shortcode}, account = the saver's phone number (simulator: Pay by M-Pesa menu)`] : []),
        ...(config.b2c ? ['  Selling (B2C payout) by receiving number:', ...EMULATOR_B2C_TEST_NUMBERS.map((n) => `    ${n.msisdn}  ${n.behaviour}`)] : []),
        '',
      ].join('\n'),
    close() {
      daraja.close();
      at?.close();
    },
  };
}
