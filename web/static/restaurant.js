// The restaurant tablet: orders pushed over the restaurant WebSocket (no polling), a chime
// and a visible alert on a new order, one tap to accept, reject (with a reason), start
// preparing or mark ready, today's orders, item availability and the open/closed toggle.
import { api, ApiError, demoToken, forgetTokens, liveSocket, el, $, money, say, chime, label, time } from './common.js';

// `answers`: the last answer per order, kept across re-renders (a push redraws the cards).
const state = { id: null, token: null, orders: new Map(), socket: null, menu: null, answers: new Map() };
const ACTIVE = ['pending', 'confirmed', 'preparing', 'ready_for_pickup', 'driver_assigned', 'driver_at_restaurant'];

async function token() {
  const pasted = $('#bearer').value.trim();
  if (pasted) return pasted;
  if (!state.token) state.token = await demoToken('restaurant', state.id);
  return state.token;
}

async function call(path, opts = {}) {
  try {
    return await api(path, { ...opts, token: await token() });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401 && !$('#bearer').value.trim()) {
      forgetTokens();
      state.token = null;
      return api(path, { ...opts, token: await token() });
    }
    throw e;
  }
}

function explain(e) {
  if (e instanceof ApiError && e.status === 409) return `Not changed: ${e.message}`;
  return e instanceof ApiError ? `${e.message} (${e.code})` : `Network problem: ${e.message}`;
}

// --- live orders --------------------------------------------------------------------------

function connect() {
  if (state.socket) state.socket.close();
  state.orders.clear();
  state.socket = liveSocket(`/ws/restaurants/${state.id}/orders`, token, {
    onMessage,
    onState: (s) => {
      const c = $('#conn');
      c.textContent = s === 'open' ? 'live' : s;
      c.className = `pill ${s === 'open' ? 'ok' : 'warn'}`;
    },
  });
  window.__feed = state.socket;
}

function onMessage(m) {
  if (m.type === 'snapshot') {
    // A fresh snapshot after every (re)connection: it replaces what was shown.
    state.orders = new Map(m.orders.map((o) => [o.order_id, o]));
    renderOrders();
  } else if (m.type === 'order_update') {
    const known = state.orders.get(m.order_id);
    if (known) {
      known.status = m.status;
      renderOrders();
      return;
    }
    // A new order: the push names it; its lines come from the API.
    call(`/api/v1/orders/${m.order_id}`).then((o) => {
      state.orders.set(o.order_id, { ...o, fresh: true });
      renderOrders();
      if (o.status === 'pending') newOrderAlert(o);
    }).catch((e) => say(explain(e), 'error'));
    loadToday();
  }
}

function newOrderAlert(o) {
  chime();
  const a = $('#alert');
  a.replaceChildren(el('p', { class: 'alert new', id: `alert-${o.order_id}` },
    `New order ${o.order_id}: ${o.items.map((i) => `${i.quantity} × ${i.name}`).join(', ')} (${money(o.total)})`));
  document.title = '● New order — Restaurant tablet';
  setTimeout(() => { document.title = 'Restaurant tablet'; }, 8000);
}

function renderOrders() {
  const root = $('#orders');
  const list = [...state.orders.values()].filter((o) => ACTIVE.includes(o.status)).sort((a, b) => b.created_at - a.created_at);
  if (!list.length) { root.replaceChildren(el('p', { class: 'muted' }, 'No open orders.')); return; }
  root.replaceChildren(...list.map(orderCard));
}

function orderCard(o) {
  const last = state.answers.get(o.order_id);
  const answer = el('p', { class: last ? last.cls : 'muted', 'aria-live': 'polite', 'data-answer': o.order_id }, last ? last.text : '');
  const act = (status, text, cls, extra = {}) => el('button', {
    type: 'button', class: cls, 'data-action': status,
    onclick: () => move(o.order_id, status, answer, extra.reason ? extra.reason() : undefined),
  }, text);
  const reasonId = `reason-${o.order_id}`;
  const reason = el('select', { id: reasonId },
    ...['Too busy', 'Item unavailable', 'Closing soon'].map((r) => el('option', {}, r)));
  return el('article', { class: `order-card ${o.fresh ? 'fresh' : ''}`, 'data-order': o.order_id, 'aria-label': `Order ${o.order_id}` },
    el('h3', {}, `Order ${o.order_id} `, el('span', { class: 'pill', 'data-status': o.status }, label(o.status))),
    el('p', { class: 'muted' }, `Placed ${time(o.created_at)} · ${money(o.total)}`, o.driver && o.driver.name ? ` · driver ${o.driver.name}` : ''),
    el('ul', {}, ...o.items.map((i) => el('li', {}, `${i.quantity} × ${i.name}`, i.customizations.length ? ` (${i.customizations.join(', ')})` : ''))),
    el('div', { class: 'actions' },
      act('accepted', 'Accept', ''),
      act('preparing', 'Preparing', 'secondary'),
      act('ready_for_pickup', 'Ready', 'secondary'),
      el('label', { for: reasonId, class: 'visually-hidden' }, 'Reason for rejecting'), reason,
      act('rejected', 'Reject', 'danger', { reason: () => reason.value })),
    answer);
}

async function move(id, status, answer, reason) {
  const show = (text, cls) => {
    state.answers.set(id, { text, cls });
    // The card on screen now (a push may have redrawn it since the tap).
    const now = document.querySelector(`[data-answer="${id}"]`) || answer;
    now.textContent = text;
    now.className = cls;
  };
  show('…', 'muted');
  try {
    const r = await call(`/api/v1/restaurants/orders/${id}`, { method: 'PATCH', body: reason ? { status, reason } : { status } });
    show(`Done: ${label(r.status)}.`, 'muted');
    const o = state.orders.get(id);
    if (o) { o.status = r.status; o.fresh = false; }
    renderOrders();
    loadToday();
  } catch (e) {
    show(explain(e), 'alert');
  }
}

// --- today's orders, menu, open/closed ------------------------------------------------------

async function loadToday() {
  const midnight = new Date(); midnight.setHours(0, 0, 0, 0);
  try {
    const lists = await Promise.all(['active', 'delivered', 'cancelled'].map((s) => call(`/api/v1/restaurants/${state.id}/orders?status=${s}`)));
    const rows = lists.flatMap((l) => l.orders).filter((o) => o.created_at >= midnight.getTime()).sort((a, b) => b.created_at - a.created_at);
    $('#today').replaceChildren(...rows.map((o) => el('tr', {},
      el('td', {}, o.order_id), el('td', {}, time(o.created_at)),
      el('td', {}, o.items.map((i) => `${i.quantity} × ${i.name}`).join(', ')),
      el('td', {}, money(o.total)), el('td', {}, el('span', { class: 'pill' }, label(o.status))))));
  } catch (e) {
    say(explain(e), 'error');
  }
}

async function loadMenu() {
  try {
    state.menu = await call(`/api/v1/restaurants/${state.id}/menu`);
  } catch (e) { say(explain(e), 'error'); return; }
  const r = state.menu.restaurant;
  const closed = !!r.manually_closed;
  $('#open-state').textContent = closed ? 'closed' : 'open';
  $('#open-state').className = `pill ${closed ? 'bad' : 'ok'}`;
  const t = $('#open-toggle');
  t.disabled = false;
  t.textContent = closed ? 'Open now' : 'Close now';
  t.onclick = () => setOpen(closed);
  const items = state.menu.categories.flatMap((c) => c.items);
  $('#items').replaceChildren(...items.map((i) => el('li', { class: 'row' },
    el('span', { style: 'flex:1' }, el('strong', {}, i.name), ' ', money(i.price), ' ', el('span', { class: `pill ${i.available ? 'ok' : 'bad'}` }, i.available ? 'available' : 'sold out')),
    el('button', { type: 'button', class: 'secondary', 'aria-pressed': String(!i.available), onclick: () => setAvailable(i.id, !i.available) },
      i.available ? `Mark ${i.name} sold out` : `Mark ${i.name} available`))));
  $('h1').textContent = `${r.name} — tablet`;
}

async function setOpen(open) {
  try {
    await call(`/api/v1/restaurants/${state.id}`, { method: 'PATCH', body: { open } });
    say(open ? 'Open for orders.' : 'Closed: no new orders.', 'ok');
  } catch (e) { say(explain(e), 'error'); }
  loadMenu();
}

async function setAvailable(item, available) {
  try {
    await call(`/api/v1/restaurants/${state.id}/menu/items/${item}`, { method: 'PATCH', body: { available } });
    say(available ? 'Available again.' : 'Marked sold out.', 'ok');
  } catch (e) { say(explain(e), 'error'); }
  loadMenu();
}

async function signIn() {
  state.id = $('#restaurant-id').value.trim();
  state.token = null;
  if (!/^\d+$/.test(state.id)) { say('A restaurant id is a decimal number (the customer page shows it with the menu).', 'error'); return; }
  try {
    await token();
  } catch (e) {
    say(e instanceof ApiError && e.status === 404 ? 'This server is not in demo mode: paste a bearer token.' : explain(e), 'error');
    return;
  }
  history.replaceState(null, '', `?id=${state.id}`);
  say(`Signed in as restaurant ${state.id}.`, 'ok');
  connect();
  loadToday();
  loadMenu();
}

$('#login').addEventListener('submit', (ev) => { ev.preventDefault(); signIn(); });
// A tap anywhere unlocks audio (browsers refuse sound before a user gesture).
document.addEventListener('pointerdown', () => chime.ctx && chime.ctx.resume(), { once: true });
const given = new URLSearchParams(location.search).get('id');
if (given) { $('#restaurant-id').value = given; signIn(); }
