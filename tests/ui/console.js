// The live calls page in headless chromium (puppeteer-core), driven by
// tests/ui/console.sh, which has placed one call with SIPp.
//
// env: UI_URL (http://host:port), ADMIN, RO (tokens), CALLER, CALLEE,
// ACCOUNT_ID, OUT (directory for the screenshot and results.json),
// CHROMIUM.  Prints one line per check ("ok - ..." / "FAIL - ...") and
// writes results.json for the shell.
'use strict';

const puppeteer = require('puppeteer-core');
const fs = require('fs');
const path = require('path');

const env = process.env;
const base = env.UI_URL;
const out = env.OUT;
let failed = 0;
const results = {};

function check(desc, cond, detail) {
  if (cond) console.log('ok - ' + desc);
  else { failed++; console.log('FAIL - ' + desc + (detail ? ' (' + detail + ')' : '')); }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function leftOf(page, caller) {
  return page.$$eval('#calls tbody tr', (rows, who) => {
    for (const tr of rows) {
      if (tr.querySelector('[data-k="caller"]').textContent === who) {
        const s = tr.querySelector('[data-k="left"]').dataset.seconds;
        return s === '' || s === undefined ? null : Number(s);
      }
    }
    return null;
  }, caller);
}

async function login(browser, token) {
  const ctx = await browser.createBrowserContext();
  const page = await ctx.newPage();
  await page.setViewport({ width: 1400, height: 1000 });
  page.on('pageerror', (e) => { results.pageerrors = (results.pageerrors || 0) + 1; console.log('# page error: ' + e.message); });
  page.on('console', (m) => { if (m.type() === 'error') console.log('# console: ' + m.text()); });
  const resp = await page.goto(base + '/ui/', { waitUntil: 'load', timeout: 10000 });
  await page.type('#token', token);
  await page.click('#login button[type="submit"]');
  return { ctx, page, resp };
}

(async () => {
  const browser = await puppeteer.launch({
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    userDataDir: path.join(out, 'chromium-profile'),
    args: ['--headless=new', '--no-sandbox', '--disable-gpu',
           '--disable-dev-shm-usage', '--no-first-run',
           '--disable-background-networking'],
    timeout: 20000,
  });
  try {
    const { page, resp } = await login(browser, env.ADMIN);
    const h = resp.headers();
    check('page: 200 text/html', resp.status() === 200 &&
          /^text\/html/.test(h['content-type'] || ''), resp.status());
    check('page: CSP default-src self, no framing',
          /default-src 'self'/.test(h['content-security-policy'] || '') &&
          /frame-ancestors 'none'/.test(h['content-security-policy'] || ''));
    check('page: nosniff and X-Frame-Options DENY',
          h['x-content-type-options'] === 'nosniff' && h['x-frame-options'] === 'DENY');
    check('page: an ETag', /^"[0-9a-f]{16}"$/.test(h.etag || ''), h.etag);

    // the call placed with SIPp, answered: caller and callee shown
    let row = null;
    try {
      await page.waitForFunction((who, to) => {
        for (const tr of document.querySelectorAll('#calls tbody tr')) {
          if (tr.querySelector('[data-k="caller"]').textContent === who &&
              tr.querySelector('[data-k="callee"]').textContent === to &&
              tr.querySelector('[data-k="left"]').dataset.seconds) return true;
        }
        return false;
      }, { timeout: 15000 }, env.CALLER, env.CALLEE);
      row = true;
    } catch (e) { row = null; }
    check('the call is listed with caller and callee', row !== null);
    const role = await page.$eval('#role', (e) => e.textContent);
    check('the stream says the token is admin', role === 'admin token', role);

    // the countdown moves by itself (client side)
    const l1 = await leftOf(page, env.CALLER);
    await sleep(1600);
    const l2 = await leftOf(page, env.CALLER);
    results.left1 = l1; results.left2 = l2;
    check('the countdown goes down between two reads 1.6 s apart',
          l1 !== null && l2 !== null && l1 - l2 >= 1 && l1 - l2 <= 3,
          l1 + ' then ' + l2);

    // a top-up moves it up
    const before = await leftOf(page, env.CALLER);
    const acct = '#accounts tbody tr[data-id="' + env.ACCOUNT_ID + '"]';
    await page.waitForSelector(acct, { timeout: 5000 });
    await page.type(acct + ' input', '0.50');
    await page.click(acct + ' button');
    let up = null;
    try {
      await page.waitForFunction(async (who, b) => {
        for (const tr of document.querySelectorAll('#calls tbody tr')) {
          if (tr.querySelector('[data-k="caller"]').textContent === who) {
            return Number(tr.querySelector('[data-k="left"]').dataset.seconds) > b + 20;
          }
        }
        return false;
      }, { timeout: 8000, polling: 100 }, env.CALLER, before);
      up = await leftOf(page, env.CALLER);
    } catch (e) { up = await leftOf(page, env.CALLER); }
    results.before_topup = before; results.after_topup = up;
    check('a top-up moves the countdown up (by more than 20 s)',
          before !== null && up !== null && up > before + 20, before + ' then ' + up);
    const bal = await page.$eval(acct + ' [data-k="balance"]', (e) => e.textContent);
    results.balance = bal;

    // the chart and the gateways are drawn
    await sleep(1200);
    const gw = await page.$$eval('#gateways tbody tr', (r) => r.length);
    check('gateways listed', gw >= 1, gw);
    await page.screenshot({ path: path.join(out, 'console.png'), fullPage: true });

    // a readonly token: the hang-up button is disabled
    const ro = await login(browser, env.RO);
    try {
      await ro.page.waitForFunction(() => {
        const b = document.querySelector('#calls tbody tr button.hangup');
        return b && document.querySelector('#role').textContent === 'readonly token';
      }, { timeout: 10000 });
      const dis = await ro.page.$eval('#calls tbody tr button.hangup', (b) => b.disabled);
      check('readonly token: hang-up disabled', dis === true);
    } catch (e) {
      check('readonly token: hang-up disabled', false, e.message);
    }
    await ro.ctx.close();

    // hang up from the page: the call leaves the list
    const btn = await page.$('#calls tbody tr button.hangup');
    check('admin token: hang-up enabled', btn && !(await btn.evaluate((b) => b.disabled)));
    if (btn) await btn.click();
    let gone = false;
    try {
      await page.waitForFunction(() =>
        document.querySelectorAll('#calls tbody tr').length === 0 &&
        document.querySelector('#ended li') !== null, { timeout: 8000, polling: 100 });
      gone = true;
    } catch (e) { gone = false; }
    check('after hang-up the call leaves the list', gone);
    const ended = await page.$eval('#ended', (e) => e.textContent);
    results.ended = ended;
    check('the ended list names the reason admin', /admin/.test(ended), ended);

    // the CDR search finds it
    await page.type('#cdr-form input[name="account"]', String(env.ACCOUNT_ID));
    await page.click('#cdr-form button[type="submit"]');
    let cdr = false;
    try {
      await page.waitForFunction(() => {
        const r = document.querySelector('#cdrs tbody tr');
        return r && /admin/.test(r.textContent);
      }, { timeout: 5000 });
      cdr = true;
    } catch (e) { cdr = false; }
    check('CDR search shows the call, reason admin', cdr);
    await page.screenshot({ path: path.join(out, 'console-after.png'), fullPage: true });
    check('no script error on the page', !results.pageerrors, results.pageerrors);
  } finally {
    await browser.close();
  }
  fs.writeFileSync(path.join(out, 'results.json'), JSON.stringify(results));
  process.exit(failed ? 1 : 0);
})().catch((e) => { console.log('FAIL - browser: ' + e.message); process.exit(1); });
