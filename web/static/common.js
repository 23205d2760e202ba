// Shared by the three pages: the REST client, demo login, WebSockets with reconnect, the
// offline map and small DOM helpers. Plain ES module, no framework, no build step.

/** An error answer of the API: `{"error":{"code","message"}}` with its HTTP status. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Calls the API; resolves to the parsed JSON (or null), throws ApiError on a non-2xx. */
export async function api(path, { method = 'GET', token, body, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const resp = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await resp.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!resp.ok) {
    const e = json && json.error;
    throw new ApiError(resp.status, e ? e.code : `http.${resp.status}`, e ? e.message : (text || resp.statusText));
  }
  return json;
}

/**
 * A demo token from the router's (or a single cell's) `POST /api/v1/dev/token`, kept in
 * sessionStorage until a minute before it expires. Throws ApiError 404 outside demo mode:
 * the caller then asks for a bearer token from the identity provider instead.
 */
export async function demoToken(role, sub, home) {
  const key = `token:${role}:${sub}:${home ?? ''}`;
  const saved = JSON.parse(sessionStorage.getItem(key) || 'null');
  if (saved && saved.until > Date.now()) return saved.token;
  const body = { role, sub: String(sub) };
  if (home) body.home = Number(home);
  const r = await api('/api/v1/dev/token', { method: 'POST', body });
  sessionStorage.setItem(key, JSON.stringify({ token: r.token, until: Date.now() + (r.expires_in_s - 60) * 1000 }));
  return r.token;
}

/** Forgets cached demo tokens (after a 401). */
export function forgetTokens() {
  for (const k of Object.keys(sessionStorage)) if (k.startsWith('token:')) sessionStorage.removeItem(k);
}

/**
 * A WebSocket that reconnects with backoff. `path` is under this origin; the token goes in
 * the query (browsers cannot set headers on an upgrade). Every (re)connection starts with
 * the server's fresh snapshot, so nothing is replayed from before the drop.
 */
export function liveSocket(path, getToken, { onMessage, onState, finished }) {
  let ws = null;
  let closed = false;
  let attempt = 0;
  let timer = null;
  async function open() {
    if (closed) return;
    let token;
    try { token = await getToken(); } catch (e) { onState('error', e.message); return retry(); }
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const sep = path.includes('?') ? '&' : '?';
    ws = new WebSocket(`${proto}//${location.host}${path}${sep}token=${encodeURIComponent(token)}`);
    onState('connecting');
    ws.onopen = () => { attempt = 0; onState('open'); };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      onMessage(msg);
    };
    ws.onclose = (ev) => {
      ws = null;
      if (closed || (finished && finished())) { onState('closed', ev.reason); return; }
      onState('reconnecting', ev.reason);
      retry();
    };
    // An error is followed by a close, which schedules the retry.
    ws.onerror = () => {};
  }
  function retry() {
    clearTimeout(timer);
    const delay = Math.min(8000, 250 * 2 ** attempt++);
    timer = setTimeout(open, delay);
  }
  open();
  return {
    close() { closed = true; clearTimeout(timer); if (ws) ws.close(1000, 'page closed'); },
    /** Drops the connection as a network would (for the reconnect path). */
    drop() { if (ws) ws.close(4000, 'dropped by the page'); },
    get connected() { return ws !== null && ws.readyState === WebSocket.OPEN; },
  };
}

/** `el('button', {class: 'x', onclick}, 'text', child)`. */
export function el(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
    else if (k === 'class') n.className = v;
    else if (v === true) n.setAttribute(k, '');
    else n.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) n.append(c instanceof Node ? c : String(c));
  return n;
}

export const $ = (sel, root = document) => root.querySelector(sel);

/** Cents as money: 1299 → "€12.99". */
export function money(cents, currency = 'EUR') {
  return new Intl.NumberFormat('en-GB', { style: 'currency', currency }).format(cents / 100);
}

export function time(ms) {
  return new Date(ms).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** Shows `text` in the page's status line (an ARIA live region). */
export function say(text, kind = 'info') {
  const s = $('#status');
  if (!s) return;
  s.textContent = text;
  s.dataset.kind = kind;
}

/**
 * A Leaflet map with no tile layer (no tile server is reachable, and none is needed): a
 * plain background, a scale, and whatever the page draws (H3 hexagons, pins, routes).
 */
export function offlineMap(div, center, zoom) {
  const L = window.L;
  const map = L.map(div, { center, zoom, zoomControl: true, attributionControl: false, keyboard: true, preferCanvas: false });
  L.control.scale({ imperial: false }).addTo(map);
  return map;
}

/** Moves a marker smoothly from where it is to `to` over `ms` (between two pings). */
export function glide(marker, to, ms) {
  const from = marker.getLatLng();
  const start = performance.now();
  if (marker._glide) cancelAnimationFrame(marker._glide);
  const step = (now) => {
    const t = Math.min(1, (now - start) / ms);
    marker.setLatLng([from.lat + (to[0] - from.lat) * t, from.lng + (to[1] - from.lng) * t]);
    if (t < 1) marker._glide = requestAnimationFrame(step);
  };
  marker._glide = requestAnimationFrame(step);
}

/** A short two-tone chime from the Web Audio API (no sound file to load). */
export function chime() {
  try {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    const ctx = chime.ctx || (chime.ctx = new Ctx());
    const t = ctx.currentTime;
    for (const [i, f] of [[0, 880], [1, 1175]]) {
      const o = ctx.createOscillator();
      const g = ctx.createGain();
      o.frequency.value = f;
      g.gain.setValueAtTime(0.0001, t + i * 0.18);
      g.gain.exponentialRampToValueAtTime(0.3, t + i * 0.18 + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, t + i * 0.18 + 0.16);
      o.connect(g).connect(ctx.destination);
      o.start(t + i * 0.18);
      o.stop(t + i * 0.18 + 0.17);
    }
  } catch { /* no audio device: the visible alert remains */ }
}

/** The order statuses in the order a delivery passes them. */
export const STATUSES = ['pending', 'confirmed', 'preparing', 'ready_for_pickup', 'driver_assigned',
  'driver_at_restaurant', 'picked_up', 'delivering', 'delivered'];

export function label(status) {
  return ({ payment_pending: 'Payment pending', pending: 'Placed', confirmed: 'Accepted', preparing: 'Preparing',
    ready_for_pickup: 'Ready for pickup', driver_assigned: 'Driver assigned', driver_at_restaurant: 'Driver at restaurant',
    picked_up: 'Picked up', delivering: 'On the way', delivered: 'Delivered', cancelled: 'Cancelled' })[status] || status;
}
