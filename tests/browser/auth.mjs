// The demo chat (web/) on a node with [auth] required, in Debian's
// Chromium: a page that tries to join gets the dev-token field, a bad
// token is refused with its reason, a good one signs the page in, and two
// signed-in pages chat.
//
//   node auth.mjs URL TOKEN_ALICE TOKEN_BOB SHOT_DIR
//
// Run by tests/integration/test_browser_auth.py; prints PASS on stdout.
// Every wait has a deadline; none is a fixed sleep.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, tokenAlice, tokenBob, shotDir] = process.argv.slice(2);
if (!url || !tokenAlice || !tokenBob || !shotDir) {
  console.error("usage: node auth.mjs URL TOKEN_ALICE TOKEN_BOB SHOT_DIR");
  process.exit(2);
}

const STEP_MS = 20000;
const CHANNEL = "auth-room";
const log = (...a) => console.error("[auth]", ...a);
const problems = [];
mkdirSync(shotDir, { recursive: true });

async function shot(page, name) {
  const path = join(shotDir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  log(`screenshot ${path}`);
}

async function openPage(browser, label) {
  const context = await browser.newContext({ viewport: { width: 960, height: 680 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on("pageerror", (err) => problems.push(`page ${label}: uncaught ${err.message}`));
  page.on("console", (msg) => log(`page ${label} console.${msg.type()}: ${msg.text()}`));
  page.label = label;
  await page.goto(url);
  await page.locator('#status[data-state="open"]').waitFor();
  return page;
}

async function join_(page, name) {
  await page.fill("#name", name);
  await page.fill("#channel", CHANNEL);
  await page.fill("#password", "");
  await page.click("#join");
}

async function signIn(page, name, token) {
  // joining without a token: the node answers "not authenticated" and
  // the page asks for one
  await join_(page, name);
  await page.locator("#token-form").waitFor({ state: "visible" });
  await page.fill("#token", token);
  await page.click("#token-use");
  await page.locator("#messages li.system", { hasText: `Signed in as ${name.toLowerCase()}` }).waitFor();
  await page.locator("#token-form").waitFor({ state: "hidden" });
  await join_(page, name);
  await page.locator("#room", { hasText: `#${CHANNEL}` }).waitFor();
}

async function run(browser) {
  const a = await openPage(browser, "A");
  await join_(a, "Alice");
  await a.locator("#token-form").waitFor({ state: "visible" });
  await shot(a, "auth-A-token-form");
  await a.fill("#token", "not.a.token");
  await a.click("#token-use");
  await a.locator("#error", { hasText: "invalid token" }).waitFor();
  await shot(a, "auth-A-token-refused");
  await a.click("#error-close").catch(() => {});
  await signIn(a, "Alice", tokenAlice);

  const b = await openPage(browser, "B");
  await signIn(b, "Bob", tokenBob);

  const text = "Hello Bob, signed in as alice";
  await a.fill("#text", text);
  await a.press("#text", "Enter");
  await a.locator('#messages li.msg.mine[data-status="sent"]', { hasText: text }).waitFor();
  await b.locator('#messages li.msg:not(.mine)[data-from="Alice"]', { hasText: text }).waitFor();
  await shot(b, "auth-B-chat");
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
      await shot(page, `auth-failure-${page.label || i}`).catch(() => {});
    }
  }
} finally {
  await browser.close();
}
process.exit(status);
