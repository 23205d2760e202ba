// Takes the README's screenshots against a running city (ROUTER_URL): the customer page at
// 1280 px (an order on its way, the driver on the map) and at 390 px (phone), the restaurant
// tablet at 1280 and 768 px with a new order, the operations console at 1280 px.
// Run through web/screenshots.sh.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const ROUTER = process.env.ROUTER_URL;
const OUT = process.env.OUT_DIR || new URL('../screenshots/', import.meta.url).pathname;
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--hide-scrollbars'];
mkdirSync(OUT, { recursive: true });

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ARGS });
async function page(viewport, extra = {}) {
  const ctx = await browser.newContext({ viewport, deviceScaleFactor: 1, ...extra });
  await ctx.route('**/*', (r) => (/^https?:\/\/(127\.0\.0\.1|localhost)[:/]/.test(r.request().url()) ? r.continue() : r.abort()));
  ctx.setDefaultTimeout(60000);
  return ctx.newPage();
}
const shot = (p, name, fullPage = false) => p.screenshot({ path: `${OUT}${name}.png`, fullPage });

try {
  const customer = await page({ width: 1280, height: 1000 });
  await customer.goto(`${ROUTER}/`);
  await customer.getByRole('button', { name: 'Sign in (demo)' }).click();
  await customer.locator('#who').filter({ hasText: 'Signed in' }).waitFor();
  await customer.getByRole('button', { name: 'Search', exact: true }).click();
  await customer.locator('#results button[data-restaurant]').first().waitFor();
  let rid = null;
  for (const id of await customer.locator('#results button[data-restaurant]').evaluateAll((b) => b.map((x) => x.dataset.restaurant))) {
    await customer.locator(`#results button[data-restaurant="${id}"]`).click();
    await customer.waitForFunction((r) => document.querySelector('#menu p')?.textContent.includes(r), id);
    const add = customer.locator('#menu form button[type=submit]:not([disabled])');
    if (await add.count()) { await add.first().click(); if (await add.count() > 1) await add.nth(1).click(); rid = id; break; }
  }
  await customer.getByRole('button', { name: 'Get quote' }).click();
  await customer.locator('#quote-total').waitFor();

  for (const width of [1280, 768]) {
    const t = await page({ width, height: 1000 });
    await t.goto(`${ROUTER}/restaurant?id=${rid}`);
    await t.locator('#conn').filter({ hasText: 'live' }).waitFor();
    if (width === 1280) {
      await customer.getByRole('button', { name: 'Place order' }).click();
      await customer.locator('#order-status').waitFor();
    }
    const card = t.locator('article.order-card').first();
    await card.waitFor();
    if (width === 1280) await t.locator('#alert p').waitFor();
    await t.waitForTimeout(300);
    await shot(t, width === 1280 ? 'restaurant' : 'restaurant-768');
    if (width === 768) {
      await card.locator('button[data-action="accepted"]').click();
      await t.locator('[data-answer]').filter({ hasText: 'Done' }).first().waitFor();
    }
    await t.context().close();
  }
  // The order on its way: wait for a few driver pings.
  await customer.waitForFunction(() => Number(document.querySelector('#tracking')?.dataset.driverMoves || 0) >= 3);
  await customer.evaluate(() => window.scrollTo(0, 0));
  await customer.waitForTimeout(400);
  await shot(customer, 'customer');

  const phone = await page({ width: 390, height: 844 }, { isMobile: true, hasTouch: true });
  await phone.goto(`${ROUTER}/`);
  await phone.getByRole('button', { name: 'Sign in (demo)' }).click();
  await phone.locator('#who').filter({ hasText: 'Signed in' }).waitFor();
  await phone.getByRole('button', { name: 'Search', exact: true }).click();
  await phone.locator(`#results button[data-restaurant="${rid}"]`).click();
  await phone.locator('#menu h3').waitFor();
  await phone.locator('#menu form button[type=submit]:not([disabled])').first().click();
  await phone.locator('#near-h').evaluate((e) => e.scrollIntoView());
  await phone.waitForTimeout(300);
  await shot(phone, 'customer-phone');

  const ops = await page({ width: 1280, height: 900 });
  await ops.goto(`${ROUTER}/ops`);
  await ops.getByRole('button', { name: 'Sign in as admin (demo)' }).click();
  await ops.locator('#map path[data-region]').first().waitFor();
  await ops.locator('#cells tr').nth(1).waitFor();
  // One Berlin region moved to Munich through the console, so the map shows both colours.
  const region = await ops.locator('#map path[data-cell="1"]').last().getAttribute('data-region');
  await ops.locator('#move-region').selectOption(region);
  await ops.locator('#move-to').selectOption('2');
  await ops.getByRole('button', { name: 'Move region…' }).click();
  await ops.getByRole('button', { name: 'Confirm' }).click();
  await ops.waitForFunction((r) => document.querySelector(`#map path[data-region="${r}"]`)?.dataset.cell === '2', region);
  await ops.getByRole('button', { name: 'Show cell 1 berlin on the map' }).click();
  await ops.waitForFunction(() => Number(document.querySelector('#map')?.dataset.drivers) > 0);
  await ops.waitForTimeout(800);
  await shot(ops, 'ops');
  console.error(`screenshots in ${OUT}`);
} finally {
  await browser.close();
}
