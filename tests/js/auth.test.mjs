// Authentication (PROTOCOL.md 7.1) against a real node with [auth]
// required: the token option, an async getToken on connect and on every
// reconnect, the refresh before exp, and auth failures as events.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { WsRelay, WsRelayError } from "../../clients/js/wsrelay.js";
import { EventLog, Node, withDeadline } from "./helpers.mjs";

const SECRET = "js-test-secret";
let node;
let dir;
const relays = [];

function b64u(s) {
  return Buffer.from(s).toString("base64url");
}

/** An HS256 token for `sub` expiring `ttl` seconds from now. */
function mint(sub, ttl = 3600, extra = {}) {
  const h = b64u(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const exp = Math.floor(Date.now() / 1000) + ttl;
  const p = b64u(JSON.stringify({ sub, exp, ...extra }));
  const sig = createHmac("sha256", SECRET).update(`${h}.${p}`).digest("base64url");
  return `${h}.${p}.${sig}`;
}

function relay(options = {}) {
  const r = new WsRelay(node.url, { minDelayMs: 50, maxDelayMs: 200, ...options });
  relays.push(r);
  return r;
}

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "wsrelay-js-auth-"));
  const key = path.join(dir, "auth.key");
  writeFileSync(key, SECRET + "\n");
  node = await Node.start({
    toml: `[auth]\nrequired = true\ntimeout_ms = 1500\nhs256_secret_file = ${JSON.stringify(key)}\n`,
  });
});

after(async () => {
  for (const r of relays) r.close();
  await node.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test("token option: auth goes first, then commands", async () => {
  const r = relay({ token: mint("alice", 3600, { channels: ["js.*"] }) });
  const log = new EventLog(r);
  const a = await log.next("auth");
  assert.equal(a.user, "alice");
  assert.equal(a.refresh, false);
  await log.next("open");
  assert.equal(r.user, "alice");
  assert.equal(typeof r.expires, "number");
  await r.subscribe("js.room");
  const err = await r.subscribe("other").then(() => null, (e) => e);
  assert.ok(err instanceof WsRelayError);
  assert.equal(err.reason, "permission denied");
});

test("async getToken on connect and every reconnect; subscriptions restored after auth", async () => {
  let calls = 0;
  const r = relay({
    getToken: async () => {
      calls += 1;
      await new Promise((res) => setTimeout(res, 10));
      return mint("bob");
    },
  });
  const log = new EventLog(r);
  await log.next("open");
  assert.equal(calls, 1);
  await r.subscribe("js.restore");
  await node.restart();
  await log.next("close");
  await log.next("auth", (e) => e.refresh === false);
  await log.next("open");
  assert.ok(calls >= 2, `getToken called ${calls} times`);
  // the restore subscribe went through (after auth: the node requires it)
  assert.deepEqual(r.subscriptions, ["js.restore"]);
  const peer = relay({ token: mint("carol") });
  const plog = new EventLog(peer);
  await plog.next("open");
  await peer.subscribe("js.restore");
  await peer.send("js.restore", "after restart");
  await log.message("js.restore", "after restart");
});

test("getToken refreshes before exp; a static short token is closed 4401", async () => {
  let calls = 0;
  // exp 25 s ago: accepted (30 s skew), closed by the node 5 s from now
  const short = mint("dave", -25);
  const r = relay({
    getToken: () => {
      calls += 1;
      return calls === 1 ? short : mint("dave");
    },
  });
  const marker = relay({ token: short, reconnect: false });
  const log = new EventLog(r);
  const mlog = new EventLog(marker);
  await log.next("auth", (e) => e.refresh === false);
  const refreshed = await log.next("auth", (e) => e.refresh === true);
  assert.equal(refreshed.user, "dave");
  assert.ok(refreshed.expires > Date.now() / 1000 + 3000);
  const gone = await mlog.next("autherror", (e) => e.code === 4401, 15000);
  assert.equal(gone.reason, "token expired");
  // the refreshed connection is still there, never closed
  assert.equal(r.connected, true);
  assert.equal(log.all("close").length, 0);
  await withDeadline(r.list(), "list after the marker closed");
});

test("auth failures are events; the node's 4401 'unauthorized' too", async () => {
  const r = relay({ token: "not.a.token", reconnect: false });
  const log = new EventLog(r);
  const e = await log.next("autherror");
  assert.equal(e.reason, "invalid token");
  assert.equal(e.refresh, false);
  await log.next("open");
  const err = await r.list().then(() => null, (x) => x);
  assert.equal(err && err.reason, "not authenticated");
  const closed = await log.next("autherror", (x) => x.code === 4401);
  assert.equal(closed.reason, "unauthorized");

  const t = relay({ getToken: () => Promise.reject(new Error("no idp")), reconnect: false });
  const tlog = new EventLog(t);
  const te = await tlog.next("autherror");
  assert.equal(te.reason, "getToken failed");
  assert.equal(te.error.message, "no idp");
});

test("authenticate(token) logs in an open connection and keeps the token", async () => {
  const r = relay({ getToken: () => null }); // anonymous at first, silently
  const log = new EventLog(r);
  await log.next("open");
  assert.equal(log.all("autherror").length, 0);
  const err = await r.list().then(() => null, (x) => x);
  assert.equal(err && err.reason, "not authenticated");
  const bad = await r.authenticate("x.y.z").then(() => null, (x) => x);
  assert.ok(bad instanceof WsRelayError);
  assert.equal(bad.reason, "invalid token");
  assert.equal(bad.command, "auth");
  const got = await r.authenticate(mint("erin"));
  assert.equal(got.user, "erin");
  assert.equal(r.user, "erin");
  assert.ok(Array.isArray(await r.list()));
});
