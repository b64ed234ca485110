// Presence (PROTOCOL.md 7.4) through the client library, on a real node:
// presence() with logged-in and anonymous subscribers, the "join" and
// "leave" events of a subscription with presenceEvents (none for the
// client's own join, one per user across tabs), and presenceEvents kept
// when the subscription is restored after a reconnect. Against the fake
// server: the exact frames written (presence_events beside since on a
// restore, only when asked for) and a partial answer.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";

import { EventLog, FakeServer, Node, Scope, reason, tapWebSocket } from "./helpers.mjs";

const SECRET = "js-presence-secret";
const FAST = { minDelayMs: 20, maxDelayMs: 200 };
const scope = new Scope();

function b64u(s) {
  return Buffer.from(s).toString("base64url");
}

function mint(sub) {
  const h = b64u(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const p = b64u(JSON.stringify({ sub, exp: Math.floor(Date.now() / 1000) + 3600 }));
  const sig = createHmac("sha256", SECRET).update(`${h}.${p}`).digest("base64url");
  return `${h}.${p}.${sig}`;
}

async function startNode() {
  const node = await Node.start();
  const key = path.join(node.dir, "presence.key");
  writeFileSync(key, SECRET);
  node.toml = `[auth]\nhs256_secret_file = ${JSON.stringify(key)}\n`;
  await node.restart();
  scope.defer(() => node.dispose());
  return node;
}

test("presence(): clients and the logged-in users, sorted", async () => {
  const node = await startNode();
  const bob = scope.relay(node.url, { ...FAST, token: mint("bob") });
  const alice = scope.relay(node.url, { ...FAST, token: mint("alice") });
  const anon = scope.relay(node.url, FAST);
  for (const r of [bob, alice, anon]) await r.subscribe("room");
  assert.deepEqual(await anon.presence("room"), { clients: 3, users: ["alice", "bob"], partial: false });
  await assert.rejects(anon.presence("elsewhere"), { reason: "not subscribed" });
});

test("join and leave: not for oneself, once per user, restored after a reconnect", async () => {
  const node = await startNode();
  const tap = tapWebSocket();
  const lena = scope.relay(node.url, { ...FAST, token: mint("lena"), WebSocket: tap.WebSocket });
  const log = new EventLog(lena);
  await lena.subscribe("room", { presenceEvents: true });
  const bob1 = scope.relay(node.url, { ...FAST, token: mint("bob") });
  await bob1.subscribe("room");
  assert.deepEqual(await log.next("join"), { channel: "room", user: "bob" });
  // a second tab of bob: no event; carol's join comes next
  const bob2 = scope.relay(node.url, { ...FAST, token: mint("bob") });
  await bob2.subscribe("room");
  const carol = scope.relay(node.url, { ...FAST, token: mint("carol") });
  await carol.subscribe("room");
  assert.deepEqual(await log.next("join"), { channel: "room", user: "carol" });
  bob1.close();
  await carol.unsubscribe("room");
  assert.deepEqual(await log.next("leave"), { channel: "room", user: "carol" });
  bob2.close();
  assert.deepEqual(await log.next("leave"), { channel: "room", user: "bob" });
  assert.equal(log.all("join").length, 2);
  // the connection drops: the subscription comes back with its events
  await log.next("open"); // the first connection's
  tap.drop();
  await log.next("open"); // the restored one
  const dave = scope.relay(node.url, { ...FAST, token: mint("dave") });
  await dave.subscribe("room");
  assert.deepEqual(await log.next("join"), { channel: "room", user: "dave" });
});

test("fake server: the frames written, a partial answer, the events as sent", async () => {
  const s = await FakeServer.start();
  scope.defer(() => s.close());
  let epoch = "e1";
  s.respond = (conn, f) => {
    if (f.command === "subscribe") {
      const d = f.data.recover || f.data.since ? { ok: true, epoch, offset: 7, recovered: false } : { ok: true };
      conn.answer(f, d);
    } else if (f.command === "presence" && f.data.channel === "room") {
      conn.answer(f, { ok: true, clients: 4, users: ["ann", "ben"], partial: true });
    } else if (f.command === "presence") {
      conn.answer(f, { ok: false, reason: "not subscribed" });
    } else conn.answer(f);
  };
  const r = scope.relay(s.url, FAST);
  const log = new EventLog(r);
  await r.subscribe("room", { recover: true, presenceEvents: true });
  await r.subscribe("quiet");
  const c0 = await s.conn(0);
  const subs = c0.frames.filter((f) => f.command === "subscribe").map((f) => f.data);
  assert.deepEqual(subs, [{ topic: "room", recover: true, presence_events: true }, { topic: "quiet" }]);

  assert.deepEqual(await r.presence("room"), { clients: 4, users: ["ann", "ben"], partial: true });
  const ask = await c0.frame((f) => f.command === "presence");
  assert.deepEqual(ask.data, { channel: "room" });
  assert.equal(await reason(r.presence("other")), "not subscribed");

  c0.sendJson({ type: "join", data: { channel: "room", user: "cid" } });
  assert.deepEqual(await log.next("join"), { channel: "room", user: "cid" });
  c0.sendJson({ type: "leave", data: { channel: "room", user: "cid" } });
  assert.deepEqual(await log.next("leave"), { channel: "room", user: "cid" });

  // the restore after a drop: presence_events beside since; none on the other
  await log.next("open");
  epoch = "e2";
  c0.drop();
  const c1 = await s.conn(1);
  const room = await c1.frame((f) => f.command === "subscribe" && f.data.topic === "room", "room restored");
  assert.deepEqual(room.data, { topic: "room", since: { epoch: "e1", offset: 7 }, presence_events: true });
  const quiet = await c1.frame((f) => f.command === "subscribe" && f.data.topic === "quiet", "quiet restored");
  assert.deepEqual(quiet.data, { topic: "quiet" });
});
