// The client against a real wsrelay node: commands, promise correlation,
// exact reason strings, deliveries.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

import { WsRelay, WsRelayError } from "../../clients/js/wsrelay.js";
import { EventLog, Node, settle, tapWebSocket, withDeadline } from "./helpers.mjs";

const LIB = fileURLToPath(new URL("../../clients/js/wsrelay.js", import.meta.url));

let node;
const relays = [];

function relay(options = {}) {
  const r = new WsRelay(node.url, options);
  relays.push(r);
  return r;
}

before(async () => {
  // the tests' clients share one address: its password limit is not
  // what they test (the per-connection one is)
  node = await Node.start({ limits: { max_message_bytes: 1024, password_failures_per_ip: 1000 } });
});

after(async () => {
  for (const r of relays) r.close();
  await node.dispose();
});

async function rejectsWith(promise, reason, command) {
  const err = await withDeadline(
    promise.then(
      () => assert.fail(`expected rejection "${reason}", got success`),
      (e) => e,
    ),
    `rejection "${reason}"`,
  );
  assert.ok(err instanceof WsRelayError, `not a WsRelayError: ${err}`);
  assert.ok(err instanceof Error);
  assert.equal(err.reason, reason);
  assert.equal(err.message, reason);
  if (command) assert.equal(err.command, command);
  return err;
}

test("subscribe, send, list, unsubscribe; deliveries carry the sender's nonce", async () => {
  const tap = tapWebSocket();
  const a = relay();
  const b = relay({ WebSocket: tap.WebSocket });
  const logA = new EventLog(a);
  const logB = new EventLog(b);
  await logA.next("open");
  await logB.next("open");
  assert.equal(a.connected, true);

  assert.equal(await a.subscribe("api-room"), undefined);
  await b.subscribe("api-room");
  assert.deepEqual(a.subscriptions, ["api-room"]);
  assert.equal(await b.send("api-room", "hello"), undefined);

  const got = await logA.message("api-room");
  const sent = tap.sent.find((f) => f.command === "send");
  assert.deepEqual(got, { channel: "api-room", message: "hello", nonce: sent.nonce });
  assert.equal(typeof sent.nonce, "string");

  // The sender does not get its own message: its next frame is the list answer.
  const channels = await b.list();
  assert.ok(Array.isArray(channels));
  assert.ok(channels.includes("api-room"));
  assert.deepEqual(channels, [...channels].sort());
  assert.equal(logB.all("message").length, 0);

  await a.unsubscribe("api-room");
  assert.deepEqual(a.subscriptions, []);
  await b.send("api-room", "after");
  await rejectsWith(a.send("api-room", "x"), "not subscribed", "send");
  assert.equal(logA.all("message").filter((m) => m.message === "after").length, 0);
});

test("many concurrent commands each settle with their own response", async () => {
  const creator = relay();
  await creator.subscribe("corr-locked", { password: "pw" });

  const tap = tapWebSocket();
  const r = relay({ WebSocket: tap.WebSocket });
  const calls = []; // [promise, expected]
  for (let i = 0; i < 60; i++) {
    calls.push([r.subscribe(`corr-${i}`), { ok: true }]);
    calls.push([r.send(`corr-nope-${i}`, "x"), { reason: "not subscribed" }]);
    calls.push([r.send(`corr-${i}`, `m${i}`), { ok: true }]);
    calls.push([r.unsubscribe(`corr-never-${i}`), { reason: "not subscribed" }]);
    if (i % 10 === 0) {
      calls.push([r.subscribe(""), { reason: "invalid channel name" }]);
      calls.push([r.subscribe("x".repeat(129)), { reason: "invalid channel name" }]);
      calls.push([r.list(), { list: i }]);
    }
    if (i % 20 === 0) {
      calls.push([r.subscribe("corr-locked", { password: "wrong" }), { reason: "invalid password" }]);
    }
  }
  calls.push([r.subscribe("corr-locked", { password: "pw" }), { ok: true }]);

  const results = await withDeadline(Promise.all(calls.map(([p]) => settle(p))), "all commands");
  results.forEach((res, k) => {
    const want = calls[k][1];
    if (want.reason) {
      assert.equal(res.ok, false, `call ${k} should fail with ${want.reason}`);
      assert.equal(res.error.reason, want.reason, `call ${k}`);
    } else if (want.list !== undefined) {
      assert.equal(res.ok, true, `call ${k}: ${res.error}`);
      // Issued after corr-0..corr-i were subscribed: they are all listed.
      for (let j = 0; j <= want.list; j++) assert.ok(res.value.includes(`corr-${j}`), `list ${k} has corr-${j}`);
      assert.ok(res.value.includes("corr-locked"));
    } else {
      assert.equal(res.ok, true, `call ${k}: ${res.error && res.error.reason}`);
    }
  });

  const nonces = tap.sent.map((f) => f.nonce);
  assert.equal(nonces.length, calls.length);
  assert.equal(new Set(nonces).size, nonces.length, "nonces are unique");
  assert.ok(nonces.every((n) => typeof n === "string" && n.length <= 128));
  assert.equal(r.subscriptions.length, 61);
});

test("exact reason strings from the server", async () => {
  const a = relay();
  const b = relay();
  await a.subscribe("rs-open");
  await a.subscribe("rs-locked", { password: "s3cret" });

  await rejectsWith(b.subscribe("rs-open", { password: "x" }), "invalid password", "subscribe");
  await rejectsWith(b.subscribe("rs-locked"), "invalid password", "subscribe");
  await rejectsWith(b.subscribe("rs-locked", { password: "nope" }), "invalid password", "subscribe");
  await b.subscribe("rs-locked", { password: "s3cret" });

  await rejectsWith(b.unsubscribe("rs-nowhere"), "not subscribed", "unsubscribe");
  await rejectsWith(b.send("rs-open", "hi"), "not subscribed", "send");
  await rejectsWith(b.subscribe(""), "invalid channel name");
  await rejectsWith(b.subscribe("bad\u0001name"), "invalid channel name");
  // What plain JavaScript callers can get wrong reaches the server as is.
  await rejectsWith(b.subscribe(undefined), "missing field: topic");
  await rejectsWith(b.subscribe(42), "missing field: topic");
  await rejectsWith(b.send("rs-locked", 42), "missing field: message");
  await rejectsWith(b.send(undefined, "x"), "missing field: channel");
  await rejectsWith(b.send("rs-locked", "y".repeat(1025)), "message too large", "send");
  await b.send("rs-locked", "y".repeat(1024));
  // What JSON cannot carry is the caller's TypeError, and nothing is sent.
  await assert.rejects(b.send("rs-locked", 10n), TypeError);
  // Failures do not disturb what is held.
  assert.deepEqual(b.subscriptions, ["rs-locked"]);
});

test("rate limited after five failed password attempts", async () => {
  const a = relay();
  const b = relay();
  await a.subscribe("rl-locked", { password: "right" });
  for (let i = 0; i < 5; i++) {
    await rejectsWith(b.subscribe("rl-locked", { password: `wrong${i}` }), "invalid password");
  }
  await rejectsWith(b.subscribe("rl-locked", { password: "right" }), "rate limited");
  await b.subscribe("rl-open-still-works");
});

test("subscribe is idempotent; password null means none", async () => {
  const a = relay();
  await a.subscribe("idem", { password: null });
  await a.subscribe("idem");
  await a.subscribe("idem", { password: null });
  assert.deepEqual(a.subscriptions, ["idem"]);
  await a.unsubscribe("idem");
  await rejectsWith(a.unsubscribe("idem"), "not subscribed");
});

test("commands issued before the connection opens wait for it", async () => {
  const a = relay();
  const b = relay();
  const log = new EventLog(b);
  const sub = b.subscribe("early");
  const snd = b.send("early", "first");
  assert.equal(b.connected, false);
  await a.subscribe("early");
  // Both were queued: the subscribe goes out first, then the send.
  await withDeadline(Promise.all([sub, snd]), "queued commands");
  await log.next("open");
});

test("listeners: on/off, unknown events are refused", async () => {
  const a = relay();
  let opens = 0;
  const fn = () => opens++;
  assert.equal(a.on("open", fn), a);
  assert.equal(a.off("open", fn), a);
  const log = new EventLog(a);
  await log.next("open");
  assert.equal(opens, 0);
  assert.throws(() => a.on("nope", fn), TypeError);
  assert.throws(() => a.on("open", 42), TypeError);
});

test("bad options and a missing WebSocket are refused at construction", () => {
  assert.throws(() => new WsRelay(node.url, { timeoutMs: -1 }), /timeoutMs/);
  assert.throws(() => new WsRelay(node.url, { maxQueue: "many" }), /maxQueue/);
  // Node.js 20 without --experimental-websocket has no global WebSocket.
  const script =
    `const { WsRelay } = await import(${JSON.stringify(LIB)});` +
    `if (typeof WebSocket === "function") { console.log("HAS-WEBSOCKET"); process.exit(0); }` +
    `try { new WsRelay("ws://127.0.0.1:1/connect"); console.log("NO-ERROR"); }` +
    `catch (e) { console.log(e.name + ": " + e.message); }`;
  const res = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  assert.equal(res.status, 0, res.stderr);
  if (res.stdout.includes("HAS-WEBSOCKET")) return; // a Node.js with WebSocket on by default
  assert.match(res.stdout, /^TypeError: WsRelay: no WebSocket implementation/);
  assert.match(res.stdout, /options\.WebSocket/);
});
