// Operator console: plain script, no framework, no build step. Everything comes from the ops API with
// the ops token as a bearer header. Every value is put on the page with textContent (via text nodes),
// never as markup: an order note or an alert message must never become HTML.
'use strict';

(() => {
  const TOKEN_KEY = 'goldOps.token'; // sessionStorage: this tab only, gone when it closes
  const OPERATOR_KEY = 'goldOps.operator';
  const $ = (id) => document.getElementById(id);

  /** Resolution actions by order kind: what /ops/orders/:id/resolve takes for each. */
  const ACTIONS = {
    buy: [
      ['credit', 'credit: the saver paid; credit the gold'],
      ['refund_note', 'refund_note: the money was returned outside the system'],
      ['close', 'close: nothing was paid; release the reservation'],
    ],
    sell: [
      ['paid_out', 'paid_out: M-Pesa paid the seller'],
      ['not_paid', 'not_paid: the seller was not paid; return the gold'],
    ],
  };

  class Unauthorized extends Error {}

  // ---- the ops API

  async function api(path, { body, raw = false } = {}) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) throw new Unauthorized();
    const headers = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, {
      method: body === undefined ? 'GET' : 'POST',
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store', // money data: never from, or into, the browser's cache
      credentials: 'omit', // only the bearer token counts, not a Basic login remembered from Bull Board
    });
    if (res.status === 401) throw new Unauthorized();
    if (!res.ok) throw new Error(await describeFailure(res));
    return raw ? res : res.json();
  }

  async function describeFailure(res) {
    const text = await res.text();
    let why = text.slice(0, 300);
    try {
      const j = JSON.parse(text);
      why = [j.error, j.detail, j.status && `order is ${j.status}`, j.kind && `order kind ${j.kind}`, ...(j.issues || [])].filter(Boolean).join('; ');
    } catch { /* not JSON: the text as it came */ }
    return `HTTP ${res.status}: ${why || res.statusText}`;
  }

  // ---- building the page (text only)

  /** An element with text children; props are attributes, `class`, or `on<event>` handlers. */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'class') node.className = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c === null || c === undefined ? '' : String(c)));
    return node;
  }

  function rows(tbody, items, columns, render) {
    tbody.replaceChildren(...(items.length ? items.map(render) : [el('tr', null, el('td', { class: 'empty', colspan: String(columns) }, 'none'))]));
  }

  function pairs(dl, entries) {
    dl.replaceChildren(...entries.flatMap(([k, v]) => [el('dt', null, k), el('dd', null, v)]));
  }

  function showError(id, err) {
    const p = $(id);
    if (!err) return void (p.hidden = true);
    p.textContent = err instanceof Error ? err.message : String(err);
    p.hidden = false;
  }

  const nairobi = new Intl.DateTimeFormat('en-GB', { timeZone: 'Africa/Nairobi', dateStyle: 'medium', timeStyle: 'short' });
  const when = (iso) => (iso ? nairobi.format(new Date(iso)) : '');

  /** Integer cents -> "8,500.00", with string arithmetic only (money is never a float here). */
  function kes(cents) {
    if (cents === null || cents === undefined) return '';
    const s = String(Math.abs(cents)).padStart(3, '0');
    return `${cents < 0 ? '-' : ''}${s.slice(0, -2).replace(/\B(?=(\d{3})+$)/g, ',')}.${s.slice(-2)}`;
  }

  function orderButton(id, label) {
    return el('button', { type: 'button', class: 'small', onclick: () => openOrder(id) }, label);
  }

  // ---- sections

  async function loadPool() {
    const r = await api('/ops/pool');
    pairs($('pool'), [
      ['Available', `${r.pool.available} g`],
      ['Reserved (pending buys)', `${r.pool.pending} g`],
      ['Posted in pool', `${r.pool.posted} g`],
      ['Issued to savers', `${r.issued.posted} g`],
      ['Books', r.books.balanced ? el('span', { class: 'ok' }, 'balanced') : el('span', { class: 'bad' }, `NOT balanced: ${r.books.problems.join('; ')}`)],
    ]);
  }

  async function loadPrices() {
    const r = await api('/ops/prices');
    const quote = (q) => `buy ${kes(q.buyCentsPerGram)} / sell ${kes(q.sellCentsPerGram)} KES/g, as of ${when(q.asOf)}`;
    pairs($('prices'), [
      ['Provider', r.provider],
      ...(r.quote
        ? [['Buy', `KES ${kes(r.quote.buyCentsPerGram)}/g`], ['Sell', `KES ${kes(r.quote.sellCentsPerGram)}/g`], ['As of', when(r.quote.asOf)]]
        : [['Dealing at', el('span', { class: 'bad' }, 'no price: trading stopped (stale or paused)')]]),
      ...(r.accepted ? [['Last accepted', quote(r.accepted)]] : []),
      ...(r.paused ? [['Paused quote', el('span', { class: 'bad' }, `${quote(r.paused.quote)} (paused ${when(r.paused.at)})`)]] : []),
    ]);
    $('accept-price').hidden = !r.paused;
    pausedSeen = r.paused ? { buyCentsPerGram: r.paused.quote.buyCentsPerGram, sellCentsPerGram: r.paused.quote.sellCentsPerGram } : null;
  }

  /** The paused prices on the page: accepting sends them, so a quote a later poll put there is not accepted unseen. */
  let pausedSeen = null;

  async function loadAlerts() {
    const { alerts } = await api('/ops/alerts?open=1');
    $('alerts-count').textContent = String(alerts.length);
    rows($('alerts'), alerts, 6, (a) =>
      el('tr', null,
        el('td', null, when(a.createdAt)),
        el('td', { class: `sev-${a.severity}` }, a.severity),
        el('td', { class: 'status' }, a.kind),
        el('td', null, a.message),
        el('td', null, a.orderId ? orderButton(a.orderId, `${a.orderKind || 'order'} ${a.phone}`) : ''),
        // An alert about an order in review closes with the order's resolution; a price jump with accepting the price.
        el('td', null, a.orderStatus === 'review' || a.kind === 'price_jump' ? '' : el('button', { type: 'button', class: 'small', 'data-alert': String(a.id), onclick: () => closeAlert(a) }, 'Close'))));
  }

  /** An alert settled by hand outside the service: closed for good, with a note and the operator's name. */
  async function closeAlert(a) {
    const note = (window.prompt(`Close alert "${a.kind}" for good. What was done (e.g. refunded on the M-Pesa portal)?`, '') || '').trim();
    if (!note) return;
    const operator = (sessionStorage.getItem(OPERATOR_KEY) || window.prompt('Your name (kept in the audit trail)', '') || '').trim();
    if (!operator) return;
    sessionStorage.setItem(OPERATOR_KEY, operator);
    try {
      await api(`/ops/alerts/${encodeURIComponent(a.id)}/close`, { body: { note, operator } });
      showError('alerts-error', null);
      await loadAlerts();
    } catch (err) {
      if (err instanceof Unauthorized) return signOut('The token was refused. Type it again.');
      showError('alerts-error', err);
    }
  }

  async function loadReview() {
    const { orders } = await api('/ops/orders?status=review&limit=200');
    $('review-count').textContent = String(orders.length);
    rows($('review'), orders, 7, (o) =>
      el('tr', { 'data-order': o.id },
        el('td', null, when(o.createdAt)),
        el('td', null, o.kind),
        el('td', { class: 'num' }, o.amountKes),
        el('td', { class: 'num' }, o.grams),
        el('td', null, o.phone),
        el('td', null, [o.failureCode, o.failureReason].filter(Boolean).join(': ')),
        el('td', null, orderButton(o.id, 'Open / resolve'))));
  }

  async function loadOrders() {
    const status = $('orders-filter').elements.status.value;
    const { orders } = await api(`/ops/orders?limit=100${status ? `&status=${encodeURIComponent(status)}` : ''}`);
    rows($('orders'), orders, 8, (o) =>
      el('tr', null,
        el('td', null, when(o.createdAt)),
        el('td', null, o.kind),
        el('td', { class: 'status' }, o.status),
        el('td', { class: 'num' }, o.amountKes),
        el('td', { class: 'num' }, o.grams),
        el('td', null, o.phone),
        el('td', null, o.receipt),
        el('td', null, orderButton(o.id, 'Open'))));
  }

  // ---- one order: its record, audit trail and the resolve form

  let openOrderId = null;

  async function openOrder(id) {
    openOrderId = id;
    $('detail-card').hidden = false;
    showError('detail-error', null);
    try {
      const r = await api(`/ops/orders/${encodeURIComponent(id)}`);
      renderOrder(r);
    } catch (err) {
      if (err instanceof Unauthorized) return signOut('The token was refused. Type it again.');
      showError('detail-error', err);
    }
    $('detail-card').scrollIntoView({ block: 'nearest' });
  }

  function renderOrder(r) {
    const o = r.order;
    $('detail-title').textContent = `${o.reference} (${o.kind}, ${o.status})`;
    pairs($('detail-order'), [
      ['Order id', o.id],
      ['Status', el('span', { class: 'status' }, o.status)],
      ['Phone', o.phone],
      ['Amount', `KES ${o.amountKes}`],
      ['Gold', `${o.grams} g at KES ${o.priceKesPerGram}/g`],
      ['Why', [o.failureCode, o.failureReason].filter(Boolean).join(': ')],
      ['Reservation', r.reservation === null ? '' : r.reservation],
      ['M-Pesa receipt', r.payment ? r.payment.receipt : ''],
      ['M-Pesa result', r.payment && r.payment.resultCode !== null ? `${r.payment.resultCode} ${r.payment.resultDesc || ''}` : ''],
      ['CheckoutRequestID', r.checkoutRequestId],
      ['Created / updated', `${when(o.createdAt)} / ${when(o.updatedAt)}`],
    ]);
    rows($('detail-resolutions'), r.resolutions, 5, (x) =>
      el('tr', null, el('td', null, when(x.createdAt)), el('td', { class: 'status' }, x.action), el('td', null, x.operator),
        el('td', { class: 'status' }, `${x.fromStatus} → ${x.toStatus}`), el('td', null, x.note)));
    rows($('detail-callbacks'), r.callbacks, 3, (c) =>
      el('tr', null, el('td', null, when(c.receivedAt)), el('td', null, c.outcome), el('td', null, c.resultCode)));

    const actions = o.status === 'review' ? ACTIONS[o.kind] || [] : [];
    $('resolve').hidden = actions.length === 0;
    $('resolve-actions').replaceChildren(
      el('legend', null, `Actions for a ${o.kind} order`),
      ...actions.map(([value, label]) => el('label', null, el('input', { type: 'radio', name: 'action', value, required: '' }), label)));
    $('resolve').reset();
    fillOperator();
  }

  async function resolve(event) {
    event.preventDefault();
    const form = $('resolve');
    const body = { action: form.elements.action.value, note: form.elements.note.value.trim(), operator: form.elements.operator.value.trim() };
    if (!body.action || !body.note || !body.operator) return showError('detail-error', 'Choose an action and give a note and your name.');
    // Operator decisions are final: one more look before money or gold moves.
    if (!window.confirm(`Resolve this order as "${body.action}"? This is final.`)) return;
    sessionStorage.setItem(OPERATOR_KEY, body.operator);
    form.querySelector('button').disabled = true;
    try {
      await api(`/ops/orders/${encodeURIComponent(openOrderId)}/resolve`, { body });
      showError('detail-error', null);
      await Promise.all([openOrder(openOrderId), loadAll()]);
    } catch (err) {
      if (err instanceof Unauthorized) return signOut('The token was refused. Type it again.');
      showError('detail-error', err);
    } finally {
      form.querySelector('button').disabled = false;
    }
  }

  async function acceptPrice(event) {
    event.preventDefault();
    const form = $('accept-price');
    const body = { note: form.elements.note.value.trim(), operator: form.elements.operator.value.trim(), ...(pausedSeen || {}) };
    if (!window.confirm('Accept the paused price and resume trading at it?')) return;
    sessionStorage.setItem(OPERATOR_KEY, body.operator);
    try {
      await api('/ops/prices/accept', { body });
      form.reset();
      await loadAll();
    } catch (err) {
      if (err instanceof Unauthorized) return signOut('The token was refused. Type it again.');
      showError('prices-error', err);
    }
  }

  // ---- the CSV: fetched with the bearer header, then handed to the browser as a file

  async function exportCsv(event) {
    event.preventDefault();
    const form = $('export');
    const from = form.elements.from.value;
    const to = form.elements.to.value;
    showError('export-error', null);
    try {
      const res = await api(`/ops/transactions.csv?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`, { raw: true });
      const url = URL.createObjectURL(await res.blob());
      const a = el('a', { href: url, download: `transactions-${from}-${to}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      if (err instanceof Unauthorized) return signOut('The token was refused. Type it again.');
      showError('export-error', err);
    }
  }

  // ---- signing in and out, loading everything

  const SECTIONS = [[loadPool, 'pool-error'], [loadPrices, 'prices-error'], [loadAlerts, 'alerts-error'], [loadReview, 'review-error'], [loadOrders, 'orders-error']];

  async function loadAll() {
    const results = await Promise.allSettled(SECTIONS.map(([load]) => load()));
    if (results.some((r) => r.status === 'rejected' && r.reason instanceof Unauthorized)) return signOut('The token was refused. Type it again.');
    results.forEach((r, i) => showError(SECTIONS[i][1], r.status === 'rejected' ? r.reason : null));
    $('refreshed').textContent = `updated ${when(new Date().toISOString())}`;
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    openOrderId = null;
    $('app').hidden = true;
    $('nav').hidden = true;
    $('detail-card').hidden = true;
    $('login').hidden = false;
    showError('login-error', message || null);
    $('token').value = '';
    $('token').focus();
  }

  async function signIn() {
    $('login').hidden = true;
    $('app').hidden = false;
    $('nav').hidden = false;
    fillOperator();
    await loadAll();
  }

  function fillOperator() {
    for (const input of document.querySelectorAll('input.operator')) if (!input.value) input.value = sessionStorage.getItem(OPERATOR_KEY) || '';
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('login').addEventListener('submit', (event) => {
      event.preventDefault();
      const token = $('token').value.trim();
      if (!token) return;
      sessionStorage.setItem(TOKEN_KEY, token);
      $('token').value = '';
      signIn();
    });
    $('signout').addEventListener('click', () => signOut(null));
    $('refresh').addEventListener('click', () => loadAll());
    $('detail-close').addEventListener('click', () => ($('detail-card').hidden = true));
    $('orders-filter').addEventListener('change', () => loadOrders().then(() => showError('orders-error', null), (err) =>
      err instanceof Unauthorized ? signOut('The token was refused. Type it again.') : showError('orders-error', err)));
    $('resolve').addEventListener('submit', resolve);
    $('accept-price').addEventListener('submit', acceptPrice);
    $('export').addEventListener('submit', exportCsv);

    const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'Africa/Nairobi' }).format(new Date()); // YYYY-MM-DD
    $('export').elements.from.value = `${today.slice(0, 8)}01`;
    $('export').elements.to.value = today;

    if (sessionStorage.getItem(TOKEN_KEY)) signIn();
    else $('token').focus();
  });
})();
