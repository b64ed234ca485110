// The network overview (web/overview.html) in Debian's Chromium, against
// a live mesh: every node, link and channel of /api/overview is drawn,
// and the numbers on the page are those of the very answer it drew.
//
//   node overview.mjs MASTER_URL OTHER_URL SHOT_DIR
//
// MASTER_URL: http://127.0.0.1:PORT/ of the master node; OTHER_URL: of a
// node that is not the master (its /api/overview answers 404). Run by
// tests/integration/test_browser_overview.py, after the mesh has settled.
//
// The page's fetches of /api/overview go through page.route(), which
// passes each on to the node and keeps a copy of the answer: after each
// redraw the page's numbers are compared with the answer whose
// generated_at it shows (body[data-generated-at]), so the comparison is
// exact even though the mesh keeps changing (latencies, rates). Then:
// a failing fetch shows the error state and the page recovers; a
// doctored answer (a node without stats, a slow link, an unmeasured one)
// is drawn as such; the page on a non-master node says so.
//
// stdout: one "RESULT {json}" line (what the page showed: nodes, links,
// channels), then "PASS". Progress and failures on stderr; exit 1 on a
// failure. Every wait has a deadline; none is a fixed sleep.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [masterUrl, otherUrl, shotDir] = process.argv.slice(2);
if (!masterUrl || !otherUrl || !shotDir) {
  console.error("usage: node overview.mjs MASTER_URL OTHER_URL SHOT_DIR");
  process.exit(2);
}

const STEP_MS = 20000; // one expected redraw (the page polls every 2 s)
const HIGH_MS = 10;

const log = (...a) => console.error("[overview]", ...a);
mkdirSync(shotDir, { recursive: true });

// -------------------------------------------------------------- checks

class Mismatch extends Error {}

function expect(cond, what, detail) {
  if (!cond) throw new Mismatch(`${what}${detail === undefined ? "" : `: ${JSON.stringify(detail)}`}`);
}

const sorted = (a) => [...a].sort();
const same = (a, b) => JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));

// A number as the page writes it ("3.1", "0.27", "12", "1.2k").
function parseShown(text) {
  const m = /^(-?[\d.]+)\s*([kM]?)/.exec(String(text).trim());
  if (!m) return NaN;
  return parseFloat(m[1]) * (m[2] === "k" ? 1e3 : m[2] === "M" ? 1e6 : 1);
}

// Shown with 2 decimals below 1, 1 below 10, whole numbers below 1000,
// then 1.2k: never further off than this.
const closeEnough = (shown, v) => Math.abs(shown - v) <= Math.max(0.0051, 0.051 * Math.abs(v));

// The latency label: 2 decimals below 1 ms, 1 below 100 ms, then whole.
function latencyClose(shown, v) {
  const tol = v < 1 ? 0.0051 : v < 100 ? 0.051 : 0.51;
  return Math.abs(shown - v) <= tol;
}

// Everything the checks read, in one evaluate: the page cannot redraw
// half-way through it.
function snapshot(page) {
  return page.evaluate(() => {
    const val = (el) => (el ? el.dataset.value : undefined);
    const sum = {};
    for (const k of ["master", "nodes", "links", "channels", "clients", "repairs"]) {
      const el = document.getElementById(`sum-${k}`);
      sum[k] = { value: el.dataset.value, text: el.textContent.trim() };
    }
    const graphNodes = [...document.querySelectorAll("#graph g.node")].map((g) => ({
      name: g.dataset.node, state: g.dataset.state, master: g.dataset.master === "true",
      ring: !!g.querySelector(".ring"), star: !!g.querySelector(".star"),
      caption: [...g.querySelectorAll(".caption")].map((t) => t.textContent).join(" | "),
    }));
    const links = [...document.querySelectorAll("#graph g.link")].map((g) => {
      const line = document.querySelector(`#graph line[data-link-line="${CSS.escape(g.dataset.link)}"]`);
      return {
        id: g.dataset.link, a: g.dataset.a, b: g.dataset.b, latency: g.dataset.latency,
        text: g.querySelector("text").textContent, cls: g.getAttribute("class"),
        stroke: line ? getComputedStyle(line).stroke : null,
        dash: line ? getComputedStyle(line).strokeDasharray : null,
      };
    });
    const channels = [...document.querySelectorAll("#channel-rows tr[data-channel]")].map((tr) => ({
      name: tr.dataset.channel, protected: tr.dataset.protected === "true",
      lock: !!tr.querySelector("svg.lock"), nameText: tr.querySelector(".chan").textContent,
      holders: [...tr.querySelectorAll("[data-holder]")].map((e) => e.dataset.holder),
      holderText: [...tr.querySelectorAll("[data-holder]")].map((e) => e.textContent.trim()),
      subs: [...tr.querySelectorAll("[data-sub-node]")].map((e) => ({
        node: e.dataset.subNode, value: e.dataset.value, text: e.textContent.trim() })),
      total: { value: val(tr.querySelector('[data-field="total"]')), text: tr.querySelector('[data-field="total"]').textContent.trim() },
    }));
    const cards = [...document.querySelectorAll("#cards article.card")].map((c) => {
      const f = (name) => {
        const el = c.querySelector(`[data-field="${name}"]`);
        return el ? { value: el.dataset.value, text: el.textContent.trim() } : null;
      };
      const chart = (kind) => {
        const svg = c.querySelector(`svg[data-chart="${kind}"]`);
        return svg ? { points: +svg.dataset.points, path: svg.querySelector("path.line").getAttribute("d") } : null;
      };
      return {
        name: c.dataset.node, state: c.dataset.state, text: c.textContent,
        masterBadge: !!c.querySelector(".badge.master"),
        clients: f("clients"), channels: f("channels"), pps: f("pps"), kbps: f("kbps"),
        load1: f("load1"), memUsed: f("mem-used"), memTotal: f("mem-total"),
        pps_chart: chart("pps"), kbps_chart: chart("kbps"),
      };
    });
    return {
      generatedAt: document.body.dataset.generatedAt,
      renders: +document.body.dataset.renders,
      status: document.getElementById("status").dataset.state,
      statusText: document.getElementById("status-text").textContent,
      errorShown: !document.getElementById("error").hidden,
      errorText: document.getElementById("error").textContent,
      sum, graphNodes, links, channels, cards,
    };
  });
}

const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);

// The page against the answer it drew. Throws Mismatch on any difference.
function compare(snap, d) {
  const names = new Set(d.nodes.map((n) => n.name));
  for (const l of d.links) names.add(l.a).add(l.b);
  const byName = new Map(d.nodes.map((n) => [n.name, n]));

  // header
  expect(snap.status === "live", "status is live", snap.status);
  expect(!snap.errorShown, "no error banner", snap.errorText);
  expect(snap.sum.master.text === d.master, "header master", [snap.sum.master, d.master]);
  expect(+snap.sum.nodes.text === names.size, "header node count", [snap.sum.nodes, names.size]);
  expect(+snap.sum.links.text === d.links.length, "header link count", [snap.sum.links, d.links.length]);
  expect(+snap.sum.channels.text === d.channels.length, "header channel count", [snap.sum.channels, d.channels.length]);
  const clients = d.nodes.reduce((s, n) => s + (num(n.stats?.relay?.clients) ?? 0), 0);
  expect(+snap.sum.clients.text === clients, "header clients", [snap.sum.clients, clients]);
  expect(+snap.sum.repairs.text === d.repairs, "header repairs", [snap.sum.repairs, d.repairs]);

  // graph: nodes
  expect(same(snap.graphNodes.map((g) => g.name), names), "graph nodes", snap.graphNodes.map((g) => g.name));
  for (const g of snap.graphNodes) {
    const n = byName.get(g.name);
    const master = !!n?.master;
    expect(g.master === master && g.ring === master && g.star === master, `graph node ${g.name} master mark`, g);
    if (!n) expect(g.state === "unknown", `graph node ${g.name} not in nodes[]`, g);
    else if (!n.stats) expect(g.state === "nostats" && /no stats/.test(g.caption), `graph node ${g.name} without stats`, g);
    else {
      expect(g.state === "live" || g.state === "stale", `graph node ${g.name} state`, g);
      const c = n.stats.relay.clients;
      expect(g.caption.startsWith(`${c} client`), `graph node ${g.name} clients`, [g.caption, c]);
    }
  }

  // graph: links
  const want = d.links.map((l) => (l.a < l.b ? `${l.a}-${l.b}` : `${l.b}-${l.a}`));
  expect(same(snap.links.map((l) => l.id), want), "graph links", [snap.links.map((l) => l.id), want]);
  for (const l of d.links) {
    const id = l.a < l.b ? `${l.a}-${l.b}` : `${l.b}-${l.a}`;
    const g = snap.links.find((x) => x.id === id);
    const lat = num(l.latency_ms);
    if (lat === null) {
      expect(g.latency === "" && /^\?/.test(g.text) && g.cls.includes("unknown"), `link ${id} unmeasured`, g);
      expect(g.dash && g.dash !== "none", `link ${id} dashed`, g);
    } else {
      expect(+g.latency === lat, `link ${id} data-latency`, [g.latency, lat]);
      expect(/ ms$/.test(g.text) && latencyClose(parseShown(g.text), lat), `link ${id} label`, [g.text, lat]);
      expect(g.cls.includes("high") === lat > HIGH_MS, `link ${id} high-latency colour class`, [g.cls, lat]);
    }
  }
  const okStroke = snap.links.find((x) => x.cls.includes("ok"))?.stroke;
  for (const g of snap.links.filter((x) => x.cls.includes("high")))
    expect(okStroke === undefined || g.stroke !== okStroke, `link ${g.id} coloured unlike a fast link`, [g.stroke, okStroke]);

  // channels
  expect(same(snap.channels.map((c) => c.name), d.channels.map((c) => c.name)), "channel rows",
    [snap.channels.map((c) => c.name), d.channels.map((c) => c.name)]);
  for (const c of d.channels) {
    const row = snap.channels.find((r) => r.name === c.name);
    expect(row.nameText === c.name, `channel ${c.name} name`, row.nameText);
    expect(row.protected === c.protected && row.lock === c.protected, `channel ${c.name} lock`, row);
    expect(same(row.holders, c.holders) && same(row.holderText, c.holders), `channel ${c.name} holders`, [row.holders, c.holders]);
    const subs = Object.entries(c.subscribers);
    expect(same(row.subs.map((s) => s.node), subs.map(([k]) => k)), `channel ${c.name} subscriber nodes`, [row.subs, c.subscribers]);
    for (const [k, v] of subs) {
      const s = row.subs.find((x) => x.node === k);
      expect(+s.value === v && s.text === `${k} ${v}`, `channel ${c.name} subscribers on ${k}`, [s, v]);
    }
    expect(+row.total.text === c.total_subscribers && +row.total.value === c.total_subscribers,
      `channel ${c.name} total`, [row.total, c.total_subscribers]);
  }

  // node cards
  expect(same(snap.cards.map((c) => c.name), names), "node cards", snap.cards.map((c) => c.name));
  for (const card of snap.cards) {
    const n = byName.get(card.name);
    if (!n) continue;
    expect(card.masterBadge === !!n.master, `card ${card.name} master badge`, card.masterBadge);
    if (!n.stats) {
      expect(card.state === "nostats" && /no stats/i.test(card.text), `card ${card.name} without stats`, card.state);
      continue;
    }
    const relay = n.stats.relay, net = n.stats.network;
    expect(+card.clients.text === relay.clients, `card ${card.name} clients`, [card.clients, relay.clients]);
    expect(+card.channels.text === relay.channels.length, `card ${card.name} channels`, [card.channels, relay.channels]);
    const pps = net.packets["15s"] / 15;
    expect(Math.abs(+card.pps.value - pps) < 1e-9 && closeEnough(parseShown(card.pps.text), pps),
      `card ${card.name} packets/s`, [card.pps, pps]);
    const kbps = net.bandwidth["15s"];
    expect(+card.kbps.value === kbps && closeEnough(parseShown(card.kbps.text), kbps),
      `card ${card.name} kb/s`, [card.kbps, kbps]);
    const hist = n.history || [];
    if (hist.length) {
      for (const k of ["pps_chart", "kbps_chart"])
        expect(card[k] && card[k].points === hist.length && /^M/.test(card[k].path),
          `card ${card.name} ${k} over the history`, [card[k], hist.length]);
    }
    if (n.host) {
      expect(+card.load1.value === n.host.cpu["1m"] && card.load1.text.startsWith(n.host.cpu["1m"].toFixed(2)),
        `card ${card.name} load`, [card.load1, n.host.cpu]);
      expect(+card.memUsed.value === n.host.mem.used && +card.memTotal.value === n.host.mem.total,
        `card ${card.name} memory`, [card.memUsed, card.memTotal, n.host.mem]);
    }
  }
}

// ------------------------------------------------------------- the page

const problems = [];
const answers = new Map(); // generated_at -> the answer the page got
let doctor = null; // when set, rewrites the answers the page gets
let failFetches = false; // when set, the page's fetches fail

async function openPage(browser, url, label) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on("pageerror", (err) => problems.push(`page ${label}: uncaught ${err.message}`));
  page.on("console", (msg) => {
    log(`page ${label} console.${msg.type()}: ${msg.text()}`);
    if (msg.type() === "error" && !/Failed to load resource/.test(msg.text()))
      problems.push(`page ${label}: console error ${msg.text()}`);
  });
  page.on("requestfailed", (req) => {
    if (!req.url().endsWith("/api/overview")) problems.push(`page ${label}: ${req.url()} failed`);
  });
  page.on("request", (req) => {
    const u = new URL(req.url());
    if (u.origin !== new URL(url).origin && !u.protocol.startsWith("data"))
      problems.push(`page ${label}: fetched ${req.url()} (the page must be self-contained)`);
  });
  await page.route("**/api/overview", async (route) => {
    if (failFetches) return route.abort("connectionrefused");
    const res = await route.fetch();
    let body = await res.text();
    if (res.status() === 200) {
      let d = JSON.parse(body);
      if (doctor) {
        d = doctor(d);
        body = JSON.stringify(d);
      }
      answers.set(String(d.generated_at), d);
    }
    return route.fulfill({ response: res, body });
  });
  await page.goto(url);
  return page;
}

// Waits for a redraw after `after` renders, then compares it with its
// answer; retries on later redraws until the deadline.
async function checkRedraw(page, after, what, check = compare) {
  const deadline = Date.now() + STEP_MS;
  let last = "no redraw";
  let seen = after;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`${what}: timed out after ${STEP_MS} ms; last: ${last}`);
    try {
      await page.waitForFunction((n) => +document.body.dataset.renders > n, seen, { timeout: left });
    } catch {
      continue; // the deadline check above reports
    }
    const snap = await snapshot(page);
    seen = snap.renders;
    const d = answers.get(snap.generatedAt);
    if (!d) {
      last = `no recorded answer for generated_at ${snap.generatedAt}`;
      continue;
    }
    try {
      check(snap, d);
      return { snap, d };
    } catch (err) {
      if (!(err instanceof Mismatch)) throw err;
      last = err.message;
      log(`${what}: not yet (${last})`);
    }
  }
}

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
let failed = false;
try {
  const url = new URL("/overview.html", masterUrl).href;
  log(`opening ${url}`);
  const page = await openPage(browser, url, "master");

  // 1. three redraws in a row, each matching the answer it drew: the page
  //    is live, and right on every one
  let { snap, d } = await checkRedraw(page, 0, "first redraw");
  const firstAt = snap.generatedAt;
  for (let i = 0; i < 2; i++) ({ snap, d } = await checkRedraw(page, snap.renders, `redraw ${i + 2}`));
  if (snap.generatedAt === firstAt) throw new Error("the page did not redraw with new data");
  log(`page matches /api/overview of ${snap.generatedAt} (render ${snap.renders}): ` +
      `${snap.graphNodes.length} nodes, ${snap.links.length} links, ${snap.channels.length} channels`);
  await page.screenshot({ path: join(shotDir, "overview.png"), fullPage: true });
  log(`screenshot ${join(shotDir, "overview.png")}`);
  const result = {
    generated_at: +snap.generatedAt,
    master: snap.sum.master.text,
    nodes: snap.graphNodes.map((g) => ({ name: g.name, state: g.state, master: g.master })),
    links: snap.links.map((l) => ({ id: l.id, latency: l.latency === "" ? null : +l.latency, text: l.text })),
    channels: snap.channels.map((c) => ({
      name: c.name, protected: c.protected, holders: sorted(c.holders),
      subscribers: Object.fromEntries(c.subs.map((s) => [s.node, +s.value])), total: +c.total.value })),
    cards: snap.cards.map((c) => ({ name: c.name, clients: c.clients && +c.clients.value,
      pps: c.pps && +c.pps.value, points: c.pps_chart && c.pps_chart.points })),
  };

  // 2. the fetch fails: the error is shown, the last data stays, dimmed
  failFetches = true;
  await page.locator('#status[data-state="error"]').waitFor();
  await page.locator("#error:not([hidden])").waitFor();
  const errText = await page.locator("#error").textContent();
  if (!/Cannot fetch \/api\/overview/.test(errText) || !/showing data from/.test(errText))
    throw new Error(`error banner: ${errText}`);
  if (!(await page.locator("main.stale").count())) throw new Error("stale data is not dimmed");
  if ((await page.locator("#graph g.node").count()) !== result.nodes.length) throw new Error("the last data went away");
  await page.screenshot({ path: join(shotDir, "overview-error.png") });
  failFetches = false;
  ({ snap } = await checkRedraw(page, snap.renders, "recovery after failed fetches"));
  log("error state shown and recovered");

  // 3. a node without stats, a slow link and an unmeasured one (a real
  //    answer, doctored), drawn as such
  const victim = d.nodes.find((n) => !n.master)?.name;
  doctor = (a) => {
    a = structuredClone(a);
    for (const n of a.nodes) if (n.name === victim) Object.assign(n, { stats: null, host: null, history: [] });
    for (const c of a.channels) {
      delete c.subscribers[victim];
      c.total_subscribers = Object.values(c.subscribers).reduce((s, v) => s + v, 0);
    }
    if (a.links[0]) a.links[0].latency_ms = 25.46;
    if (a.links[1]) a.links[1].latency_ms = null;
    return a;
  };
  ({ snap } = await checkRedraw(page, snap.renders, "doctored answer", (s, a) => {
    compare(s, a);
    expect(s.graphNodes.find((g) => g.name === victim)?.state === "nostats", `${victim} drawn without stats`);
    expect(s.links.some((l) => l.cls.includes("high") && l.text === "25.5 ms"), "a slow link in colour", s.links);
    if (a.links[1]) expect(s.links.some((l) => l.cls.includes("unknown") && l.text === "? ms"), "an unmeasured link", s.links);
  }));
  await page.screenshot({ path: join(shotDir, "overview-doctored.png"), fullPage: true });
  doctor = null;
  await checkRedraw(page, snap.renders, "back to the real answer");
  log("missing stats, slow and unmeasured links drawn as such");

  // 4. on a node that is not the master the page says so
  const other = await openPage(browser, new URL("/overview.html", otherUrl).href, "other");
  await other.locator('#status[data-state="error"]').waitFor();
  const otherErr = await other.locator("#error").textContent();
  if (!/HTTP 404/.test(otherErr) || !/not the master/.test(otherErr))
    throw new Error(`non-master page error: ${otherErr}`);
  log(`non-master page: ${otherErr}`);

  if (problems.length) throw new Error(`page problems:\n${problems.join("\n")}`);
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  process.stdout.write("PASS\n");
} catch (err) {
  failed = true;
  log(`FAIL: ${err.stack || err}`);
  if (problems.length) log(`page problems:\n${problems.join("\n")}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
