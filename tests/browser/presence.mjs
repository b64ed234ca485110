// The demo chat's member list and recovery (PROTOCOL.md 7.3, 7.4) in
// Debian's Chromium: two pages signed in as ann and ben, page A on node a
// through a proxy the test can cut and retarget (a load balancer), page B
// on node b; an anonymous page C on node a for a while.
//
//   node presence.mjs URL_A RELAY_A URL_B TOKEN_ANN TOKEN_BEN SHOT_DIR
//
// Steps that need the test's hands (cut the proxy, restart a node) are
// asked for on stdout ("STEP name") and go on when stdin says "OK". Run by
// tests/integration/test_browser_presence.py; prints PASS on stdout.
// Every wait has a deadline; none is a fixed sleep.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const [urlA, relayA, urlB, tokenAnn, tokenBen, shotDir] = process.argv.slice(2);
if (!shotDir) {
  console.error("usage: node presence.mjs URL_A RELAY_A URL_B TOKEN_ANN TOKEN_BEN SHOT_DIR");
  process.exit(2);
}

const STEP_MS = 20000;
const CHANNEL = "room";
const log = (...a) => console.error("[presence]", ...a);
const problems = [];
mkdirSync(shotDir, { recursive: true });

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function step(name) {
  process.stdout.write(`STEP ${name}\n`);
  const { value, done } = await lines.next();
  if (done || value.trim() !== "OK") throw new Error(`step ${name}: ${value}`);
  log(`step ${name} done`);
}

async function shot(page, name) {
  const path = join(shotDir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  log(`screenshot ${path}`);
}

async function openPage(browser, label, url, token) {
  const context = await browser.newContext({ viewport: { width: 960, height: 680 } });
  // signed in from the first connection: the token the page keeps
  if (token) await context.addInitScript((t) => sessionStorage.setItem("wsrelay-chat-token", t), token);
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on("pageerror", (err) => problems.push(`page ${label}: uncaught ${err.message}`));
  page.on("console", (msg) => log(`page ${label} console.${msg.type()}: ${msg.text()}`));
  page.label = label;
  await page.goto(url);
  await page.locator('#status[data-state="open"]').waitFor();
  await page.fill("#name", { A: "Ann", B: "Ben" }[label] || "Cid");
  await page.fill("#channel", CHANNEL);
  await page.click("#join");
  await page.locator("#room", { hasText: `#${CHANNEL}` }).waitFor();
  return page;
}

function assert(ok, what) {
  if (!ok) throw new Error(what);
}

const count = (page, text) => page.locator("#members-count", { hasText: text }).waitFor();
const member = (page, user) => page.locator(`#member-list li[data-user="${user}"]`);
const from = (page, who, text) =>
  page.locator(`#messages li.msg:not(.mine)[data-from="${who}"]`, { hasText: text });
// one's own message, confirmed by the node
const sent = (page, text) =>
  page.locator('#messages li.msg.mine[data-status="sent"]', { hasText: text });

async function say(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

// says each of @texts, then waits until the node confirmed every one
async function sayAll(page, texts) {
  for (const t of texts) await say(page, t);
  for (const t of texts) await sent(page, t).waitFor();
}

async function run(browser) {
  const a = await openPage(browser, "A", `${urlA}?relay=${encodeURIComponent(relayA)}`, tokenAnn);
  const b = await openPage(browser, "B", urlB, tokenBen);
  // each page shows both, whichever node each is on
  for (const p of [a, b]) for (const u of ["ann", "ben"]) await member(p, u).waitFor();
  await a.locator("#member-list li.me", { hasText: "ann" }).waitFor();
  for (const p of [a, b]) await count(p, "2 here, 2 signed in");
  await shot(a, "presence-A-members");

  // an anonymous visitor is counted, not listed (it causes no event: the
  // others' counts catch up at their next presence())
  const c = await openPage(browser, "C", urlA, null);
  await count(c, "3 here, 2 signed in");
  for (const u of ["ann", "ben"]) await member(c, u).waitFor();
  assert((await c.locator("#member-list li").count()) === 2, "C lists only the signed-in users");
  await c.context().close();

  // a network blip on A's side: what ben says meanwhile is replayed
  await step("cut");
  await a.locator('#status:not([data-state="open"])').waitFor();
  const during = ["while the line was down 1", "while the line was down 2", "while the line was down 3"];
  await sayAll(b, during);
  await step("mend");
  await a.locator('#status[data-state="open"]').waitFor();
  for (const t of during) await from(a, "Ben", t).waitFor();
  await a.locator("#messages li.system", { hasText: "nothing missed" }).waitFor();
  await member(b, "ann").waitFor();
  await shot(a, "presence-A-recovered");

  // node b restarts: ben's page queues what he says and comes back; its
  // history is gone with the process, which the page says
  await step("stop-b");
  await b.locator('#status:not([data-state="open"])').waitFor();
  await member(a, "ben").waitFor({ state: "detached" });
  await say(a, "said while node b was down");
  await say(b, "queued while node b was down");
  await step("start-b");
  await b.locator('#status[data-state="open"]').waitFor();
  await from(a, "Ben", "queued while node b was down").waitFor();
  await sent(b, "queued while node b was down").waitFor();
  // its own node restarted: what ann said meanwhile never reached it
  await b.locator('#messages li.system[data-catchup="incomplete"]').waitFor();
  for (const p of [a, b]) for (const u of ["ann", "ben"]) await member(p, u).waitFor();
  // and the chat goes on both ways
  await say(a, "welcome back");
  await from(b, "Ann", "welcome back").waitFor();
  await sent(a, "welcome back").waitFor();
  await shot(b, "presence-B-after-restart");

  // node a stops and its page's reconnect lands on node b (the proxy is
  // the load balancer): b cannot replay a's epoch (the gap), but b kept
  // the channel's messages, so the page fills in what ben said meanwhile
  await step("stop-a");
  await a.locator('#status:not([data-state="open"])').waitFor();
  await member(b, "ann").waitFor({ state: "detached" });
  const away = ["while node a was down 1", "while node a was down 2", "while node a was down 3"];
  await sayAll(b, away);
  await step("mend");
  await a.locator('#status[data-state="open"]').waitFor();
  await a.locator('#messages li.system[data-catchup="complete"]').waitFor();
  for (const t of away) await from(a, "Ben", t).and(a.locator("[data-recovered]")).waitFor();
  const shown = await a.locator("#messages li.msg:not(.mine)").allTextContents();
  for (const t of away) {
    assert(shown.filter((x) => x.includes(t)).length === 1, `A shows "${t}" once: ${JSON.stringify(shown)}`);
  }
  for (const p of [a, b]) for (const u of ["ann", "ben"]) await member(p, u).waitFor();
  await step("start-a");
  await say(b, "and now?");
  await from(a, "Ben", "and now?").waitFor();
  for (const p of [a, b]) await count(p, "2 here, 2 signed in");
  await shot(a, "presence-A-caught-up");
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
  process.stdout.write("PASS\n");
} catch (err) {
  status = 1;
  log(`FAIL: ${err.stack || err}`);
  for (const [i, context] of browser.contexts().entries()) {
    for (const page of context.pages()) {
      await shot(page, `presence-failure-${page.label || i}`).catch(() => {});
    }
  }
} finally {
  await browser.close();
}
process.exit(status);
