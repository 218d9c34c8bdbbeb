// The dashboard as a person sees it, in a real browser: Debian's Chromium driven by
// playwright-core (resolved from the directory in ECOMFLOW_TEST_NODE_MODULES, which
// scripts/test-tools.sh fills).
//
//   node dashboard.mjs URL SCREENSHOT.png [TIMEOUT_SECONDS]
//
// Loads URL, waits until the page says the run finished (body[data-state="finished"]) and
// refreshed at least twice after that, reads what the page shows (the graph's nodes, every
// chart's bars and table rows), takes a full-page screenshot and prints one JSON object on
// stdout. It judges nothing: a page that never finishes, errors in the console or failed
// requests are reported in that object, for the Rust test (tests/dashboard.rs) to judge. It
// exits non-zero only when it cannot do its job (no playwright-core, no browser, a crash).

import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const [url, screenshot, timeoutArg] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error('usage: node dashboard.mjs URL SCREENSHOT.png [TIMEOUT_SECONDS]');
  process.exit(2);
}
const modules = process.env.ECOMFLOW_TEST_NODE_MODULES;
if (!modules) {
  console.error('ECOMFLOW_TEST_NODE_MODULES is not set: run scripts/test-tools.sh and set it to '
    + '$PWD/target/test-tools/node/node_modules (scripts/test.sh does)');
  process.exit(2);
}
const { chromium } = createRequire(import.meta.url)(join(resolve(modules), 'playwright-core'));

const timeoutMs = Number(timeoutArg || 60) * 1000;
const started = Date.now();
const remaining = () => Math.max(1000, timeoutMs - (Date.now() - started));

// The flags this machine needs: no GPU, and no network but the loopback one, so nothing
// that phones home (QUIC, component updates, sync, first-run pages) may be tried.
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const report = {
  url,
  screenshot: resolve(screenshot),
  browser: browser.version(),
  loaded: false,
  finished: false,
  refreshed_twice_after: false,
  wait_error: null,
  state: null,
  refreshes: null,
  refreshes_when_finished: null,
  console_errors: [],
  page_errors: [],
  failed_requests: [],
  error_responses: [],
  graph_nodes: [],
  charts: [],
};
try {
  // A new context is a fresh profile: Playwright's launch() starts the browser on a new,
  // temporary user-data dir of its own and removes it on close.
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() === 'error') {
      const at = msg.location();
      report.console_errors.push({ text: msg.text(), at: `${at.url}:${at.lineNumber}` });
    }
  });
  page.on('pageerror', (error) => report.page_errors.push(String(error.stack || error)));
  page.on('requestfailed', (request) => report.failed_requests.push({
    url: request.url(),
    method: request.method(),
    error: request.failure()?.errorText ?? null,
  }));
  page.on('response', (response) => {
    if (response.status() >= 400) {
      report.error_responses.push({ url: response.url(), status: response.status() });
    }
  });

  try {
    await page.goto(url, { waitUntil: 'load', timeout: remaining() });
    report.loaded = true;
    await page.waitForFunction(() => document.body?.dataset.state === 'finished', null,
      { timeout: remaining(), polling: 100 });
    report.finished = true;
    const refreshes = () => Number(document.body.dataset.refreshes);
    report.refreshes_when_finished = await page.evaluate(refreshes);
    await page.waitForFunction((n) => Number(document.body.dataset.refreshes) >= n + 2,
      report.refreshes_when_finished, { timeout: remaining(), polling: 100 });
    report.refreshed_twice_after = true;
  } catch (error) {
    // Not a crash: what the page failed to do is the finding.
    report.wait_error = String(error.message || error).split('\n')[0];
  }

  // What the page shows now.
  Object.assign(report, await page.evaluate(() => ({
    state: document.body?.dataset.state ?? null,
    refreshes: document.body?.dataset.refreshes ?? null,
    graph_nodes: [...document.querySelectorAll('svg#graph g.node')]
      .map((node) => node.dataset.component ?? null),
    charts: [...document.querySelectorAll('section.chart')].map((section) => ({
      component: section.dataset.component ?? null,
      bars: [...section.querySelectorAll('rect.bar')].map((bar) => ({
        x: bar.dataset.x ?? null,
        y: bar.dataset.y ?? null,
        series: bar.dataset.series ?? null,
      })),
      rows: section.querySelectorAll('tr.row').length,
    })),
  })));
  mkdirSync(dirname(report.screenshot), { recursive: true });
  await page.screenshot({ path: report.screenshot, fullPage: true });
  // Copies: the page's polling goes on until the browser closes.
  const out = JSON.stringify(report, null, 1);
  await context.close();
  process.stdout.write(`${out}\n`);
} finally {
  await browser.close();
}
