// The operations console (admin token): H3 regions coloured by owning cell and state, each
// cell's health and load, the audit log, and the map changes (move a region, drain a cell,
// add a cell), each behind a confirmation step. The admin API has no push channel, so the
// console reads it every second: a change shows on the map within two seconds.
import { api, ApiError, demoToken, forgetTokens, el, $, say, offlineMap, time } from './common.js';

const PALETTE = ['#0b6e4f', '#1d4ed8', '#b54708', '#7a2e9e', '#c11574', '#027a48', '#344054', '#0e7090'];
const state = { token: null, map: null, layer: null, drivers: null, fitted: false, cells: [], version: 0, pending: null, timer: null };

const colour = (cell) => PALETTE[Number(cell) % PALETTE.length];

async function token() {
  const pasted = $('#bearer').value.trim();
  if (pasted) return pasted;
  if (!state.token) state.token = await demoToken('admin', 0);
  return state.token;
}

async function call(path, opts = {}) {
  try {
    return await api(path, { ...opts, token: await token() });
  } catch (e) {
    // Admin tokens live 15 minutes: a demo console fetches a new one.
    if (e instanceof ApiError && e.status === 401 && !$('#bearer').value.trim()) {
      forgetTokens();
      state.token = null;
      return api(path, { ...opts, token: await token() });
    }
    throw e;
  }
}

const explain = (e) => (e instanceof ApiError ? `${e.message} (${e.code}, ${e.status})` : `Network problem: ${e.message}`);

async function refresh() {
  try {
    const [cells, regions, audit] = await Promise.all([
      call('/admin/v1/cells'), call('/admin/v1/map/regions'), call('/admin/v1/audit?limit=15')]);
    state.cells = cells.cells;
    drawRegions(regions);
    drawDrivers(cells.cells);
    drawCells(cells);
    drawAudit(audit);
    $('#map-version').textContent = `map version ${regions.version}`;
    $('#map-version').dataset.version = String(regions.version);
  } catch (e) {
    say(explain(e), 'error');
  }
}

function drawRegions(geo) {
  const L = window.L;
  if (state.layer) state.layer.remove();
  state.layer = L.geoJSON(geo, {
    style: (f) => {
      const p = f.properties;
      return {
        color: p.state === 'active' ? colour(p.cell) : p.state === 'draining' ? '#b54708' : '#667085',
        weight: p.state === 'active' ? 1.5 : 3,
        dashArray: p.state === 'draining' ? '6 4' : null,
        fillColor: colour(p.cell),
        fillOpacity: p.state === 'drained' ? 0.08 : 0.35,
      };
    },
    onEachFeature: (f, layer) => {
      const p = f.properties;
      layer.bindTooltip(`${p.region} → cell ${p.cell} ${p.cell_name || ''} (${p.state})`);
      layer.on('click', () => { $('#move-region').value = p.region; $('#move-region').focus(); });
      // Test hooks: which cell and state each region shows now.
      layer.on('add', () => {
        const path = layer.getElement && layer.getElement();
        if (path) { path.dataset.region = p.region; path.dataset.cell = String(p.cell); path.dataset.state = p.state; }
      });
    },
  }).addTo(state.map);
  if (!state.fitted && geo.features.length) {
    state.map.fitBounds(state.layer.getBounds(), { padding: [20, 20] });
    state.fitted = true;
  }
  const regions = geo.features.map((f) => f.properties.region);
  fillSelect($('#move-region'), regions.map((r) => [r, r]));
  const cells = new Map(geo.features.map((f) => [f.properties.cell, f.properties]));
  $('#legend').replaceChildren(...[...cells.values()].map((p) => el('span', {},
    el('span', { class: 'pill', style: `background:${colour(p.cell)};color:#fff` }, `cell ${p.cell} ${p.cell_name || ''}`))),
  el('span', {}, 'dashed orange: draining · grey: drained · dots: drivers (green available, orange busy)'));
}

/** Fits the map to a cell's regions. */
function zoomTo(cell) {
  const L = window.L;
  const mine = [];
  state.layer.eachLayer((l) => { if (String(l.feature.properties.cell) === String(cell)) mine.push(l); });
  if (mine.length) state.map.fitBounds(L.featureGroup(mine).getBounds(), { padding: [30, 30], maxZoom: 10 });
}

/** Each cell's sample of live driver positions (from its last health check), as dots. */
function drawDrivers(cells) {
  const L = window.L;
  if (state.drivers) state.drivers.remove();
  state.drivers = L.layerGroup();
  let n = 0;
  for (const c of cells) {
    for (const d of c.drivers_sample || []) {
      n += 1;
      L.circleMarker([d.lat, d.lng], { radius: 3, weight: 1, color: '#101828', fillColor: d.state === 'available' ? '#12b76a' : '#f79009', fillOpacity: 1, className: 'driver-dot' })
        .bindTooltip(`cell ${c.id} driver (${d.state.replace('_', ' ')})`).addTo(state.drivers);
    }
  }
  state.drivers.addTo(state.map);
  $('#map').dataset.drivers = String(n);
}

function fillSelect(sel, options) {
  const keep = sel.value;
  const same = sel.options.length === options.length && options.every(([v], i) => sel.options[i].value === v);
  if (same) return;
  sel.replaceChildren(...options.map(([v, t]) => el('option', { value: v }, t)));
  if (options.some(([v]) => v === keep)) sel.value = keep;
}

function drawCells(c) {
  $('#cells').replaceChildren(...c.cells.map((x) => el('tr', { 'data-cell': x.id, 'data-state': x.state },
    el('td', {}, el('button', { type: 'button', class: 'secondary', 'aria-label': `Show cell ${x.id} ${x.name} on the map`, onclick: () => zoomTo(x.id) },
      el('span', { class: 'pill', style: `background:${colour(x.id)};color:#fff` }, `${x.id}`), ` ${x.name}`), el('br'), el('span', { class: 'muted' }, x.http)),
    el('td', {}, el('span', { class: `pill ${x.state}`, 'data-cell-state': x.id }, x.state),
      x.drain ? el('div', { class: 'muted' }, `${x.drain.orders_left ?? ''} orders left`) : ''),
    el('td', {}, el('span', { class: `pill ${x.up ? 'ok' : 'bad'}` }, x.up ? 'up' : 'down')),
    el('td', {}, String(x.active_orders)),
    el('td', {}, String(x.drivers_online)),
    el('td', {}, String(x.regions.length)))));
  const opts = c.cells.map((x) => [String(x.id), `${x.id} ${x.name} (${x.state})`]);
  for (const s of ['#move-to', '#drain-cell', '#drain-to']) fillSelect($(s), opts);
}

function drawAudit(entries) {
  const list = Array.isArray(entries) ? entries : (entries.entries || []);
  $('#audit').replaceChildren(...list.map((a) => el('tr', {},
    el('td', {}, String(a.version ?? '')), el('td', {}, a.at_ms ? time(a.at_ms) : ''),
    el('td', {}, a.who ?? ''), el('td', {}, describe(a.change)))));
}

/** Asks before changing the map; `run` happens only on "Confirm". */
function confirmStep(text, run) {
  $('#confirm-text').textContent = text;
  $('#confirm').hidden = false;
  $('#confirm-yes').focus();
  state.pending = run;
}

async function confirmed() {
  const run = state.pending;
  state.pending = null;
  $('#confirm').hidden = true;
  if (!run) return;
  try {
    const msg = await run();
    say(msg, 'ok');
  } catch (e) {
    say(explain(e), 'error');
  }
  // Let the answer's state be seen before the next read replaces it.
  setTimeout(refresh, 300);
}

function init() {
  state.map = offlineMap($('#map'), [50.3, 12.5], 6);
  $('#login').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    state.token = null;
    try { await token(); } catch (e) {
      say(e instanceof ApiError && e.status === 404 ? 'This router is not in demo mode: paste an admin bearer token.' : explain(e), 'error');
      return;
    }
    say('Signed in as admin.', 'ok');
    await refresh();
    clearInterval(state.timer);
    state.timer = setInterval(refresh, 1000);
  });
  $('#move').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const region = $('#move-region').value;
    const to = $('#move-to').value;
    confirmStep(`Move region ${region} to cell ${to}? Its restaurants move with it; orders already placed stay where they are.`, async () => {
      const r = await call(`/admin/v1/regions/${region}/move`, { method: 'POST', body: { to } });
      return `Region ${region} moved to cell ${to}${r && r.restaurants_copied != null ? ` (${r.restaurants_copied} restaurants)` : ''}.`;
    });
  });
  $('#drain').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const cell = $('#drain-cell').value;
    const to = $('#drain-to').value;
    confirmStep(`Drain cell ${cell} into cell ${to}? All its regions move; it takes no new orders and becomes drained once its last order ends.`, async () => {
      const r = await call(`/admin/v1/cells/${cell}/drain`, { method: 'POST', body: { to } });
      // The answer's state shows at once: the cell may be drained by the next read already.
      const c = state.cells.find((x) => String(x.id) === String(cell));
      if (c) { c.state = r.state; drawCells({ cells: state.cells }); }
      return `Cell ${cell} is ${r.state}.`;
    });
  });
  $('#add').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const http = $('#add-http').value.trim();
    confirmStep(`Add the cell at ${http}? It takes the unowned regions where it holds restaurants.`, async () => {
      await call('/admin/v1/cells', { method: 'POST', body: { http } });
      return `Cell at ${http} added.`;
    });
  });
  $('#confirm-yes').addEventListener('click', confirmed);
  $('#confirm-no').addEventListener('click', () => { state.pending = null; $('#confirm').hidden = true; say('Nothing changed.'); });
}

if (window.L) init(); else window.addEventListener('load', init);

/** An audit entry's change in words: `{"op": "move_region", "region": …, "to": 2}`. */
function describe(change) {
  if (!change || typeof change !== 'object') return String(change ?? '');
  const { op, ...rest } = change;
  const value = (x) => (Array.isArray(x) ? `${x.length} regions` : x && typeof x === 'object' ? (x.name ? `${x.id} ${x.name}` : JSON.stringify(x)) : x);
  const parts = Object.entries(rest).map(([k, x]) => `${k} ${value(x)}`);
  return `${String(op || '?').replace(/_/g, ' ')}${parts.length ? `: ${parts.join(', ')}` : ''}`;
}
