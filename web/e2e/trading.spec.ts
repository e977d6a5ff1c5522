// The trading screen in a real browser against a real `oms serve` (tests/web/test_browser.py
// starts it, opens the account and hands over the keys). One story, step by step, a screenshot
// after each step under test-results/screens/.
import { test, expect, type Page, type APIRequestContext } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

const base = process.env.OMS_WEB_BASE ?? 'http://127.0.0.1:8080';
const account = process.env.OMS_WEB_ACCOUNT ?? 'alice';
const traderKey = process.env.OMS_WEB_TRADER_KEY ?? '';
const riskKey = process.env.OMS_WEB_RISK_KEY ?? traderKey;
const screens = path.resolve('test-results', 'screens');
const SYMBOL = 'BTC-USD';

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(screens, { recursive: true });
  // caret 'initial': hiding the caret injects a <style>, which the page's CSP (rightly) refuses
  await page.screenshot({ path: path.join(screens, `${name}.png`), fullPage: true, caret: 'initial' });
}

async function logIn(page: Page, key: string): Promise<void> {
  await page.getByLabel('API key').fill(key);
  await page.getByLabel('Account', { exact: true }).fill(account);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByTestId('account-id')).toHaveText(account);
}

async function logOut(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page.getByLabel('API key')).toBeVisible();
}

/** A limit price 3% under the last price, on the instrument's tick (inside the price collar). */
async function restingBuyPrice(request: APIRequestContext): Promise<string> {
  const headers = { Authorization: `Bearer ${traderKey}` };
  const instruments = (await (await request.get(`${base}/api/instruments`, { headers })).json()) as {
    symbol: string;
    tick_size: string;
  }[];
  const tick = instruments.find((i) => i.symbol === SYMBOL)!.tick_size;
  const price = (await (await request.get(`${base}/api/market-data/prices/${SYMBOL}`, { headers })).json()) as {
    last_price: string;
  };
  const decimals = (tick.split('.')[1] ?? '').length;
  const ticks = Math.floor((Number(price.last_price) * 0.97) / Number(tick));
  return (ticks * Number(tick)).toFixed(decimals); // display-only arithmetic, test side
}

async function placeOrder(page: Page, order: { type: string; side?: 'Buy' | 'Sell'; quantity: string; price?: string }) {
  const form = page.locator('section.trade-form');
  await form.getByRole('radio', { name: order.side ?? 'Buy' }).click();
  await form.getByLabel('Symbol').selectOption(SYMBOL);
  await form.getByLabel('Type').selectOption(order.type);
  await form.getByLabel(/^Quantity/).fill(order.quantity);
  if (order.price !== undefined) await form.getByLabel(/^Limit price/).fill(order.price);
  await form.getByRole('button', { name: new RegExp(`^${order.side ?? 'Buy'} ${SYMBOL}`) }).click();
}

test('a trader logs in, trades, is halted by risk, and stays logged in on reload', async ({ page, request }) => {
  // Nothing may leave 127.0.0.1 (the host resolver rule refuses names; this refuses the rest,
  // and the app must not even try).
  const outside: string[] = [];
  await page.context().route(/^(?!https?:\/\/127\.0\.0\.1[:/]|wss?:\/\/127\.0\.0\.1[:/]|data:)/, (route) => {
    outside.push(route.request().url());
    return route.abort();
  });

  // The page must run under oms serve's Content-Security-Policy, without an uncaught error.
  const faults: string[] = [];
  page.on('pageerror', (error) => faults.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content Security Policy/i.test(message.text()))
      faults.push(`${message.text()} at ${message.location().url}:${message.location().lineNumber}`);
  });

  await test.step('log in with an API key', async () => {
    await page.goto('/');
    await expect(page.getByRole('heading', { name: 'oms — log in' })).toBeVisible();
    await shot(page, '01-login');
    await logIn(page, traderKey);
    await expect(page.getByTestId('last-price')).not.toHaveText('—');
    await shot(page, '02-desk');
  });

  await test.step('no serious accessibility violations (axe-core), dark and light', async () => {
    for (const theme of ['dark', 'light']) {
      const results = await new AxeBuilder({ page }).analyze();
      const serious = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      expect(serious.map((v) => `${theme}: ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)).toEqual([]);
      await page.getByRole('button', { name: /^Switch to/ }).click();
    }
    await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  });

  await test.step("a trader's screen has no kill switch", async () => {
    await expect(page.locator('section.role, .role')).toHaveText('trader key');
    await expect(page.locator('section.kill-switch')).toHaveCount(0);
  });

  const openOrders = page.locator('section.open-orders');
  const history = page.locator('section.history');
  let limitId = '';

  await test.step('a limit order is ACCEPTED in open orders within 2 s', async () => {
    await placeOrder(page, { type: 'LIMIT', quantity: '0.01', price: await restingBuyPrice(request) });
    const row = openOrders.locator('tbody tr[data-order-id]').first();
    await expect(row.locator('.status')).toHaveText('ACCEPTED', { timeout: 2000 });
    limitId = (await row.getAttribute('data-order-id')) ?? '';
    expect(limitId).not.toBe('');
    await shot(page, '03-limit-accepted');
  });

  // Amend is offered once the server has PATCH /api/orders/{id} (the order-types work).
  const document = (await (await request.get(`${base}/api/openapi.json`)).json()) as { paths: Record<string, object> };
  if ('patch' in (document.paths['/api/orders/{order_id}'] ?? {})) {
    await test.step('amend its quantity: the open order shows the new one', async () => {
      const row = openOrders.locator(`tr[data-order-id="${limitId}"]`);
      await row.getByRole('button', { name: /^Amend/ }).click();
      await row.getByLabel('Quantity').fill('0.02');
      await row.getByRole('button', { name: 'Send amend' }).click();
      await expect(row.locator('td.num').first()).toHaveText('0.02');
    });
  }

  await test.step('cancel it: CANCELLED', async () => {
    await openOrders.locator(`tr[data-order-id="${limitId}"]`).getByRole('button', { name: /^Cancel/ }).click();
    await expect(openOrders.locator(`tr[data-order-id="${limitId}"]`)).toHaveCount(0);
    await expect(history.locator(`tr[data-order-id="${limitId}"] .status`)).toHaveText('CANCELLED');
    await shot(page, '04-cancelled');
  });

  await test.step('a market order SETTLES and the position and balances change', async () => {
    const btcBefore = await page.getByTestId('balance-BTC').textContent();
    const usdBefore = await page.getByTestId('balance-USD').textContent();
    await placeOrder(page, { type: 'MARKET', quantity: '0.01' });
    await expect(page.getByTestId('last-order-status')).toHaveText('SETTLED');
    await expect(page.getByTestId('balance-BTC')).not.toHaveText(btcBefore ?? '');
    await expect(page.getByTestId('balance-USD')).not.toHaveText(usdBefore ?? '');
    await expect(page.getByTestId(`position-${SYMBOL}`)).toHaveText('0.01');
    await shot(page, '05-market-settled');
    // the README's picture (`make web-screenshot` copies it to docs/web-app.png)
    await page.screenshot({ path: path.join(screens, 'web-app.png'), caret: 'initial' });
  });

  await test.step("an invalid quantity shows the server's error next to the field", async () => {
    const quantity = page.locator('section.trade-form').getByLabel(/^Quantity/);
    await placeOrder(page, { type: 'LIMIT', quantity: '-1', price: '100' });
    const expected = (await (
      await request.post(`${base}/api/orders`, {
        headers: { Authorization: `Bearer ${traderKey}` },
        data: { account_id: account, symbol: SYMBOL, side: 'BUY', type: 'LIMIT', quantity: '-1', price: '100', time_in_force: 'GTC' },
      })
    ).json()) as { errors: { field: string; message: string }[] };
    const message = expected.errors.find((e) => e.field === 'quantity')!.message;
    const error = page.locator('.field-error[data-field="quantity"]');
    await expect(error).toHaveText(message);
    await expect(quantity).toHaveAttribute('aria-invalid', 'true');
    await expect(quantity).toHaveAttribute('aria-describedby', (await error.getAttribute('id'))!);
    await shot(page, '06-invalid-quantity');
  });

  await test.step('reload: still logged in for the session', async () => {
    await page.reload();
    await expect(page.getByTestId('account-id')).toHaveText(account);
    await expect(page.getByLabel('API key')).toHaveCount(0);
    expect(page.url()).not.toContain(traderKey);
    await shot(page, '07-reloaded');
  });

  await test.step('a risk key halts the account; the trader is refused', async () => {
    await logOut(page);
    await logIn(page, riskKey);
    await page.locator('section.kill-switch').getByRole('button', { name: 'Halt' }).click();
    await expect(page.getByTestId('trading-state')).toHaveText('HALTED');
    await shot(page, '08-halted-by-risk');
    await logOut(page);
    await logIn(page, traderKey);
    await placeOrder(page, { type: 'LIMIT', quantity: '0.01', price: await restingBuyPrice(request) });
    await expect(page.getByTestId('last-order-status')).toHaveText('REJECTED');
    await expect(page.locator('section.trade-form .reason')).toHaveText(/KILL_SWITCH_ACCOUNT/);
    await shot(page, '09-refused-when-halted');
  });

  expect(outside).toEqual([]);
  expect(faults).toEqual([]);
});
