// The demo chat (web/) in Debian's Chromium: two pages, each on its own
// node of a two-node mesh, chat on a password-protected channel; node B
// is restarted and the chat goes on without a reload.
//
//   node demo.mjs URL_A URL_B SHOT_DIR
//
// URL_A, URL_B: http://127.0.0.1:PORT/ of nodes A and B. Run by
// tests/integration/test_browser_demo.py, which talks to this script in
// lines, in this order:
//   stdout READY-FOR-RESTART  the pages chat; node B may be stopped
//   stdin  STOPPED            node B is gone
//   stdout OUTAGE-SEEN        page B saw a reconnect attempt fail
//   stdin  RESTARTED          node B is back on its port, linked to A
//   stdout PASS               the chat went on, page B never reloaded
// Progress and failures go to stderr. Every wait has a deadline; none is
// a fixed sleep.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const [urlA, urlB, shotDir] = process.argv.slice(2);
if (!urlA || !urlB || !shotDir) {
  console.error("usage: node demo.mjs URL_A URL_B SHOT_DIR");
  process.exit(2);
}

const STEP_MS = 20000; // one expected event
const RESTART_MS = 60000; // the test stopping and restarting node B
const CHANNEL = "demo-room";
const PASSWORD = "s3cret";

const log = (...a) => console.error("[demo]", ...a);
const say = (line) => process.stdout.write(`${line}\n`);

mkdirSync(shotDir, { recursive: true });

// ---------------------------------------------------------------- stdin

const stdinLines = [];
let stdinWaiter = null;
createInterface({ input: process.stdin }).on("line", (line) => {
  stdinLines.push(line.trim());
  if (stdinWaiter) stdinWaiter();
});

function expectLine(want, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stdinWaiter = null;
      reject(new Error(`no "${want}" on stdin within ${timeoutMs} ms`));
    }, timeoutMs);
    const check = () => {
      const i = stdinLines.indexOf(want);
      if (i < 0) return;
      stdinLines.splice(i, 1);
      clearTimeout(timer);
      stdinWaiter = null;
      resolve();
    };
    stdinWaiter = check;
    check();
  });
}

// ------------------------------------------------------------- the mesh

// Polls until check() returns a truthy value; fails with the last state.
async function eventually(check, what, timeoutMs = STEP_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last && last.done !== false) return last;
    } catch (err) {
      last = err.message;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, 100)); // poll period, not a synchronisation
  }
}

async function holdersOf(baseUrl) {
  const r = await fetch(new URL("/api/node", baseUrl), { cache: "no-store" });
  const view = await r.json();
  const ch = view.channels.find((c) => c.name === CHANNEL);
  return ch ? [...ch.holders].sort() : null;
}

// Both nodes list the channel held by every node in `names`: only then
// does a message sent on one node reach the other (interest routing).
async function waitHolders(names) {
  const want = [...names].sort().join(",");
  await eventually(async () => {
    const a = await holdersOf(urlA);
    const b = await holdersOf(urlB);
    const done = a?.join(",") === want && b?.join(",") === want;
    return { done, A: a, B: b };
  }, `both nodes to see ${CHANNEL} held by ${want}`);
}

// ------------------------------------------------------------- the pages

const problems = [];

async function openPage(browser, label, url) {
  const context = await browser.newContext({ viewport: { width: 960, height: 680 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on("pageerror", (err) => problems.push(`page ${label}: uncaught ${err.message}`));
  page.on("response", (res) => {
    if (res.status() >= 400) problems.push(`page ${label}: HTTP ${res.status()} for ${res.url()}`);
  });
  page.on("console", (msg) => log(`page ${label} console.${msg.type()}: ${msg.text()}`));
  page.label = label;
  await page.goto(url);
  await waitState(page, "open");
  return page;
}

function waitState(page, state, timeoutMs = STEP_MS) {
  return page.locator(`#status[data-state="${state}"]`).waitFor({ timeout: timeoutMs });
}

async function shot(page, name) {
  const path = join(shotDir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  log(`screenshot ${path}`);
}

async function joinChannel(page, name, password) {
  await page.fill("#name", name);
  await page.fill("#channel", CHANNEL);
  await page.fill("#password", password);
  await page.click("#join");
}

async function sendText(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
  // shown at once as ours, then marked sent when the node answers ok
  await page.locator('#messages li.msg.mine[data-status="sent"]', { hasText: text }).waitFor();
}

async function expectMessage(page, from, text) {
  await page.locator(`#messages li.msg:not(.mine)[data-from="${from}"]`, { hasText: text }).waitFor();
}

// Sends both ways and checks each side sees the other's message.
async function chat(a, b, tag) {
  const ta = `Hello Bob, Alice here (${tag})`;
  await sendText(a, ta);
  await expectMessage(b, "Alice", ta);
  const tb = `Hi Alice! Bob on node B (${tag})`;
  await sendText(b, tb);
  await expectMessage(a, "Bob", tb);
  log(`chat both ways: ${tag}`);
}

// ------------------------------------------------------------------ run

async function run(browser) {
  const a = await openPage(browser, "A", urlA);
  await a.locator("#node", { hasText: "node A" }).waitFor();
  await joinChannel(a, "Alice", PASSWORD);
  await a.locator("#room", { hasText: `#${CHANNEL}` }).waitFor();
  // B must know the channel (and its password hash) before anyone joins
  // there, or B would create a second one
  await waitHolders(["A"]);

  const b = await openPage(browser, "B", urlB);
  await b.locator("#node", { hasText: "node B" }).waitFor();
  await joinChannel(b, "Bob", "not-the-password");
  await b.locator("#error", { hasText: "invalid password" }).waitFor();
  await shot(b, "demo-B-invalid-password");
  await joinChannel(b, "Bob", PASSWORD);
  await b.locator("#room", { hasText: `#${CHANNEL}` }).waitFor();
  await b.locator("#error").waitFor({ state: "hidden" });
  await waitHolders(["A", "B"]);

  await chat(a, b, "before the restart");
  await shot(a, "demo-A-chat");
  await shot(b, "demo-B-chat");

  // survives the restart only if the page is never reloaded
  await b.evaluate(() => {
    window.demoMarker = "same page";
  });
  const statesBefore = await b.evaluate(() => window.wsrelayChat.states.length);

  // the library's reconnect attempts, to see one fail while B is down
  await b.evaluate(() => {
    window.demoAttempts = [];
    window.wsrelayChat.relay.on("reconnecting", (e) => window.demoAttempts.push(e.attempt));
  });

  say("READY-FOR-RESTART");
  await expectLine("STOPPED", RESTART_MS);
  await b.waitForFunction(() => window.demoAttempts.some((n) => n >= 2));
  await waitState(b, "reconnecting");
  await shot(b, "demo-B-reconnecting");
  say("OUTAGE-SEEN");
  await expectLine("RESTARTED", RESTART_MS);

  await waitState(b, "open", RESTART_MS);
  const after = await b.evaluate((n) => ({
    marker: window.demoMarker,
    states: window.wsrelayChat.states.slice(n).map((s) => s.text),
  }), statesBefore);
  log(`page B states across the restart: ${after.states.join(" -> ")}`);
  if (after.marker !== "same page") throw new Error("page B was reloaded");
  for (const want of [/^closed$/, /^reconnecting in \d+s/, /^open$/]) {
    if (!after.states.some((t) => want.test(t))) {
      throw new Error(`page B never showed ${want}: ${after.states.join(" -> ")}`);
    }
  }
  await a.locator("#status[data-state=open]").waitFor(); // A's node never went away
  await b.locator("#messages li.system", { hasText: "Reconnected" }).waitFor();
  // the library resubscribed page B with its password: the new node B holds it
  await waitHolders(["A", "B"]);

  await chat(a, b, "after the restart");
  await shot(a, "demo-A-after-restart");
  await shot(b, "demo-B-after-restart");

  if (problems.length) throw new Error(`page problems:\n  ${problems.join("\n  ")}`);
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox"],
  headless: true,
});
let status = 0;
try {
  await run(browser);
  say("PASS");
} catch (err) {
  status = 1;
  log(`FAIL: ${err.stack || err}`);
  for (const [i, context] of browser.contexts().entries()) {
    for (const page of context.pages()) {
      await shot(page, `demo-failure-${page.label || i}`).catch(() => {});
    }
  }
} finally {
  await browser.close();
}
process.exit(status);
