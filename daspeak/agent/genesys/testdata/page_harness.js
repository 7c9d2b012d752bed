// Runs the widget page's script (argv[2]) in scenarios with a stub DOM and
// prints what it did, one JSON object per scenario, for page_test.go. A
// scenario's "token" is the answer of POST …/oauth/token ({status, body});
// the request is reported as "fetched".
'use strict';
const vm = require('vm');
const fs = require('fs');
const { webcrypto } = require('crypto');
const src = fs.readFileSync(process.argv[2], 'utf8');
const scenarios = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));

async function run(s) {
  const u = new URL(s.href);
  const out = { assigned: null, replaced: null, status: '', mounted: [], scripts: [], storage: {}, fetched: [] };
  const store = Object.assign({}, s.storage || {});
  function el(tag) {
    return {
      tag, attrs: {},
      setAttribute(k, v) { this.attrs[k] = String(v); },
      remove() { out.statusRemoved = true; },
      set textContent(v) { out.status = v; },
    };
  }
  const ctx = {
    location: { origin: u.origin, pathname: u.pathname, search: u.search, hash: u.hash, href: u.href, assign(x) { out.assigned = x; } },
    history: { replaceState(a, b, x) { out.replaced = x; } },
    sessionStorage: { getItem(k) { return k in store ? store[k] : null; }, setItem(k, v) { store[k] = String(v); } },
    document: {
      getElementById(id) { return id === 'vg-status' ? el('div') : { appendChild(c) { out.mounted.push(c); } }; },
      createElement: el,
      head: { appendChild(c) { out.scripts.push(c.src); } },
    },
    crypto: {
      getRandomValues(a) { for (let i = 0; i < a.length; i++) a[i] = i; return a; },
      subtle: webcrypto.subtle,
    },
    fetch: async (url, init) => {
      out.fetched.push({ url, method: init.method, body: init.body, contentType: init.headers['Content-Type'] });
      const t = s.token || { status: 500, body: {} };
      return { ok: t.status >= 200 && t.status < 300, status: t.status, json: async () => t.body };
    },
    btoa: (x) => Buffer.from(x, 'latin1').toString('base64'),
    TextEncoder, Uint8Array, URLSearchParams, URL, JSON, Date, Promise, parseInt, String, Array,
  };
  vm.runInNewContext(src, ctx);
  // Wait until the page did what ends its script (it awaits
  // crypto.subtle and fetch, so no fixed number of ticks is enough):
  // redirected, mounted the widget or said why not (fail); at most 10 s.
  for (const t0 = Date.now(); !(out.assigned || out.mounted.length || out.status) && Date.now() - t0 < 10000;) {
    await new Promise((r) => setTimeout(r, 5));
  }
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  out.storage = store;
  return out;
}

(async () => {
  const results = [];
  for (const s of scenarios) {
    const r = await run(s);
    const m = r.mounted[0];
    results.push({
      assigned: r.assigned, replaced: r.replaced, status: r.status, scripts: r.scripts, storage: r.storage, fetched: r.fetched,
      element: m ? { tag: m.tag, attrs: m.attrs, token: m.utils ? await m.utils.getTemporaryToken() : null } : null,
    });
  }
  process.stdout.write(JSON.stringify(results));
})().catch((e) => { console.error(e); process.exit(1); });
