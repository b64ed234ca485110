// The client against a real wsrelay node that is paused, crashed and
// restarted on the same port: timeouts, reconnect and resubscribe
// (password channels included), the bounded send queue, close().

import { test } from "node:test";
import assert from "node:assert/strict";

import { EventLog, Node, Scope, reason, settle, tapWebSocket, tick, withDeadline } from "./helpers.mjs";

const FAST = { minDelayMs: 20, maxDelayMs: 200 };

const scope = new Scope();

async function startNode() {
  const node = await Node.start();
  scope.defer(() => node.dispose());
  return node;
}

const relay = (url, options) => scope.relay(url, options);

test("a paused node: commands time out, and correlation holds once it answers again", async () => {
  const node = await startNode();
  const r = relay(node.url, { timeoutMs: 300 });
  await r.subscribe("paused");
  node.pause();
  try {
    assert.equal(await reason(r.list()), "timeout");
    assert.equal(await reason(r.send("paused", "m")), "timeout");
  } finally {
    node.resume();
  }
  // The late answers to the timed-out commands arrive first and are dropped.
  assert.ok((await r.list()).includes("paused"));
  await r.send("paused", "again");
});

test("restart on the same port: pending rejected, subscriptions restored, queued sends delivered", async () => {
  const node = await startNode();
  const a = relay(node.url, FAST);
  const tap = tapWebSocket();
  const b = relay(node.url, { ...FAST, WebSocket: tap.WebSocket });
  const logA = new EventLog(a);
  const logB = new EventLog(b);

  await logA.next("open"); // the first connection
  await logB.next("open");
  await a.subscribe("rc-open");
  await a.subscribe("rc-locked", { password: "s3cret" });
  await b.subscribe("rc-open");
  await b.subscribe("rc-locked", { password: "s3cret" });
  await b.send("rc-locked", "before");
  await logA.message("rc-locked", "before");

  // A command in flight when the node dies is rejected with "disconnected".
  node.pause();
  const inflight = settle(a.list());
  tap.hold(); // b will reconnect only once a has restored its subscriptions
  await node.crash();
  assert.equal((await withDeadline(inflight, "the in-flight list")).error.reason, "disconnected");
  await logA.next("close");
  await logB.next("close");
  await logA.next("reconnecting");
  assert.equal(a.connected, false);

  // Sends while disconnected are queued.
  const firstFrame = tap.sent.length;
  const q1 = settle(b.send("rc-open", "queued-open"));
  const q2 = settle(b.send("rc-locked", "queued-locked"));

  await node.restart();
  await logA.next("open");
  assert.deepEqual(a.subscriptions, ["rc-open", "rc-locked"]);
  tap.release();
  await logB.next("open");

  // b's queued sends went out after its restore (else: "not subscribed").
  assert.deepEqual(await withDeadline(q1, "queued send 1"), { ok: true, value: undefined });
  assert.deepEqual(await withDeadline(q2, "queued send 2"), { ok: true, value: undefined });
  assert.deepEqual(
    tap.sent.slice(firstFrame).map((f) => [f.command, f.data]),
    [
      ["subscribe", { topic: "rc-open" }],
      ["subscribe", { topic: "rc-locked", password: "s3cret" }],
      ["send", { channel: "rc-open", message: "queued-open" }],
      ["send", { channel: "rc-locked", message: "queued-locked" }],
    ],
  );
  await logA.message("rc-open", "queued-open");
  await logA.message("rc-locked", "queued-locked");

  // Messages flow both ways without any user action.
  const logB2 = new EventLog(b);
  await a.send("rc-locked", "after");
  await logB2.next("message", (m) => m.message === "after");

  // The restored channel kept its password.
  const c = relay(node.url);
  assert.equal(await reason(c.subscribe("rc-locked")), "invalid password");
  assert.equal(await reason(c.subscribe("rc-locked", { password: "wrong" })), "invalid password");
  await c.subscribe("rc-locked", { password: "s3cret" });
  assert.equal(logA.all("error").filter((e) => !/network error|WebSocket error/.test(e.message)).length, 0);
});

test("queue full while the node is down; the queued sends arrive after the restart", async () => {
  const node = await startNode();
  const listener = relay(node.url, FAST);
  const tap = tapWebSocket();
  const r = relay(node.url, { ...FAST, WebSocket: tap.WebSocket, maxQueue: 3 });
  const logL = new EventLog(listener);
  const logR = new EventLog(r);
  await logL.next("open"); // the first connection
  await logR.next("open");
  await listener.subscribe("qf");
  await r.subscribe("qf");

  tap.hold();
  await node.crash();
  await logR.next("close");
  const queued = ["m1", "m2", "m3"].map((m) => settle(r.send("qf", m)));
  let overflow = null;
  r.send("qf", "m4").catch((e) => (overflow = e));
  await tick();
  assert.ok(overflow, "the fourth send is rejected at once");
  assert.equal(overflow.reason, "queue full");
  assert.equal(overflow.command, "send");

  await node.restart();
  await logL.next("open");
  tap.release();
  for (const p of queued) assert.deepEqual(await withDeadline(p, "a queued send"), { ok: true, value: undefined });
  for (const m of ["m1", "m2", "m3"]) {
    assert.equal((await logL.next("message")).message, m, "delivered in order");
  }
  // Nothing past the bound was sent: a marker send comes right after m3.
  await r.send("qf", "marker");
  assert.equal((await logL.next("message")).message, "marker");
});

test("close() while reconnecting: queued sends rejected, no more attempts", async () => {
  const node = await startNode();
  const r = relay(node.url, FAST);
  const log = new EventLog(r);
  await r.subscribe("cl");
  await node.crash();
  await log.next("close");
  await log.next("reconnecting", (e) => e.attempt >= 2);
  const q = settle(r.send("cl", "never"));
  r.close();
  assert.equal((await q).error.reason, "closed");
  const attempts = log.all("reconnecting").length;
  await node.restart();
  // A client connected after close() sees no sign of r: its channel is gone.
  const probe = relay(node.url);
  assert.deepEqual(await probe.list(), []);
  assert.equal(log.all("reconnecting").length, attempts);
  assert.equal(log.all("open").length, 1);
  assert.equal(await reason(r.subscribe("cl")), "closed");
});
