// Browser test of the three pages against a running router with two cells and simulated
// drivers (started by tests/tests/web_pages.rs, or by hand: see web/README section in the
// repository README). Drives Debian's chromium through playwright-core.
//
//   ROUTER_URL=http://127.0.0.1:8080 node web/tests/e2e.mjs
//
// Environment: ROUTER_URL (required), CHROMIUM (default /usr/bin/chromium), SEARCH_LAT /
// SEARCH_LNG (a place the first cell serves; default Berlin), OPS_FROM / OPS_TO (the cells
// the ops part moves a region and drains from / into; default 2 and 1), E2E_TIMEOUT_MS.
//
// Prints one `E2E {json}` line with what it measured and exits non-zero on any failure.
import { chromium } from 'playwright-core';

const ROUTER = process.env.ROUTER_URL;
if (!ROUTER) { console.error('ROUTER_URL is required'); process.exit(2); }
const EXE = process.env.CHROMIUM || '/usr/bin/chromium';
const LAT = process.env.SEARCH_LAT || '52.5200';
const LNG = process.env.SEARCH_LNG || '13.4050';
const FROM = process.env.OPS_FROM || '2';
const TO = process.env.OPS_TO || '1';
const TIMEOUT = Number(process.env.E2E_TIMEOUT_MS || 90000);
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const problems = [];   // console errors and page errors, from every page
let blocked = 0;       // requests to anything but loopback, refused
const blockedUrls = [];
const figures = {};
const step = (s) => console.error(`e2e: ${s}`);

function isLoopback(url) {
  try {
    const h = new URL(url).hostname;
    return h === '127.0.0.1' || h === 'localhost' || h === '[::1]' || h === '::1';
  } catch { return url.startsWith('data:') || url.startsWith('blob:'); }
}

async function context(browser, viewport) {
  const ctx = await browser.newContext({ viewport });
  // The network is limited to loopback: anything else is refused and counted.
  await ctx.route('**/*', (route) => {
    const url = route.request().url();
    if (isLoopback(url) || url.startsWith('data:')) return route.continue();
    blocked += 1;
    blockedUrls.push(url);
    return route.abort('blockedbyclient');
  });
  ctx.setDefaultTimeout(TIMEOUT);
  return ctx;
}

const ORDER = ['pending', 'confirmed', 'preparing', 'ready_for_pickup', 'driver_assigned',
  'driver_at_restaurant', 'picked_up', 'delivering', 'delivered'];

/** Waits until the customer page shows `status` or a later one (a fast driver moves on). */
function reached(page, status) {
  return page.waitForFunction(([want, order]) => {
    const s = document.querySelector('#order-status')?.dataset.status;
    return s && order.indexOf(s) >= order.indexOf(want);
  }, [status, ORDER]);
}

// Chromium logs every non-2xx fetch answer as a console error. The tablet is made to get
// 409s (a second accept; preparing after a fast driver took the order): those, and only
// those, are counted instead of failing the test.
const EXPECTED_409 = 'Failed to load resource: the server responded with a status of 409 (Conflict)';
figures.expected_409_logged = 0;
// The customer's first order request is answered by the server, then its answer is lost
// (the connection reset): the page must retry with the same idempotency key.
const EXPECTED_RESET = 'Failed to load resource: net::ERR_CONNECTION_RESET';

function watch(page, name) {
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (name === 'tablet' && m.text() === EXPECTED_409) { figures.expected_409_logged += 1; return; }
    if (name === 'customer' && m.text() === EXPECTED_RESET && !figures.expected_reset_logged) { figures.expected_reset_logged = 1; return; }
    problems.push(`${name} console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`${name} page error: ${e.message}`));
  return page;
}

async function main() {
  const browser = await chromium.launch({ executablePath: EXE, args: ARGS, headless: true });
  try {
    await customerAndTablet(browser);
    await ops(browser);
  } finally {
    await browser.close();
  }
  if (blocked) problems.push(`${blocked} requests left loopback: ${blockedUrls.slice(0, 5).join(', ')}`);
  console.log(`E2E ${JSON.stringify({ ok: problems.length === 0, figures, problems })}`);
  if (problems.length) {
    for (const p of problems) console.error(`e2e problem: ${p}`);
    process.exit(1);
  }
}

async function customerAndTablet(browser) {
  const cctx = await context(browser, { width: 1280, height: 900 });
  const customer = watch(await cctx.newPage(), 'customer');
  step('customer: sign in and search');
  await customer.goto(`${ROUTER}/`);
  await customer.getByRole('button', { name: 'Sign in (demo)' }).click();
  await customer.locator('#who').filter({ hasText: 'Signed in' }).waitFor();
  await customer.getByLabel('Latitude').fill(LAT);
  await customer.getByLabel('Longitude').fill(LNG);
  await customer.getByRole('button', { name: 'Search', exact: true }).click();
  const first = customer.locator('#results button[data-restaurant]').first();
  await first.waitFor();
  const shown = await customer.locator('#results li').count();
  if (shown < 2) problems.push(`search showed ${shown} restaurants`);
  const pins = await customer.locator('#map path.leaflet-interactive').count();
  if (pins < shown) problems.push(`map shows ${pins} pins for ${shown} restaurants`);
  // Paging: the next page shows other restaurants.
  const firstPage = await customer.locator('#results button[data-restaurant]').evaluateAll((b) => b.map((x) => x.dataset.restaurant));
  if (!(await customer.locator('#next').isDisabled())) {
    await customer.locator('#next').click();
    await customer.waitForFunction((ids) => {
      const now = [...document.querySelectorAll('#results button[data-restaurant]')].map((x) => x.dataset.restaurant);
      return now.length && !now.some((id) => ids.includes(id));
    }, firstPage);
    await customer.locator('#prev').click();
    await customer.waitForFunction((id) => !!document.querySelector(`#results button[data-restaurant="${id}"]`), firstPage[0]);
  }

  // The cuisine filter: every row then has that cuisine; back to any.
  const cuisine = await customer.locator('#cuisine option').nth(1).getAttribute('value');
  await customer.locator('#cuisine').selectOption(cuisine);
  await customer.getByRole('button', { name: 'Search', exact: true }).click();
  await customer.waitForFunction((c) => {
    const rows = [...document.querySelectorAll('#results button[data-restaurant]')];
    return rows.length && rows.every((b) => b.textContent.includes(` · ${c} · `));
  }, cuisine);
  await customer.locator('#cuisine').selectOption('');
  await customer.getByRole('button', { name: 'Search', exact: true }).click();
  await customer.waitForFunction((id) => !!document.querySelector(`#results button[data-restaurant="${id}"]`), firstPage[0]);

  // The first restaurant with an item that can be ordered.
  let restaurantId = null;
  for (const id of firstPage) {
    await customer.locator(`#results button[data-restaurant="${id}"]`).click();
    await customer.locator('#menu h3').waitFor();
    await customer.waitForFunction((rid) => document.querySelector('#menu p')?.textContent.includes(rid), id);
    const add = customer.locator('#menu form button[type=submit]:not([disabled])').first();
    if (await add.count()) { await add.click(); restaurantId = id; break; }
  }
  if (!restaurantId) throw new Error('no restaurant with an available item on the first page');
  step(`customer: ordering from restaurant ${restaurantId}`);

  // The tablet, in a second browser context, at tablet width.
  const tctx = await context(browser, { width: 768, height: 1024 });
  const tablet = watch(await tctx.newPage(), 'tablet');
  const feedFrames = [];
  tablet.on('websocket', (ws) => {
    if (ws.url().includes('/ws/restaurants/')) ws.on('framereceived', (f) => feedFrames.push({ at: Date.now(), data: String(f.payload) }));
  });
  await tablet.goto(`${ROUTER}/restaurant?id=${restaurantId}`);
  await tablet.locator('#conn').filter({ hasText: 'live' }).waitFor();

  // When each order card first appears on the tablet (same machine clock as this process).
  await tablet.evaluate(() => {
    window.__firstSeen = {};
    new MutationObserver(() => {
      for (const a of document.querySelectorAll('article[data-order]')) window.__firstSeen[a.dataset.order] ??= Date.now();
    }).observe(document.querySelector('#orders'), { childList: true, subtree: true });
  });
  await customer.getByRole('button', { name: 'Get quote' }).click();
  await customer.locator('#quote-total').waitFor();
  const keys = [];
  let lostOrderId = null;
  let answeredAt = 0; // when the server's (then lost) answer to the first request arrived
  await customer.route('**/api/v1/orders', async (route) => {
    const req = route.request();
    if (req.method() !== 'POST') return route.fallback();
    keys.push(req.headers()['idempotency-key']);
    if (keys.length > 1) return route.fallback();
    const answer = await route.fetch();
    answeredAt = Date.now();
    lostOrderId = (await answer.json()).order_id;
    return route.abort('connectionreset');
  });
  const placed = customer.waitForResponse((r) => r.url().endsWith('/api/v1/orders') && r.request().method() === 'POST');
  await customer.getByRole('button', { name: 'Place order' }).click();
  const resp = await placed;
  await customer.unroute('**/api/v1/orders');
  // Placement is when the cell answered the first request: the order existed from then.
  const placedAt = answeredAt || Date.now();
  // 200: the replay of the order the lost answer had placed (201 the first time).
  figures.retry_status = resp.status();
  if (resp.status() !== 200 && resp.status() !== 201) throw new Error(`placing the order: HTTP ${resp.status()} ${await resp.text()}`);
  const idem = resp.request().headers()['idempotency-key'];
  if (!idem) problems.push('the order was placed without an Idempotency-Key');
  const orderId = (await resp.json()).order_id;
  if (keys.length < 2 || keys[0] !== keys[1]) problems.push(`retried order requests carried keys ${JSON.stringify(keys)}`);
  if (lostOrderId !== orderId) problems.push(`the retry placed ${orderId}, the lost answer named ${lostOrderId}`);
  figures.order_attempts = keys.length;
  step(`order ${orderId} placed (the first answer lost, the retry with the same key got the same order)`);

  // The tablet shows it, pushed over its WebSocket.
  const card = tablet.locator(`article[data-order="${orderId}"]`);
  await card.waitFor();
  figures.tablet_shows_order_ms = (await tablet.evaluate((id) => window.__firstSeen[id], orderId)) - placedAt;
  await tablet.locator(`#alert-${orderId}`).waitFor();
  if (!feedFrames.some((f) => f.data.includes(orderId) && f.data.includes('order_update'))) {
    problems.push('the tablet showed the order without an order_update on its WebSocket');
  }
  step(`tablet shows it after ${figures.tablet_shows_order_ms} ms`);

  // The customer's socket drops and comes back with a fresh snapshot (before the restaurant
  // accepts, so the order is still open).
  await customer.waitForFunction(() => Number(document.querySelector('#tracking')?.dataset.snapshots) >= 1);
  await customer.evaluate(() => window.__tracking.drop());
  await customer.waitForFunction(() => Number(document.querySelector('#tracking')?.dataset.snapshots) >= 2);
  await customer.locator('#order-status[data-status="pending"]').waitFor();
  step('the customer socket reconnected with a fresh snapshot');

  // Accept; a second accept is answered 409 and shown.
  await card.locator('button[data-action="accepted"]').click();
  await card.locator(`[data-answer="${orderId}"]`).filter({ hasText: 'Done' }).waitFor();
  await reached(customer, 'confirmed');
  await card.locator('button[data-action="accepted"]').click();
  await card.locator(`[data-answer="${orderId}"]`).filter({ hasText: 'Not changed' }).waitFor();
  step('accepted; a second accept answered 409');

  // Preparing and ready: a fast simulated driver may have picked the order up already, then
  // the tablet shows the 409 the cell answers.
  for (const action of ['preparing', 'ready_for_pickup']) {
    const answer = tablet.locator(`[data-answer="${orderId}"]`);
    const button = tablet.locator(`article[data-order="${orderId}"] button[data-action="${action}"]`);
    if (!(await button.count())) break; // the card left "orders now": picked up or delivered
    await button.click();
    const done = action === 'preparing' ? /Done: Preparing|Not changed/ : /Done: Ready|Not changed/;
    await answer.filter({ hasText: done }).or(tablet.locator('#orders p.muted')).first().waitFor();
  }
  step('ready; waiting for a driver');

  // The driver's marker appears and moves (the page keeps the positions it was sent to).
  await customer.locator('#order-status[data-status="delivered"]').waitFor();
  figures.delivered_after_ms = Date.now() - placedAt;
  const trail = await customer.evaluate(() => window.__driverTrail || []);
  const distinct = new Set(trail.map((p) => p.join(','))).size;
  figures.driver_positions = distinct;
  if (distinct < 2) problems.push(`the driver marker took ${distinct} positions`);
  if (!(await customer.locator('.driver-pin').count())) problems.push('no driver marker on the map');
  await customer.locator('#eta').filter({ hasText: 'Delivered' }).waitFor();
  step(`delivered ${figures.delivered_after_ms} ms after placement`);
  // The tablet's menu toggles: an item sold out and back, the restaurant closed and opened.
  const item = tablet.locator('#items li').first();
  await item.locator('button').filter({ hasText: 'sold out' }).click();
  await tablet.locator('#items li').first().locator('.pill').filter({ hasText: 'sold out' }).waitFor();
  await tablet.locator('#items li').first().locator('button').filter({ hasText: 'available' }).click();
  await tablet.locator('#items li').first().locator('.pill').filter({ hasText: 'available' }).waitFor();
  await tablet.getByRole('button', { name: 'Close now' }).click();
  await tablet.locator('#open-state').filter({ hasText: 'closed' }).waitFor();
  await tablet.getByRole('button', { name: 'Open now' }).click();
  await tablet.locator('#open-state').filter({ hasText: 'open' }).waitFor();
  step('tablet: item availability and opening toggled');
  await cctx.close();
  await tctx.close();
}

async function ops(browser) {
  const ctx = await context(browser, { width: 1280, height: 900 });
  const page = watch(await ctx.newPage(), 'ops');
  await page.goto(`${ROUTER}/ops`);
  await page.getByRole('button', { name: 'Sign in as admin (demo)' }).click();
  const region = await page.waitForFunction((from) => {
    const p = document.querySelector(`#map path[data-cell="${from}"]`);
    return p && p.dataset.region;
  }, FROM).then((h) => h.jsonValue());
  // Live driver positions from the cells' health checks (Berlin runs simulated drivers).
  await page.waitForFunction(() => Number(document.querySelector('#map')?.dataset.drivers) > 0);
  figures.ops_driver_dots = Number(await page.locator('#map').getAttribute('data-drivers'));
  step(`ops: moving region ${region} from cell ${FROM} to cell ${TO}`);
  await page.locator('#move-region').selectOption(region);
  await page.locator('#move-to').selectOption(TO);
  await page.getByRole('button', { name: 'Move region…' }).click();
  await page.locator('#confirm-text').filter({ hasText: region }).waitFor();
  const before = await page.locator(`#map path[data-region="${region}"]`).getAttribute('data-cell');
  if (before !== FROM) problems.push(`the map changed before the confirmation (cell ${before})`);
  const t0 = Date.now();
  await page.getByRole('button', { name: 'Confirm' }).click();
  await page.waitForFunction(([r, to]) => document.querySelector(`#map path[data-region="${r}"]`)?.dataset.cell === to, [region, TO]);
  figures.region_move_on_map_ms = Date.now() - t0;
  step(`the move shows on the map after ${figures.region_move_on_map_ms} ms`);

  // Drain: the cell shows draining, then drained.
  await page.evaluate((from) => {
    window.__drainStates = [];
    const seen = () => {
      const s = document.querySelector(`[data-cell-state="${from}"]`)?.textContent;
      if (s && window.__drainStates[window.__drainStates.length - 1] !== s) window.__drainStates.push(s);
    };
    new MutationObserver(seen).observe(document.querySelector('#cells'), { subtree: true, childList: true, characterData: true });
    seen();
  }, FROM);
  await page.locator('#drain-cell').selectOption(FROM);
  await page.locator('#drain-to').selectOption(TO);
  await page.getByRole('button', { name: 'Drain…' }).click();
  await page.getByRole('button', { name: 'Confirm' }).click();
  await page.locator(`[data-cell-state="${FROM}"]`).filter({ hasText: 'drained' }).waitFor();
  const states = await page.evaluate(() => window.__drainStates);
  figures.drain_states = states;
  const d = states.indexOf('draining');
  if (d < 0 || states.indexOf('drained') < d) problems.push(`drain states seen: ${states.join(' → ')}`);
  if (await page.locator(`#map path[data-cell="${FROM}"]`).count()) problems.push('a drained cell still owns regions on the map');
  const audit = await page.locator('#audit tr').count();
  if (audit < 2) problems.push(`audit log shows ${audit} entries`);
  step(`drain: ${states.join(' → ')}`);
  await ctx.close();
}

main().catch((e) => {
  console.log(`E2E ${JSON.stringify({ ok: false, figures, problems: [...problems, String(e && e.stack || e)] })}`);
  process.exit(1);
});
