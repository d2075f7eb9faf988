import { randomBytes, timingSafeEqual } from 'node:crypto';
import axios from 'axios';
import express, { Router, type Request, type Response } from 'express';
import type { Logger } from '../lib/logger';
import { maskMsisdn, toMpesaMsisdn } from '../lib/msisdn';

/**
 * An in-memory Africa's Talking SMS API for local runs and the phone simulator: the same request
 * (form fields, apiKey header) and the same answers (201, per-recipient codes, plain-text 401) as the
 * real host, plus an inbox per phone and delivery reports. Only Kenyan mobile numbers are deliverable.
 */
export interface AtEmulatorOptions {
  username: string;
  apiKey: string;
  /** Where delivery reports are POSTed (form-encoded), as set in AT's dashboard. None: no reports. */
  deliveryReportUrl?: string;
  deliveryDelayMs?: number;
  log: Logger;
}

export interface InboxMessage {
  id: string;
  to: string;
  from: string;
  message: string;
  receivedAt: string;
}

export interface AtEmulator {
  router: Router;
  /** Stops pending delivery reports. */
  close(): void;
  /** Messages received by a phone (any of +2547…, 2547…, 07…), oldest first. */
  inbox(phone: string): InboxMessage[];
}

interface Recipient {
  statusCode: number;
  number: string;
  status: string;
  cost: string;
  messageId: string;
}

// AT's default sender when the account has no sender id of its own.
const DEFAULT_SENDER = 'AFRICASTKNG';
const SAFARICOM_NETWORK_CODE = '63902';
const MAX_INBOX_PER_PHONE = 200;
// KES 0.8000 a segment, in ten-thousandths of a shilling: money stays integer.
const SEGMENT_COST_TEN_THOUSANDTHS = 8000;

export function createAtEmulator(opts: AtEmulatorOptions): AtEmulator {
  const log = opts.log.child({ component: 'at-emulator' });
  const deliveryDelayMs = opts.deliveryDelayMs ?? 500;
  const inboxes = new Map<string, InboxMessage[]>();
  const timers = new Set<NodeJS.Timeout>();
  const inFlight = new AbortController();
  let closed = false;

  function deliver(msisdn: string, message: InboxMessage) {
    const inbox = inboxes.get(msisdn) ?? [];
    inbox.push(message);
    if (inbox.length > MAX_INBOX_PER_PHONE) inbox.splice(0, inbox.length - MAX_INBOX_PER_PHONE);
    inboxes.set(msisdn, inbox);
  }

  function scheduleDeliveryReport(url: string, messageId: string, number: string) {
    if (closed) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      const form = new URLSearchParams({
        id: messageId,
        status: 'Success',
        phoneNumber: number,
        networkCode: SAFARICOM_NETWORK_CODE,
        failureReason: '',
        retryCount: '0',
      });
      axios
        .post(url, form, { timeout: 5000, signal: inFlight.signal })
        .then((res) => log.debug({ messageId, httpStatus: res.status }, 'delivery report posted'))
        .catch((err: Error) => {
          if (!closed) log.warn({ messageId, err: err.message }, 'delivery report failed');
        });
    }, deliveryDelayMs);
    timers.add(timer);
  }

  const router = Router();

  router.post('/version1/messaging', express.urlencoded({ extended: false, limit: '64kb' }), (req: Request, res: Response) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const username = typeof body.username === 'string' ? body.username : '';
    if (username !== opts.username || !sameSecret(req.get('apikey'), opts.apiKey)) {
      log.warn({ usernameMatches: username === opts.username }, 'rejected credentials');
      res.status(401).type('text/plain').send('The supplied authentication is invalid');
      return;
    }
    const requested = typeof body.to === 'string' ? body.to.split(',').map((n) => n.trim()).filter((n) => n !== '') : [];
    const message = typeof body.message === 'string' ? body.message : '';
    for (const [field, missing] of [['to', requested.length === 0], ['message', message === '']] as const) {
      if (missing) {
        res.status(400).type('text/plain').send(`Request is missing required form field '${field}'`);
        return;
      }
    }
    const from = typeof body.from === 'string' && body.from !== '' ? body.from : DEFAULT_SENDER;

    const { segments } = smsSegments(message);
    const costEach = segments * SEGMENT_COST_TEN_THOUSANDTHS;
    const recipients: Recipient[] = [];
    let total = 0;
    for (const raw of requested) {
      // The API wants E.164; a local or bare number is a caller's bug worth surfacing.
      const msisdn = raw.startsWith('+') ? toMpesaMsisdn(raw) : null;
      if (!msisdn) {
        recipients.push({ statusCode: 403, number: raw, status: 'InvalidPhoneNumber', cost: '0', messageId: 'None' });
        continue;
      }
      const messageId = `ATXid_${randomBytes(16).toString('hex')}`;
      const number = `+${msisdn}`;
      deliver(msisdn, { id: messageId, to: number, from, message, receivedAt: new Date().toISOString() });
      total += costEach;
      recipients.push({ statusCode: 101, number, status: 'Success', cost: `KES ${formatTenThousandths(costEach)}`, messageId });
      log.info({ to: maskMsisdn(msisdn), messageId, segments }, 'sms accepted');
      if (opts.deliveryReportUrl) scheduleDeliveryReport(opts.deliveryReportUrl, messageId, number);
    }
    const sent = recipients.filter((r) => r.statusCode === 101).length;
    const totalCost = total === 0 ? '0' : `KES ${formatTenThousandths(total)}`;
    res.status(201).json({
      SMSMessageData: { Message: `Sent to ${sent}/${requested.length} Total Cost: ${totalCost}`, Recipients: recipients },
    });
  });

  router.get('/inbox/:phone', (req: Request, res: Response) => {
    const msisdn = toMpesaMsisdn(String(req.params.phone ?? ''));
    if (!msisdn) {
      res.status(400).json({ error: 'invalid_phone' });
      return;
    }
    res.json({ messages: inboxes.get(msisdn) ?? [] });
  });

  return {
    router,
    close() {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      inFlight.abort();
    },
    inbox(phone) {
      const msisdn = toMpesaMsisdn(phone);
      return msisdn ? [...(inboxes.get(msisdn) ?? [])] : [];
    },
  };
}

function sameSecret(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

const GSM7_BASIC = new Set(
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà",
);
// Reached through an escape: two septets each.
const GSM7_EXTENSION = new Set('\f^{}\\[~]|€');

/**
 * How many SMS segments a message needs: 160 GSM-7 septets alone or 153 when concatenated; with any
 * character outside GSM-7 the whole message goes UCS-2, 70 code units alone or 67 concatenated.
 * An escape pair or a surrogate pair is never split across two segments.
 */
export function smsSegments(message: string): { encoding: 'gsm7' | 'ucs2'; segments: number } {
  const chars = [...message];
  const gsm = chars.every((c) => GSM7_BASIC.has(c) || GSM7_EXTENSION.has(c));
  const widths = chars.map((c) => (gsm ? (GSM7_EXTENSION.has(c) ? 2 : 1) : c.length));
  const [single, part] = gsm ? [160, 153] : [70, 67];
  const total = widths.reduce((sum, w) => sum + w, 0);
  if (total <= single) return { encoding: gsm ? 'gsm7' : 'ucs2', segments: 1 };
  let segments = 1;
  let used = 0;
  for (const w of widths) {
    if (used + w > part) {
      segments += 1;
      used = 0;
    }
    used += w;
  }
  return { encoding: gsm ? 'gsm7' : 'ucs2', segments };
}

/** 8000 -> "0.8000", 24000 -> "2.4000". */
function formatTenThousandths(value: number): string {
  return `${Math.floor(value / 10000)}.${String(value % 10000).padStart(4, '0')}`;
}
