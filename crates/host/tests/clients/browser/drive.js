// Drives Segment's analytics.js (@segment/analytics-next, unmodified) in headless Chromium
// against the server under test, from a page of another origin (another port).
//
// stdin:  {"ingest": "http://127.0.0.1:<port>", "write_key": "...", "chromium": "/usr/bin/chromium",
//          "delivery": "standard" | "batching"}
// stdout: the last line is `REPORT <json>`: {"version", "browser", "page_url",
//         "results": [{"method", "messageId", "delivered"}],
//         "posts": [{"path", "status", "messageIds", "body"}] (the events' POSTs),
//         "metrics": [{"status", "invokes"}] (its usage counters' POSTs, to /v1/m),
//         "console": [...], "outside": [...], "failed": [...]}
//
// Nothing may leave 127.0.0.1: Chromium resolves no other host, every other request is
// aborted and listed in "outside", and analytics.js gets its settings from the page
// (cdnSettings) instead of Segment's CDN.
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');
const puppeteer = require('puppeteer-core');

const plan = JSON.parse(fs.readFileSync(0, 'utf8'));
const UMD = path.join(path.dirname(require.resolve('@segment/analytics-next/package.json')), 'dist/umd');

// Serves the page and the analytics.js bundles on another port than the server under test.
function staticServer() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    let file = null;
    if (url.pathname === '/pricing') {
      file = path.join(__dirname, 'page.html');
    } else if (url.pathname.startsWith('/analytics-next/')) {
      file = path.join(UMD, path.basename(url.pathname));
    }
    if (!file || !fs.existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    const type = file.endsWith('.js') ? 'text/javascript' : 'text/html; charset=utf-8';
    res.writeHead(200, { 'Content-Type': type }).end(fs.readFileSync(file));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// Runs in the page: loads analytics.js with the settings a site using this service has,
// then identifies, tracks and pages. Returns each call's messageId once analytics.js is
// done with it (standard delivery: once its POST was answered).
async function inPage(cfg) {
  const { AnalyticsBrowser } = window.AnalyticsNext;
  // Where this service is, as Segment documents for a proxy: analytics.js sends events
  // there, and its own usage counters too (to `/v1/m`).
  const segmentIo = { apiHost: cfg.apiHost, protocol: 'http' };
  const settings = {
    writeKey: cfg.writeKey,
    // Given here, so analytics.js does not fetch them from Segment's CDN.
    cdnSettings: {
      integrations: { 'Segment.io': { apiKey: cfg.writeKey, ...segmentIo } },
      // The counters go every 30 s by default: soon here, for the test to see them.
      metrics: { flushTimer: cfg.delivery === 'standard' ? 100 : 30000 },
    },
  };
  const options = { integrations: { 'Segment.io': segmentIo } };
  if (cfg.delivery === 'batching') {
    // Nothing is sent until the page is hidden.
    segmentIo.deliveryStrategy = { strategy: 'batching', config: { size: 100, timeout: 600000 } };
  }
  const [analytics] = await AnalyticsBrowser.load(settings, options);
  // One after the other, so that the server has the identify's email before the others.
  const calls = [
    ['identify', () => analytics.identify('u-web', { email: 'ada@example.com', plan: 'pro' })],
    ['track', () => analytics.track('Plan Chosen', { plan: 'pro' })],
    ['page', () => analytics.page('Pricing')],
  ];
  const results = [];
  for (const [method, call] of calls) {
    const ctx = await call();
    results.push({ method, messageId: ctx.event.messageId, delivered: !ctx.failedDelivery() });
  }
  return { results, page_url: location.href };
}

async function main() {
  const site = await staticServer();
  const origin = `http://127.0.0.1:${site.address().port}`;
  const ingest = new URL(plan.ingest);
  const browser = await puppeteer.launch({
    executablePath: plan.chromium,
    headless: true,
    args: [
      // CI runs as root, where Chromium's sandbox cannot start.
      '--no-sandbox',
      '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
    ],
  });
  const report = {
    version: require('@segment/analytics-next/package.json').version,
    browser: await browser.version(),
    console: [],
    outside: [],
    failed: [],
    posts: [],
    metrics: [],
  };
  try {
    const page = await browser.newPage();
    await page.setRequestInterception(true);
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (url.protocol === 'data:' || url.hostname === '127.0.0.1') {
        request.continue();
      } else {
        report.outside.push(request.url());
        request.abort();
      }
    });
    page.on('console', (msg) => report.console.push(`${msg.type()}: ${msg.text()}`));
    page.on('pageerror', (err) => report.console.push(`pageerror: ${err.message}`));
    page.on('requestfailed', (request) =>
      report.failed.push(`${request.method()} ${request.url()}: ${request.failure().errorText}`),
    );
    const toIngest = (response) =>
      response.request().method() === 'POST' && new URL(response.url()).port === ingest.port;
    const isMetrics = (response) => toIngest(response) && new URL(response.url()).pathname === '/v1/m';
    page.on('response', (response) => {
      if (!toIngest(response)) return;
      if (isMetrics(response)) {
        const series = JSON.parse(response.request().postData()).series;
        report.metrics.push({ status: response.status(), invokes: series.filter((s) => s.metric === 'analytics_js.invoke').length });
        return;
      }
      const body = JSON.parse(response.request().postData() || '{}');
      const events = body.batch || [body];
      report.posts.push({
        path: new URL(response.url()).pathname,
        status: response.status(),
        messageIds: events.map((e) => e.messageId),
        body,
      });
    });

    await page.goto(`${origin}/pricing?plan=pro`, { waitUntil: 'load' });
    const cfg = { writeKey: plan.write_key, apiHost: `127.0.0.1:${ingest.port}/v1`, delivery: plan.delivery };
    if (plan.delivery === 'standard') {
      // Once the counters of all three calls are sent, analytics.js sends nothing more.
      const invokes = () => report.metrics.reduce((sum, m) => sum + m.invokes, 0);
      const counted = page.waitForResponse((r) => isMetrics(r) && invokes() >= 3);
      Object.assign(report, await page.evaluate(inPage, cfg));
      await counted;
    } else {
      Object.assign(report, await page.evaluate(inPage, cfg));
      // Hiding the page (another tab to the front) flushes the batch, with keepalive, as
      // when a visitor leaves. (Leaving for real sends the same request, but from a
      // document puppeteer no longer watches, nor intercepts.)
      const flushed = page.waitForResponse(toIngest);
      await (await browser.newPage()).bringToFront();
      await flushed;
    }
  } finally {
    await browser.close();
    site.close();
  }
  return report;
}

main()
  .then((report) => {
    process.stdout.write(`\nREPORT ${JSON.stringify(report)}\n`);
    process.exit(0);
  })
  .catch((err) => {
    process.stderr.write(`driver failed: ${err && err.stack}\n`);
    process.exit(1);
  });
