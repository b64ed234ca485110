// The client against a scripted fake server: timeouts, late answers, the
// "unsubscribed" notice, restore order and failures, reconnect: false,
// close().

import { test } from "node:test";
import assert from "node:assert/strict";

import { EventLog, FakeServer, Scope, answerOk, reason, settle, tick, withDeadline } from "./helpers.mjs";

const FAST = { minDelayMs: 10, maxDelayMs: 50 };

const scope = new Scope();

async function fake() {
  const s = await FakeServer.start();
  scope.defer(() => s.close());
  return s;
}

const relay = (url, options) => scope.relay(url, options);

test("a silent server: every command times out after timeoutMs", async () => {
  const s = await fake(); // accepts the upgrade, never answers
  const r = relay(s.url, { timeoutMs: 300 });
  const log = new EventLog(r);
  await log.next("open");
  const t0 = Date.now();
  const all = await withDeadline(
    Promise.all([r.subscribe("a"), r.unsubscribe("a"), r.send("a", "m"), r.list()].map(settle)),
    "timeouts",
  );
  const elapsed = Date.now() - t0;
  for (const res of all) {
    assert.equal(res.ok, false);
    assert.equal(res.error.reason, "timeout");
    assert.equal(res.error.message, "timeout");
  }
  assert.deepEqual(all.map((x) => x.error.command), ["subscribe", "unsubscribe", "send", "list"]);
  assert.ok(elapsed >= 280, `timed out after ${elapsed} ms`);
  assert.ok(elapsed < 5000, `timed out after ${elapsed} ms`);
  assert.deepEqual(r.subscriptions, []);
  // The connection itself stays up.
  assert.equal(r.connected, true);
});

test("late answers are ignored; a late ok to a subscribe is undone", async () => {
  const s = await fake();
  const r = relay(s.url, { timeoutMs: 200 });
  const log = new EventLog(r);
  await log.next("open");
  const conn = await s.conn(0);

  assert.equal(await reason(r.subscribe("late")), "timeout");
  assert.equal(await reason(r.list()), "timeout");
  const sub = await conn.frame((f) => f.command === "subscribe");
  const lst = await conn.frame((f) => f.command === "list");
  conn.answer(lst, { ok: true, channels: ["x"] });
  conn.answer(sub);
  // The client unsubscribes the channel it told the user it did not get.
  const unsub = await conn.frame((f) => f.command === "unsubscribe", "the cleanup unsubscribe");
  assert.deepEqual(unsub.data, { topic: "late" });
  assert.notEqual(unsub.nonce, sub.nonce);
  conn.answer(unsub);

  // Commands after that are still correlated correctly.
  s.respond = answerOk;
  assert.deepEqual(await r.list(), []);
  assert.deepEqual(r.subscriptions, []);
  assert.equal(log.all("error").length, 0);
});

test("answers are matched by nonce, not by order", async () => {
  const s = await fake();
  const r = relay(s.url);
  const conn = await s.conn(0);
  const p1 = r.subscribe("one");
  const p2 = r.subscribe("two", { password: "pw" });
  const p3 = r.list();
  const f1 = await conn.frame((f) => f.data && f.data.topic === "one");
  const f2 = await conn.frame((f) => f.data && f.data.topic === "two");
  const f3 = await conn.frame((f) => f.command === "list");
  assert.deepEqual(f2.data, { topic: "two", password: "pw" });
  conn.answer(f3, { ok: true, channels: ["one", "two"] });
  conn.answer(f2, { ok: false, reason: "invalid password" });
  conn.answer(f1);
  assert.deepEqual(await p3, ["one", "two"]);
  assert.equal(await reason(p2), "invalid password");
  assert.equal(await p1, undefined);
  assert.deepEqual(r.subscriptions, ["one"]);
});

test("the unsubscribed notice: event, and the channel is not restored", async () => {
  const s = await fake();
  s.respond = answerOk;
  const r = relay(s.url, FAST);
  const log = new EventLog(r);
  await log.next("open"); // the first connection
  await r.subscribe("keep", { password: "k" });
  await r.subscribe("lost");
  assert.deepEqual(r.subscriptions, ["keep", "lost"]);

  const c0 = await s.conn(0);
  c0.sendJson({ type: "unsubscribed", data: { channel: "lost", reason: "channel reservation lost" } });
  assert.deepEqual(await log.next("unsubscribed"), { channel: "lost", reason: "channel reservation lost" });
  assert.deepEqual(r.subscriptions, ["keep"]);

  c0.drop();
  await log.next("close");
  await log.next("open");
  const c1 = await s.conn(1);
  await c1.frame((f) => f.command === "subscribe", "the restore");
  assert.deepEqual(
    c1.frames.map((f) => [f.command, f.data]),
    [["subscribe", { topic: "keep", password: "k" }]],
  );
});

test("unsubscribe while disconnected: settled at once, not restored", async () => {
  const s = await fake();
  s.respond = answerOk;
  const r = relay(s.url, FAST);
  const log = new EventLog(r);
  await log.next("open"); // the first connection
  await r.subscribe("gone");
  await r.subscribe("stays");
  s.refuse = true;
  (await s.conn(0)).drop();
  await log.next("close");
  await log.next("reconnecting", (e) => e.attempt >= 2); // an attempt was refused
  assert.equal(await withDeadline(r.unsubscribe("gone"), "the local unsubscribe"), undefined);
  assert.deepEqual(r.subscriptions, ["stays"]);
  s.refuse = false;
  await log.next("open");
  const c1 = await s.conn(1);
  assert.deepEqual(c1.frames.map((f) => f.data), [{ topic: "stays" }]);
});

test("restore goes first, queued commands after its answers; a failed restore is reported", async () => {
  const s = await fake();
  s.respond = answerOk;
  const r = relay(s.url, FAST);
  const log = new EventLog(r);
  await log.next("open"); // the first connection
  await r.subscribe("a", { password: "pa" });
  await r.subscribe("b");
  await r.subscribe("c");

  s.respond = null; // answer by hand from now on
  (await s.conn(0)).drop();
  await log.next("close");
  assert.equal(r.connected, false);
  const q1 = r.send("a", "queued-1");
  const q2 = r.list();
  const q3 = r.send("c", "queued-2");

  const c1 = await s.conn(1);
  const restores = [];
  for (const topic of ["a", "b", "c"]) {
    restores.push(await c1.frame((f) => f.command === "subscribe" && f.data.topic === topic, `restore ${topic}`));
  }
  assert.deepEqual(restores.map((f) => f.data), [{ topic: "a", password: "pa" }, { topic: "b" }, { topic: "c" }]);
  // Nothing queued went out with the restores.
  assert.deepEqual(c1.frames.map((f) => f.command), ["subscribe", "subscribe", "subscribe"]);
  assert.equal(r.connected, false);

  c1.answer(restores[2]);
  c1.answer(restores[1], { ok: false, reason: "invalid password" });
  c1.answer(restores[0]);
  assert.deepEqual(await log.next("unsubscribed"), { channel: "b", reason: "invalid password" });
  await log.next("open");
  assert.equal(log.all("open").length, 2);
  assert.equal(r.connected, true);
  const sent = [];
  for (const pred of [(f) => f.command === "send" && f.data.message === "queued-1",
                      (f) => f.command === "list",
                      (f) => f.command === "send" && f.data.message === "queued-2"]) {
    const f = await c1.frame(pred, "a queued command");
    sent.push(f);
    c1.answer(f, f.command === "list" ? { ok: true, channels: ["a", "c"] } : { ok: true });
  }
  assert.deepEqual(c1.frames.map((f) => f.command), ["subscribe", "subscribe", "subscribe", "send", "list", "send"]);
  assert.equal(await q1, undefined);
  assert.deepEqual(await q2, ["a", "c"]);
  assert.equal(await q3, undefined);
  assert.deepEqual(r.subscriptions, ["a", "c"]);
});

test("a restore that is never answered drops the connection and tries again", async () => {
  const s = await fake();
  s.respond = answerOk;
  const r = relay(s.url, { ...FAST, timeoutMs: 200 });
  const log = new EventLog(r);
  await log.next("open"); // the first connection
  await r.subscribe("x");
  s.respond = null;
  (await s.conn(0)).drop();
  const c1 = await s.conn(1);
  await c1.frame((f) => f.command === "subscribe");
  await log.next("close", (e) => e.code === 4408 && e.reason === "timeout");
  s.respond = answerOk;
  const c2 = await s.conn(2);
  await c2.frame((f) => f.command === "subscribe" && f.data.topic === "x");
  await log.next("open");
  assert.deepEqual(r.subscriptions, ["x"]);
});

test("a drop rejects what was written with disconnected; reconnect: false stops there", async () => {
  const s = await fake();
  const r = relay(s.url, { reconnect: false });
  const log = new EventLog(r);
  await log.next("open");
  const c0 = await s.conn(0);
  const p = r.list();
  await c0.frame((f) => f.command === "list");
  c0.drop();
  assert.equal(await reason(p), "disconnected");
  assert.equal((await log.next("close")).code, 1006);
  assert.equal(await reason(r.send("a", "b")), "disconnected");
  assert.equal(await reason(r.subscribe("a")), "disconnected");
  assert.equal(log.all("reconnecting").length, 0);
  assert.equal(s.conns.length, 1);
});

test("close(): pending and queued commands are rejected with closed, no reconnect", async () => {
  const s = await fake();
  const r = relay(s.url, FAST);
  const log = new EventLog(r);
  await log.next("open");
  const c0 = await s.conn(0);
  const inflight = r.subscribe("p");
  await c0.frame((f) => f.command === "subscribe");
  r.close();
  assert.equal(await reason(inflight), "closed");
  assert.deepEqual(await log.next("close"), { code: 1000, reason: "closed" });
  await c0.closed; // the socket really goes
  assert.equal(await reason(r.list()), "closed");
  r.close(); // idempotent
  assert.equal(log.all("close").length, 1);

  // Closed while waiting to reconnect: queued commands are rejected too.
  const r2 = relay(s.url, { minDelayMs: 60000, maxDelayMs: 60000 });
  const log2 = new EventLog(r2);
  await log2.next("open");
  (await s.conn(1)).drop();
  await log2.next("reconnecting");
  const queued = [r2.send("a", "1"), r2.subscribe("b")];
  r2.close();
  const res = await Promise.all(queued.map(settle));
  assert.deepEqual(res.map((x) => x.error.reason), ["closed", "closed"]);
  assert.equal(r2.connected, false);
  await tick();
  assert.equal(s.conns.length, 2);
  // No timer is left behind: this file's process could not exit otherwise.
});

test("the queue is bounded while disconnected", async () => {
  // Nothing listens: every attempt fails, so the relay never connects.
  const s = await fake();
  const port = s.port;
  await s.close();
  scope.drop();
  const r = relay(`ws://127.0.0.1:${port}/connect`, { ...FAST, maxQueue: 2 });
  const log = new EventLog(r);
  const a = settle(r.send("c", "1"));
  const b = settle(r.subscribe("c"));
  let rejected = null;
  r.send("c", "3").catch((e) => (rejected = e.reason));
  await tick();
  assert.equal(rejected, "queue full");
  await log.next("reconnecting", (e) => e.attempt >= 3);
  r.close();
  assert.deepEqual((await a).error.reason, "closed");
  assert.deepEqual((await b).error.reason, "closed");
  assert.equal(log.all("open").length, 0);
  assert.equal(log.all("close").length, 0);
});

test("reconnecting: attempts count up and delays follow full jitter", async () => {
  const s = await fake();
  const port = s.port;
  await s.close();
  scope.drop();
  const r = relay(`ws://127.0.0.1:${port}/connect`, { minDelayMs: 4, maxDelayMs: 20 });
  const log = new EventLog(r);
  await log.next("reconnecting", (e) => e.attempt === 8);
  r.close();
  const events = log.all("reconnecting");
  events.forEach((e, i) => {
    assert.equal(e.attempt, i + 1);
    const ceiling = Math.min(20, 4 * 2 ** (e.attempt - 1));
    assert.ok(e.delayMs >= 0 && e.delayMs <= ceiling, `attempt ${e.attempt}: ${e.delayMs} > ${ceiling}`);
    assert.ok(Number.isInteger(e.delayMs));
  });
});

test("close 1012 (a draining node): reconnect now with a little jitter, not the backoff", async () => {
  const s = await fake();
  s.respond = answerOk;
  // a backoff this long would show: the first attempt alone waits up to 20 s
  const r = relay(s.url, { minDelayMs: 20000, maxDelayMs: 30000 });
  const log = new EventLog(r);
  await log.next("open");
  await r.subscribe("x");
  for (let i = 0; i < 3; i++) {
    const conn = await s.conn(i);
    conn.closeWith(1012, "service restart");
    const closed = await log.next("close", (e) => e.code === 1012);
    assert.equal(closed.reason, "service restart");
    const rec = await log.next("reconnecting");
    assert.equal(rec.attempt, 1);
    assert.ok(Number.isInteger(rec.delayMs));
    assert.ok(rec.delayMs >= 0 && rec.delayMs <= 1000, `delay ${rec.delayMs} ms after 1012`);
    // reconnected, and the subscription restored on the new connection
    const next = await s.conn(i + 1);
    await next.frame((f) => f.command === "subscribe" && f.data.topic === "x");
    await log.next("open");
  }
  assert.deepEqual(r.subscriptions, ["x"]);
});
