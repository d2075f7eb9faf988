import * as readline from 'node:readline';
import { USAGE, dialCodeOf, parseArgs } from './phone-args';

/**
 * npm run phone -- <2547XXXXXXXX> [--url http://127.0.0.1:$PORT] [--secret <AT_CALLBACK_SECRET>]: a feature
 * phone in the terminal against a running service with its emulators. It dials the USSD code as Africa's
 * Talking would (POST /ussd/<secret>), answers the M-Pesa prompt the Daraja emulator opens, and prints SMS
 * as they land in the AT emulator. The secret comes from --secret, else AT_CALLBACK_SECRET, else the
 * sandbox's /simulator/config (which names the USSD path of the sandbox it is served by).
 */

const NETWORK_CODE = '63902';

const PROMPT_POLL_MS = 1000;

const INBOX_POLL_MS = 1500;

const REQUEST_TIMEOUT_MS = 15_000;

interface Prompt {
  id: string;
  amount: string;
  shortcode: string;
  account: string;
}

interface Sms {
  id: string;
  from: string;
  message: string;
  receivedAt: string;
}

/** Accepts the prompt list as an array or under `prompts`, with camelCase or Daraja-cased fields. */
function openPromptFrom(data: unknown): Prompt | null {
  const d = data as { prompts?: unknown; prompt?: unknown } | unknown[] | null;
  const list: unknown[] = Array.isArray(d) ? d : Array.isArray(d?.prompts) ? d.prompts : d?.prompt ? [d.prompt] : [];
  for (const item of list) {
    const p = item as Record<string, unknown>;
    if (!p || (p.status !== undefined && p.status !== 'open')) continue;
    const id = String(p.id ?? p.checkoutRequestId ?? p.CheckoutRequestID ?? '');
    if (!id) continue;
    return {
      id,
      amount: String(p.amount ?? p.Amount ?? '?'),
      shortcode: String(p.businessShortCode ?? p.BusinessShortCode ?? p.partyB ?? p.PartyB ?? ''),
      account: String(p.accountReference ?? p.AccountReference ?? ''),
    };
  }
  return null;
}

async function request(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
}

function main() {
  const args = parseArgs(process.argv.slice(2), process.env);
  if (typeof args === 'string') {
    if (args) console.error(args);
    console.error(USAGE);
    process.exit(args ? 2 : 0);
  }
  const { phone, url } = args;
  let ussdPath: string | null = args.secret ? `/ussd/${args.secret}` : null;

  let serviceCode: string | null = null;
  let session: { id: string; code: string; inputs: string[] } | null = null;
  let busy = false;
  let prompt: Prompt | null = null;
  let promptBusy = false;
  // A poll answered after our PIN/cancel may still list the prompt as open: ignore it.
  let promptEpoch = 0;
  let seenSms: Set<string> | null = null;
  let stopped = false;
  const timers = new Set<NodeJS.Timeout>();

  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdout.isTTY });

  function refreshPrompt() {
    if (prompt) rl.setPrompt('M-Pesa PIN (c cancel)> ');
    else if (session) rl.setPrompt('reply> ');
    else rl.setPrompt(`[Enter] or ${serviceCode ?? 'the service code'} dials  [q] quit> `);
    if (!stopped) rl.prompt(true);
  }

  /** Prints above the line being typed, then redraws it. */
  function say(text: string) {
    if (stopped) return;
    if (process.stdout.isTTY) {
      readline.clearLine(process.stdout, 0);
      readline.cursorTo(process.stdout, 0);
    }
    process.stdout.write(`${text}\n`);
    refreshPrompt();
  }

  function screen(title: string, text: string) {
    const lines = text.split('\n').map((l) => `| ${l}`);
    say([`+-- ${title} ${'-'.repeat(Math.max(2, 26 - title.length))}`, ...lines, `+${'-'.repeat(30)}`].join('\n'));
  }

  function every(ms: number, fn: () => Promise<void>) {
    const tick = async () => {
      await fn();
      if (stopped) return;
      const t = setTimeout(() => {
        timers.delete(t);
        void tick();
      }, ms);
      timers.add(t);
    };
    void tick();
  }

  async function loadConfig(): Promise<boolean> {
    try {
      const res = await request(`${url}/simulator/config`);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const body = (await res.json()) as { serviceCode?: string; ussdPath?: string; testNumbers?: Array<{ msisdn: string; behaviour?: string }> };
      if (!body.serviceCode) throw new Error('no serviceCode in the answer');
      if (!ussdPath && !body.ussdPath) throw new Error('no ussdPath in the answer (give --secret or AT_CALLBACK_SECRET)');
      serviceCode = body.serviceCode;
      ussdPath ??= body.ussdPath!;
      const tests = (body.testNumbers ?? []).map((t) => `${t.msisdn}${t.behaviour ? ` (${t.behaviour})` : ''}`);
      if (tests.length) say(`test numbers:\n  ${tests.join('\n  ')}`);
      return true;
    } catch (err) {
      say(`cannot load ${url}/simulator/config: ${(err as Error).message}`);
      return false;
    }
  }

  /** One request as Africa's Talking makes it: text is every answer so far joined by '*'. */
  async function exchange() {
    const current = session!;
    busy = true;
    let reply: string | null = null;
    try {
      const res = await request(`${url}${ussdPath}`, {
        method: 'POST',
        body: new URLSearchParams({
          sessionId: current.id,
          serviceCode: current.code,
          phoneNumber: `+${phone}`,
          networkCode: NETWORK_CODE,
          text: current.inputs.join('*'),
        }),
      });
      reply = res.ok ? await res.text() : null;
    } catch {
      reply = null;
    } finally {
      busy = false;
    }
    if (session !== current) return;
    if (reply?.startsWith('CON ')) {
      screen('USSD', reply.slice(4));
    } else if (reply?.startsWith('END ')) {
      session = null;
      screen('USSD (end)', reply.slice(4));
    } else {
      session = null;
      screen('USSD (end)', 'Connection problem or invalid MMI code.');
    }
  }

  async function dial(code: string | null) {
    if (!serviceCode && !(await loadConfig())) return;
    session = { id: `SIM_${Date.now()}_${Math.random().toString(16).slice(2, 10)}`, code: code ?? serviceCode!, inputs: [] };
    say(`dialling ${session.code} as +${phone}…`);
    await exchange();
  }

  async function pollPrompt() {
    if (promptBusy) return;
    const epoch = promptEpoch;
    try {
      const res = await request(`${url}/emulators/daraja/prompts?phone=${phone}`);
      if (!res.ok || epoch !== promptEpoch || promptBusy) return;
      const open = openPromptFrom(await res.json());
      if (open && open.id !== prompt?.id) {
        prompt = open;
        say(`\n*** M-PESA ***\nPay KES ${open.amount} to ${open.shortcode} acc. ${open.account}? Enter M-Pesa PIN`);
      } else if (!open && prompt) {
        prompt = null;
        say('(the M-Pesa prompt closed)');
      }
    } catch {
      // The Daraja emulator may not be mounted, or the service is restarting: keep polling.
    }
  }

  async function answerPrompt(line: string) {
    const current = prompt!;
    const kind = line.toLowerCase() === 'c' ? 'cancel' : 'pin';
    promptBusy = true;
    try {
      const res = await request(`${url}/emulators/daraja/prompts/${encodeURIComponent(current.id)}/${kind}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: kind === 'pin' ? JSON.stringify({ pin: line }) : '{}',
      });
      const data = (await res.json().catch(() => null)) as { result?: string; receipt?: string } | null;
      prompt = null;
      if (!res.ok) say(`M-Pesa: request failed (HTTP ${res.status})`);
      else if (kind === 'cancel' || data?.result === 'cancelled') say('M-Pesa: request cancelled');
      else if (data?.result === 'paid') say(`M-Pesa: paid KES ${current.amount}${data.receipt ? `, receipt ${data.receipt}` : ''}`);
      else if (data?.result === 'wrong_pin') say('M-Pesa: wrong PIN');
      else say(`M-Pesa: ${data?.result ?? 'unexpected answer'}`);
    } catch (err) {
      prompt = null;
      say(`M-Pesa: ${(err as Error).message}`);
    } finally {
      promptEpoch += 1;
      promptBusy = false;
    }
  }

  async function pollInbox() {
    try {
      const res = await request(`${url}/emulators/at/inbox/${phone}`);
      if (!res.ok) return;
      const { messages } = (await res.json()) as { messages: Sms[] };
      if (!seenSms) {
        // What the inbox held before we started is old news.
        seenSms = new Set(messages.map((m) => m.id));
        if (messages.length) say(`(${messages.length} earlier SMS in the inbox)`);
        return;
      }
      for (const m of messages) {
        if (seenSms.has(m.id)) continue;
        seenSms.add(m.id);
        const at = new Date(m.receivedAt).toLocaleTimeString();
        say(`\n>>> SMS from ${m.from} at ${at}\n${m.message}\n`);
      }
    } catch {
      // Keep polling.
    }
  }

  function quit() {
    if (stopped) return;
    stopped = true;
    for (const t of timers) clearTimeout(t);
    timers.clear();
    process.stdout.write('\nbye\n');
    rl.close();
    process.exit(0);
  }

  rl.on('line', (raw) => {
    const line = raw.trim();
    if (line.toLowerCase() === 'q') return quit();
    if (prompt && !promptBusy) {
      if (line.toLowerCase() !== 'c' && !/^\d{4}$/.test(line)) return say('the M-Pesa PIN is 4 digits (c cancels)');
      return void answerPrompt(line);
    }
    if (busy) return say('(waiting for the network…)');
    if (!session) {
      const dialled = dialCodeOf(line, serviceCode);
      if (dialled) return void dial(dialled.dial);
      return say(`press Enter (or type ${serviceCode ?? 'the service code'}) to dial, q to quit`);
    }
    if (line.toLowerCase() === 'h') {
      session = null;
      return say('hung up');
    }
    if (line === '') return refreshPrompt();
    session.inputs.push(line);
    void exchange();
  });
  rl.on('SIGINT', quit);
  rl.on('close', quit);

  say(`phone +${phone} on ${url}  (Enter or the code dials, h hangs up, q or Ctrl-C quits)`);
  void loadConfig().then(() => refreshPrompt());
  every(PROMPT_POLL_MS, pollPrompt);
  every(INBOX_POLL_MS, pollInbox);
}

if (require.main === module) main();
