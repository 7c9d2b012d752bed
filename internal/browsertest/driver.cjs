// Browser driver for Go tests: one headless Chromium driven by
// playwright-core, commanded over stdin/stdout with one JSON object a line.
//
// Request:  {"id":1,"op":"goto","args":{...}}
// Answer:   {"id":1,"ok":true,"value":...} or {"id":1,"ok":false,"error":"..."}
// Unasked:  {"log":"console|pageerror|requestfailed","text":"..."}
//
// Environment: PLAYWRIGHT_CORE (directory of the playwright-core package),
// CHROMIUM (executable), USER_DATA_DIR (a new, empty directory).
'use strict';
const readline = require('node:readline');
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run',
];

function send(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const context = await chromium.launchPersistentContext(process.env.USER_DATA_DIR, {
    executablePath: process.env.CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1024, height: 768 },
  });
  const pages = new Map();
  let nextPage = 1;
  const page = (id) => {
    const p = pages.get(id);
    if (!p) throw new Error(`no page ${id}`);
    return p;
  };

  const ops = {
    async newPage({ width, height }) {
      const p = await context.newPage();
      if (width && height) await p.setViewportSize({ width, height });
      const id = nextPage++;
      pages.set(id, p);
      p.on('console', (m) => send({ log: 'console', page: id, text: `${m.type()}: ${m.text()}` }));
      p.on('pageerror', (e) => send({ log: 'pageerror', page: id, text: String(e && e.stack || e) }));
      p.on('requestfailed', (r) => send({ log: 'requestfailed', page: id, text: `${r.method()} ${r.url()}: ${r.failure() && r.failure().errorText}` }));
      return id;
    },
    async viewport({ page: id, width, height }) {
      await page(id).setViewportSize({ width, height });
    },
    // media emulates CSS media features: {colorScheme, forcedColors,
    // reducedMotion}, as page.emulateMedia takes them.
    async media({ page: id, colorScheme, forcedColors, reducedMotion }) {
      await page(id).emulateMedia({ colorScheme, forcedColors, reducedMotion });
    },
    async goto({ page: id, url }) {
      await page(id).goto(url, { waitUntil: 'load' });
    },
    async click({ page: id, selector, timeout }) {
      await page(id).locator(selector).click({ timeout: timeout || 10000 });
    },
    async focus({ page: id, selector, timeout }) {
      await page(id).locator(selector).focus({ timeout: timeout || 10000 });
    },
    async press({ page: id, key }) {
      await page(id).keyboard.press(key);
    },
    async select({ page: id, selector, value, timeout }) {
      await page(id).locator(selector).selectOption(value, { timeout: timeout || 10000 });
    },
    async count({ page: id, selector }) {
      return page(id).locator(selector).count();
    },
    async visible({ page: id, selector }) {
      return page(id).locator(selector).first().isVisible();
    },
    async text({ page: id, selector, timeout }) {
      return page(id).locator(selector).first().innerText({ timeout: timeout || 10000 });
    },
    // waitText polls the visible text of selector until it matches the
    // regular expression pattern; the answer is the text.
    async waitText({ page: id, selector, pattern, timeout }) {
      const re = new RegExp(pattern);
      const end = Date.now() + (timeout || 10000);
      let last = '';
      for (;;) {
        const loc = page(id).locator(selector).first();
        try {
          if (await loc.isVisible()) {
            last = await loc.innerText({ timeout: 1000 });
            if (re.test(last)) return last;
          } else {
            last = '(not visible)';
          }
        } catch (e) {
          last = '(' + e.message.split('\n')[0] + ')';
        }
        if (Date.now() > end) throw new Error(`${selector}: text ${JSON.stringify(last)} does not match /${pattern}/ after ${timeout || 10000} ms`);
        await sleep(50);
      }
    },
    async waitHidden({ page: id, selector, timeout }) {
      await page(id).locator(selector).first().waitFor({ state: 'hidden', timeout: timeout || 10000 });
    },
    // eval runs an expression (or a function body when it starts with
    // "return") in the page and answers its JSON value.
    async eval({ page: id, js }) {
      return page(id).evaluate(js);
    },
    // focused answers a description of the element that has the focus,
    // looking inside shadow roots.
    async focused({ page: id }) {
      return page(id).evaluate(() => {
        let el = document.activeElement;
        while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
        if (!el) return '';
        return `${el.tagName.toLowerCase()}#${el.id}:${(el.textContent || '').trim()}`;
      });
    },
    async screenshot({ page: id, path, selector }) {
      if (selector) await page(id).locator(selector).first().screenshot({ path });
      else await page(id).screenshot({ path, fullPage: true });
    },
    async closePage({ page: id }) {
      await page(id).close();
      pages.delete(id);
    },
  };

  const rl = readline.createInterface({ input: process.stdin });
  send({ ready: true, version: context.browser() ? context.browser().version() : '' });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let req;
    try {
      req = JSON.parse(line);
    } catch (e) {
      send({ ok: false, error: 'bad request: ' + e.message });
      continue;
    }
    const fn = ops[req.op];
    if (!fn) {
      send({ id: req.id, ok: false, error: `unknown op ${req.op}` });
      continue;
    }
    try {
      const value = await fn(req.args || {});
      send({ id: req.id, ok: true, value: value === undefined ? null : value });
    } catch (e) {
      send({ id: req.id, ok: false, error: String(e && e.message || e) });
    }
  }
  await context.close();
}

main().catch((e) => {
  send({ fatal: String(e && e.stack || e) });
  process.exit(1);
});
