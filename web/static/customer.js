// The customer page: search nearby restaurants (map + list, cuisine filter, paging), a menu
// with customizations, a cart with the server's quote, the order (one idempotency key per
// cart, kept across retries), and live tracking over the order's WebSocket.
import { api, ApiError, demoToken, forgetTokens, liveSocket, el, $, money, say, offlineMap, glide, STATUSES, label, time } from './common.js';

const state = {
  token: null,
  map: null,
  pins: null,
  pages: [],        // cursors (or page numbers) of the pages shown so far, for "Previous"
  restaurant: null, // the open menu's restaurant header
  cart: [],         // {item_id, name, unit, quantity, customizations}
  quoted: null,
  order: null,      // the tracked order (last snapshot, updated by pushes)
  socket: null,
  driver: null,     // the driver's marker
  lastPing: 0,
};

async function token() {
  const pasted = $('#bearer').value.trim();
  if (pasted) return pasted;
  if (!state.token) state.token = await demoToken('customer', $('#customer-id').value.trim());
  return state.token;
}

/** Calls the API with the customer's token; a 401 drops cached tokens and retries once. */
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
  if (e instanceof ApiError && e.code === 'http.404' && e.message.includes('dev/token')) {
    return 'This server is not in demo mode: paste a bearer token from your identity provider.';
  }
  return e instanceof ApiError ? `${e.message} (${e.code})` : `Network problem: ${e.message}`;
}

// --- search -----------------------------------------------------------------------------

async function search(page) {
  const lat = $('#lat').value.trim();
  const lng = $('#lng').value.trim();
  const q = new URLSearchParams({ lat, lng, radius: $('#radius').value, page_size: '10' });
  if ($('#cuisine').value) q.set('cuisine', $('#cuisine').value);
  if (page && page.cursor) q.set('cursor', page.cursor);
  if (page && page.page) q.set('page', String(page.page));
  say('Searching…');
  let r;
  try {
    r = await call(`/api/v1/restaurants?${q}`);
  } catch (e) {
    say(explain(e), 'error');
    return;
  }
  showResults(r, [Number(lat), Number(lng)]);
  say(`${r.total} restaurants deliver here.`, 'ok');
  return r;
}

function showResults(r, centre) {
  const list = $('#results');
  list.replaceChildren();
  state.pins.clearLayers();
  L.circleMarker(centre, { radius: 7, color: '#b42318', fillOpacity: 0.9 }).bindTooltip('Delivery address').addTo(state.pins);
  const known = new Set([...$('#cuisine').options].map((o) => o.value));
  for (const s of r.restaurants) {
    if (!known.has(s.cuisine_type)) {
      $('#cuisine').append(el('option', { value: s.cuisine_type }, s.cuisine_type));
      known.add(s.cuisine_type);
    }
    const open = () => openMenu(s.id);
    list.append(el('li', {},
      el('button', { class: 'secondary', type: 'button', onclick: open, 'data-restaurant': s.id, style: 'width:100%;text-align:left' },
        el('strong', {}, s.name), ' · ', s.cuisine_type, ' · ★ ', s.rating.toFixed(1), el('br'),
        el('span', { class: 'muted' }, `${(s.distance_m / 1000).toFixed(1)} km · ${s.estimated_time} · delivery ${money(s.delivery_fee)}`))));
    if (typeof s.lat === 'number') {
      L.circleMarker([s.lat, s.lng], { radius: 6, color: '#0b6e4f', fillOpacity: 0.8 })
        .bindTooltip(s.name).on('click', open).addTo(state.pins);
    }
  }
  $('#result-count').textContent = r.restaurants.length ? `Showing ${r.restaurants.length} of ${r.total}` : 'Nothing open nearby.';
  state.map.setView(centre, 14);
  const next = r.next_cursor ? { cursor: r.next_cursor } : (r.next_page ? { page: r.next_page } : null);
  $('#next').disabled = !next;
  $('#next').onclick = async () => { if (await search(next)) state.pages.push(next); $('#prev').disabled = state.pages.length < 2; };
  $('#prev').disabled = state.pages.length < 2;
}

// --- menu and cart ------------------------------------------------------------------------

async function openMenu(id) {
  let m;
  try {
    m = await call(`/api/v1/restaurants/${id}/menu`);
  } catch (e) {
    say(explain(e), 'error');
    return;
  }
  if (state.restaurant && state.restaurant.id !== m.restaurant.id && state.cart.length) {
    state.cart = [];
    renderCart();
  }
  state.restaurant = m.restaurant;
  const root = $('#menu');
  root.replaceChildren(el('h3', {}, m.restaurant.name),
    el('p', { class: 'muted' }, m.restaurant.address || '', ' · restaurant ', m.restaurant.id, ' · ',
      el('a', { href: `/restaurant?id=${m.restaurant.id}`, target: '_blank', rel: 'noopener' }, 'its tablet')));
  for (const cat of m.categories) {
    root.append(el('h4', {}, cat.name));
    const ul = el('ul', { class: 'plain' });
    for (const item of cat.items) ul.append(menuItem(item));
    root.append(ul);
  }
  say(`Menu of ${m.restaurant.name}.`, 'ok');
  root.querySelector('button')?.focus();
}

function menuItem(item) {
  const groups = item.customizations || [];
  const form = el('form', { 'data-item': item.id });
  // Options fold away (required ones come pre-chosen), so the menu stays short.
  const opts = el('details', {}, el('summary', {}, 'Options'));
  groups.forEach((g, gi) => {
    const max = g.max ?? g.options.length;
    const single = max === 1;
    const fs = el('fieldset', {}, el('legend', {}, `${g.name}${g.required ? ' (required)' : ''}`));
    g.options.forEach((o, oi) => {
      const id = `c-${item.id}-${gi}-${oi}`;
      const pick = g.required && oi < Math.max(1, g.min || 0);
      fs.append(el('label', { for: id },
        el('input', { id, type: single ? 'radio' : 'checkbox', name: `g${gi}`, value: o.name, checked: pick }),
        ` ${o.name}${o.price_delta ? ` (+${money(o.price_delta)})` : ''}`));
    });
    opts.append(fs);
  });
  if (groups.length) form.append(opts);
  form.append(el('button', { type: 'submit', disabled: !item.available, 'aria-label': item.available ? `Add ${item.name}` : `${item.name} is sold out` }, item.available ? 'Add' : 'Sold out'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const chosen = [...form.querySelectorAll('input:checked')].map((i) => i.value);
    let unit = item.price;
    for (const g of groups) for (const o of g.options) if (chosen.includes(o.name)) unit += o.price_delta || 0;
    const same = state.cart.find((l) => l.item_id === item.id && l.customizations.join('|') === chosen.join('|'));
    if (same) same.quantity += 1;
    else state.cart.push({ item_id: item.id, name: item.name, unit, quantity: 1, customizations: chosen });
    renderCart();
    say(`${item.name} added to the cart.`, 'ok');
  });
  return el('li', { class: 'menu-item' }, el('div', {}, el('strong', {}, item.name), ' ', money(item.price), el('br'),
    el('span', { class: 'muted' }, item.description || '')), form);
}

function cartKey() {
  return JSON.stringify([state.restaurant && state.restaurant.id, state.cart.map((l) => [l.item_id, l.quantity, l.customizations]), $('#lat').value, $('#lng').value]);
}

function renderCart() {
  const ul = $('#cart');
  ul.replaceChildren();
  state.cart.forEach((l, i) => {
    ul.append(el('li', { class: 'row' },
      el('span', { style: 'flex:1' }, `${l.quantity} × ${l.name}`, l.customizations.length ? el('span', { class: 'muted' }, ` (${l.customizations.join(', ')})`) : ''),
      el('span', {}, money(l.unit * l.quantity)),
      el('button', { type: 'button', class: 'secondary', 'aria-label': `One fewer ${l.name}`, onclick: () => { l.quantity -= 1; if (!l.quantity) state.cart.splice(i, 1); renderCart(); } }, '−'),
      el('button', { type: 'button', class: 'secondary', 'aria-label': `One more ${l.name}`, onclick: () => { l.quantity += 1; renderCart(); } }, '+')));
  });
  state.quoted = null;
  $('#quote').textContent = state.cart.length ? 'Get a quote to see the total.' : 'Your cart is empty.';
  $('#get-quote').disabled = !state.cart.length;
  $('#place').disabled = true;
}

function orderBody() {
  return {
    restaurant_id: state.restaurant.id,
    items: state.cart.map((l) => ({ item_id: l.item_id, quantity: l.quantity, customizations: l.customizations })),
    delivery_address: { lat: Number($('#lat').value), lng: Number($('#lng').value), formatted: $('#city').selectedOptions[0].textContent },
    payment_method_id: $('#pm').value,
  };
}

async function quote() {
  try {
    const q = await call('/api/v1/orders/quote', { method: 'POST', body: orderBody() });
    state.quoted = cartKey();
    $('#quote').replaceChildren(el('table', {}, el('tbody', {},
      ...q.items.map((i) => el('tr', {}, el('td', {}, `${i.quantity} × ${i.name}`), el('td', {}, money(i.line_total, q.currency)))),
      el('tr', {}, el('td', {}, 'Subtotal'), el('td', {}, money(q.subtotal, q.currency))),
      el('tr', {}, el('td', {}, 'Delivery'), el('td', {}, money(q.delivery_fee, q.currency))),
      el('tr', {}, el('td', {}, 'Tax'), el('td', {}, money(q.tax, q.currency))),
      el('tr', {}, el('th', {}, 'Total'), el('th', { id: 'quote-total' }, money(q.total, q.currency))),
      el('tr', {}, el('td', {}, 'Arrives in'), el('td', {}, q.estimated_delivery)))));
    $('#place').disabled = false;
    say('Quote ready.', 'ok');
  } catch (e) {
    say(explain(e), 'error');
  }
}

/**
 * Places the order. The idempotency key belongs to the cart: a retry after a lost answer
 * (network error, 5xx, a reload) sends the same key, so the order is placed once.
 */
async function place() {
  const key = cartKey();
  let saved = JSON.parse(sessionStorage.getItem('pending-order') || 'null');
  if (!saved || saved.cart !== key) {
    saved = { cart: key, idem: crypto.randomUUID() };
    sessionStorage.setItem('pending-order', JSON.stringify(saved));
  }
  $('#place').disabled = true;
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      const r = await call('/api/v1/orders', { method: 'POST', body: orderBody(), headers: { 'Idempotency-Key': saved.idem } });
      sessionStorage.removeItem('pending-order');
      state.cart = [];
      renderCart();
      say(`Order ${r.order_id} placed: ${money(r.total, r.currency)}.`, 'ok');
      track(r.order_id);
      return;
    } catch (e) {
      const retryable = !(e instanceof ApiError) || e.status >= 500 || e.status === 429;
      if (!retryable) { say(explain(e), 'error'); $('#place').disabled = false; return; }
      say(`${explain(e)}; trying again with the same key…`, 'error');
      await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
    }
  }
  $('#place').disabled = false;
}

// --- tracking -----------------------------------------------------------------------------

function track(orderId) {
  if (state.socket) state.socket.close();
  state.order = null;
  state.pins.clearLayers();
  state.driver = null;
  state.socket = liveSocket(`/ws/orders/${orderId}/track`, token, {
    onMessage: (m) => onTrack(orderId, m),
    onState: (s) => { $('#tracking').dataset.socket = s; const c = $('#conn-state'); if (c) c.textContent = s; },
    finished: () => state.order && ['delivered', 'cancelled'].includes(state.order.status),
  });
  window.__tracking = state.socket; // lets the browser test drop the socket
}

function onTrack(orderId, m) {
  if (m.type === 'snapshot') {
    state.order = m.order;
    $('#tracking').dataset.snapshots = String(Number($('#tracking').dataset.snapshots || 0) + 1);
    if (m.driver_location) moveDriver(m.driver_location.lat, m.driver_location.lng);
    if (m.eta_minutes != null) state.order.eta_minutes = m.eta_minutes;
    drawRoute();
  } else if (m.type === 'status_update' && state.order) {
    state.order.status = m.status;
    state.order.status_history = [...(state.order.status_history || []), { status: m.status, event: m.event, at: m.at }];
    // The push names the status; the rest (driver, delay, ETA range) comes from the order.
    call(`/api/v1/orders/${orderId}`).then((o) => { state.order = { ...o, status_history: state.order.status_history }; renderTracking(); }).catch(() => {});
  } else if (m.type === 'location_update' && state.order) {
    moveDriver(m.lat, m.lng);
    if (m.eta_minutes != null) state.order.eta_minutes = m.eta_minutes;
  } else if (m.type === 'eta_update' && state.order) {
    state.order.eta_minutes = m.eta_minutes;
  }
  renderTracking();
}

function moveDriver(lat, lng) {
  const now = performance.now();
  if (!state.driver) {
    state.driver = L.marker([lat, lng], { icon: L.divIcon({ className: 'driver-pin', iconSize: [18, 18] }), title: 'Driver', keyboard: false }).addTo(state.pins);
  } else {
    // Glide over the time the last ping took to come, so the marker keeps moving until the next.
    const gap = state.lastPing ? Math.min(3000, Math.max(200, now - state.lastPing)) : 1000;
    glide(state.driver, [lat, lng], gap);
  }
  state.lastPing = now;
  (window.__driverTrail = window.__driverTrail || []).push([lat, lng]);
  state.driverMoves = (state.driverMoves || 0) + 1;
  $('#tracking').dataset.driverMoves = String(state.driverMoves);
}

function drawRoute() {
  const o = state.order;
  if (!o || state.routeDrawn === o.order_id || !state.restaurant) return;
  state.routeDrawn = o.order_id;
  const to = [o.delivery_address.lat, o.delivery_address.lng];
  const from = [state.restaurant.lat, state.restaurant.lng];
  if (typeof from[0] !== 'number') return;
  L.polyline([from, to], { color: '#0b6e4f', dashArray: '6 6' }).addTo(state.pins);
  L.circleMarker(from, { radius: 7, color: '#0b6e4f', fillOpacity: 0.9 }).bindTooltip(state.restaurant.name).addTo(state.pins);
  L.circleMarker(to, { radius: 7, color: '#b42318', fillOpacity: 0.9 }).bindTooltip('You').addTo(state.pins);
  state.map.fitBounds([from, to], { padding: [40, 40], maxZoom: 15 });
}

function renderTracking() {
  const o = state.order;
  if (!o) return;
  const root = $('#tracking');
  const reached = new Set((o.status_history || []).map((h) => h.status));
  reached.add(o.status);
  const idx = STATUSES.indexOf(o.status);
  const steps = STATUSES.map((s, i) => el('li', { class: `${reached.has(s) || i <= idx ? 'done' : ''} ${s === o.status ? 'current' : ''}`, 'data-status': s }, label(s)));
  const eta = o.status === 'delivered' ? 'Delivered. Enjoy your meal!'
    : o.status === 'cancelled' ? `Cancelled${o.cancel_reason ? `: ${o.cancel_reason}` : ''}.`
      : o.eta_minutes != null ? `Arrives in about ${o.eta_minutes} min`
        : o.estimated_delivery_min_at ? `Arrives between ${time(o.estimated_delivery_min_at)} and ${time(o.estimated_delivery_max_at)}` : '';
  root.replaceChildren(
    el('p', {}, el('strong', {}, `Order ${o.order_id}`), ' · ', el('span', { id: 'order-status', class: 'pill', 'data-status': o.status }, label(o.status)),
      ' · socket ', el('span', { id: 'conn-state', class: 'muted' }, root.dataset.socket || '')),
    o.delayed ? el('p', { class: 'alert', id: 'delayed' }, 'Running late: sorry, your order is taking longer than promised.') : '',
    o.handover_pin ? el('p', {}, 'Handover PIN: ', el('strong', {}, o.handover_pin)) : '',
    el('p', { id: 'eta' }, eta),
    o.estimated_delivery_min_at && !['delivered', 'cancelled'].includes(o.status)
      ? el('p', { class: 'muted' }, `Promised between ${time(o.estimated_delivery_min_at)} and ${time(o.estimated_delivery_max_at)}`) : '',
    o.driver && o.driver.name ? el('p', {}, `Driver: ${o.driver.name}`) : '',
    el('ol', { class: 'timeline', 'aria-label': 'Order progress' }, steps));
}

// --- wiring -------------------------------------------------------------------------------

function init() {
  state.map = offlineMap($('#map'), [52.52, 13.405], 13);
  state.pins = L.layerGroup().addTo(state.map);
  $('#city').addEventListener('change', () => {
    const [la, ln] = $('#city').value.split(',');
    $('#lat').value = la; $('#lng').value = ln;
  });
  $('#login').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    state.token = null;
    try { await token(); $('#who').textContent = $('#bearer').value.trim() ? 'Signed in with your token' : `Signed in as customer ${$('#customer-id').value}`; say('Signed in.', 'ok'); }
    catch (e) { say(explain(e), 'error'); }
  });
  $('#search').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    state.pages = [null];
    await search(null);
  });
  $('#prev').addEventListener('click', async () => {
    state.pages.pop();
    await search(state.pages[state.pages.length - 1]);
    $('#prev').disabled = state.pages.length < 2;
  });
  $('#get-quote').addEventListener('click', quote);
  $('#place').addEventListener('click', place);
  const resume = new URLSearchParams(location.search).get('order');
  if (resume) track(resume);
}

if (window.L) init(); else window.addEventListener('load', init);
