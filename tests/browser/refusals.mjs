// Refused WebSocket upgrades as two standard clients report them
// (PROTOCOL.md 7.2: a whole HTTP/1.1 response reported as its status):
// Node's `ws` ('unexpected-response' with statusCode) and Debian's
// Chromium (its console: "Unexpected response code: NNN").
//
//   node refusals.mjs CASES_JSON
//
// CASES_JSON: {"ws": [{"name", "url", "headers"?, "protocolVersion"?}],
//              "browser": [{"name", "page", "url", "cookies"?}]}
// `page` is the http:// page the browser opens first (its origin is the
// upgrade's Origin); `cookies` are set on that page before the attempt.
// Prints one JSON object on stdout: {name: status} (101 when the upgrade
// went through, a string when the client saw no status).
// Every wait has a deadline; none is a fixed sleep.

import { chromium } from "playwright-core";
import WebSocket from "ws";

const STEP_MS = 15000;
const cases = JSON.parse(process.argv[2] || "null");
if (!cases) {
  console.error("usage: node refusals.mjs CASES_JSON");
  process.exit(2);
}
const log = (...a) => console.error("[refusals]", ...a);

function viaWs(c) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve("timeout"), STEP_MS);
    const done = (v) => {
      clearTimeout(timer);
      resolve(v);
    };
    const ws = new WebSocket(c.url, {
      headers: c.headers || {},
      protocolVersion: c.protocolVersion || 13,
    });
    ws.on("unexpected-response", (req, res) => {
      done(res.statusCode);
      req.destroy();
    });
    ws.on("open", () => {
      done(101);
      ws.close();
    });
    ws.on("error", (e) => done(`error: ${e.message}`));
  });
}

async function viaBrowser(browser, c) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  const seen = [];
  page.on("console", (msg) => {
    log(`${c.name} console.${msg.type()}: ${msg.text()}`);
    seen.push(msg.text());
  });
  try {
    await page.goto(c.page);
    for (const [k, v] of Object.entries(c.cookies || {}))
      await page.evaluate(([k, v]) => { document.cookie = `${k}=${v}; path=/`; }, [k, v]);
    const outcome = await page.evaluate((url) => new Promise((resolve) => {
      const ws = new WebSocket(url);
      ws.onopen = () => { ws.close(); resolve("open"); };
      ws.onclose = (e) => resolve(`close ${e.code}`);
    }), c.url);
    if (outcome === "open")
      return 101;
    // the console line may trail the close event a little
    const deadline = Date.now() + STEP_MS;
    while (Date.now() < deadline) {
      for (const t of seen) {
        const m = /Unexpected response code: (\d+)/.exec(t);
        if (m)
          return Number(m[1]);
      }
      await page.waitForEvent("console", { timeout: deadline - Date.now() })
        .catch(() => {});
    }
    return `no status (${outcome}): ${seen.join(" | ")}`;
  } finally {
    await context.close();
  }
}

const out = {};
for (const c of cases.ws || []) {
  out[c.name] = await viaWs(c);
  log(`ws ${c.name}: ${out[c.name]}`);
}
if ((cases.browser || []).length) {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu"],
  });
  try {
    for (const c of cases.browser) {
      out[c.name] = await viaBrowser(browser, c);
      log(`browser ${c.name}: ${out[c.name]}`);
    }
  } finally {
    await browser.close();
  }
}
process.stdout.write(JSON.stringify(out) + "\n");
