// Drives a published Node.js client, unmodified, against the server under test.
//
// stdin:  {"sdk": "rudderstack" | "segment", "host": "http://127.0.0.1:<port>",
//          "write_key": "...", "calls": [{"method": "track", "args": {...}}, ...]}
// stdout: the last line is `REPORT <json>`:
//         {"sdk", "version", "results": [{"ok": true, "messageId"} | {"ok": false, "error"}]}
// The clients log to the console themselves, hence the prefix.
'use strict';

const fs = require('fs');

const plan = JSON.parse(fs.readFileSync(0, 'utf8'));

function version(name) {
  return require(`${name}/package.json`).version;
}

async function rudderstack() {
  const Analytics = require('@rudderstack/rudder-sdk-node');
  // Defaults, gzip on among them; only batching waits for the explicit flush.
  const client = new Analytics(plan.write_key, {
    dataPlaneUrl: plan.host,
    flushAt: 1000,
    flushInterval: 60000,
    retryCount: 0,
  });
  const results = plan.calls.map(
    (call) =>
      new Promise((resolve) => {
        client[call.method](call.args, (err) =>
          resolve(err ? { ok: false, error: String(err.message || err) } : { ok: true, messageId: call.args.messageId }),
        );
      }),
  );
  await client.flush().catch(() => {});
  return { sdk: 'rudderstack', version: version('@rudderstack/rudder-sdk-node'), results: await Promise.all(results) };
}

async function segment() {
  const { Analytics } = require('@segment/analytics-node');
  const client = new Analytics({ writeKey: plan.write_key, host: plan.host, maxRetries: 0, flushInterval: 60000 });
  const results = plan.calls.map(
    (call) =>
      new Promise((resolve) => {
        client[call.method](call.args, (err, ctx) =>
          resolve(err ? { ok: false, error: String((err && err.reason) || err.message || err) } : { ok: true, messageId: ctx.event.messageId }),
        );
      }),
  );
  await client.closeAndFlush({ timeout: 20000 });
  return { sdk: 'segment', version: version('@segment/analytics-node'), results: await Promise.all(results) };
}

const drivers = { rudderstack, segment };
drivers[plan.sdk]()
  .then((report) => {
    process.stdout.write(`\nREPORT ${JSON.stringify(report)}\n`);
    process.exit(0);
  })
  .catch((err) => {
    process.stderr.write(`driver failed: ${err && err.stack}\n`);
    process.exit(1);
  });
