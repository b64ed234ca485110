// History and recovery (PROTOCOL.md 7.3) through the client library, on a
// real node: a recovering subscription misses nothing across a dropped
// connection, reports it on "open", and fires "gap" when the node cannot
// replay (a restarted node has new epochs); history(); since from a saved
// position.

import { test } from "node:test";
import assert from "node:assert/strict";

import { EventLog, Node, Scope, tapWebSocket, withDeadline } from "./helpers.mjs";

const FAST = { minDelayMs: 20, maxDelayMs: 200 };
const HISTORY = "[history]\nsize = 500\n";

const scope = new Scope();

async function startNode() {
  const node = await Node.start({ toml: HISTORY });
  scope.defer(() => node.dispose());
  return node;
}

const relay = (url, options) => scope.relay(url, options);

test("a dropped connection: the missed messages are replayed, in order, then live ones", async () => {
  const node = await startNode();
  const pub = relay(node.url, FAST);
  const tap = tapWebSocket();
  const sub = relay(node.url, { ...FAST, WebSocket: tap.WebSocket });
  const log = new EventLog(sub);
  await pub.subscribe("jr");
  const first = await sub.subscribe("jr", { recover: true });
  assert.equal(typeof first.epoch, "string");
  assert.equal(first.offset, 0);
  await log.next("open");
  await pub.send("jr", "m0");
  const m0 = await log.message("jr", "m0");
  assert.equal(m0.offset, 1);
  assert.deepEqual(sub.position("jr"), { epoch: first.epoch, offset: 1 });

  tap.hold(); // the reconnect waits until the missed messages are sent
  tap.drop();
  await log.next("close");
  for (let i = 1; i <= 50; i++) await pub.send("jr", `m${i}`);
  tap.release();
  const open = await log.next("open");
  assert.deepEqual(open, { recovered: { jr: true } });
  for (let i = 1; i <= 50; i++) {
    const m = await log.next("message");
    assert.deepEqual([m.message, m.offset], [`m${i}`, i + 1]);
  }
  await pub.send("jr", "live");
  const live = await log.next("message");
  assert.deepEqual([live.message, live.offset], ["live", 52]);
  assert.equal(log.all("gap").length, 0);
  assert.deepEqual(sub.position("jr"), { epoch: first.epoch, offset: 52 });
});

test("a restarted node: a gap, and deliveries go on from its position", async () => {
  const node = await startNode();
  const sub = relay(node.url, FAST);
  const log = new EventLog(sub);
  const first = await sub.subscribe("jg", { recover: true });
  await node.restart();
  const gap = await log.next("gap");
  assert.equal(gap.channel, "jg");
  assert.deepEqual(gap.from, { epoch: first.epoch, offset: 0 });
  assert.notEqual(gap.to.epoch, first.epoch);
  const open = await log.next("open", (o) => Object.keys(o.recovered).length > 0);
  assert.deepEqual(open.recovered, { jg: false });
  const pub = relay(node.url, FAST);
  await pub.subscribe("jg");
  await pub.send("jg", "after");
  const m = await log.message("jg", "after");
  assert.equal(m.offset, gap.to.offset + 1);
});

test("history() and a subscribe from a saved position", async () => {
  const node = await startNode();
  const pub = relay(node.url, FAST);
  await pub.subscribe("jh");
  for (let i = 0; i < 5; i++) await pub.send("jh", `h${i}`);
  const h = await pub.history("jh", 2);
  assert.deepEqual(h.messages, [
    { message: "h3", offset: 4 },
    { message: "h4", offset: 5 },
  ]);
  assert.equal(h.offset, 5);
  const other = relay(node.url, FAST);
  const log = new EventLog(other);
  const res = await other.subscribe("jh", { since: { epoch: h.epoch, offset: 3 } });
  assert.deepEqual(res, { epoch: h.epoch, offset: 5, recovered: true });
  assert.deepEqual((await log.next("message")).message, "h3");
  assert.deepEqual((await log.next("message")).message, "h4");
  await assert.rejects(withDeadline(relay(node.url, FAST).history("jh"), "history"), { reason: "not subscribed" });
  assert.throws(() => other.subscribe("x", { since: { epoch: "e" } }), TypeError);
});
