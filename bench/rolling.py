#!/usr/bin/python3
"""
Rolling upgrade of a 3-node mesh (issue 12, point 5), end to end.

Three wsrelay nodes a, b, c in a full mesh; CLIENTS subscribers spread over
them (client i starts on node i % 3, channel "room<i % CHANNELS>"); one
publisher sending RATE messages a second round-robin over the channels.
Each node in turn gets SIGUSR2 (the lame-duck drain: 1012 "service
restart" spread over drain_ms), exits, and is started again with the same
config and port; the next drain starts once the restarted node is back in
the mesh and every client is subscribed again.

Clients behave like the JS library (clients/js/wsrelay.js) behind a load
balancer: on a 1012 close they reconnect after a uniform 0-1 s jitter to a
random other node; a refused attempt (503 while draining, connection
refused while down) retries with full-jitter backoff from 100 ms; after
every (re)connection they subscribe again.

Figures, per drain and in total:
  moved         clients that were on the drained node
  disconnects   the most any one client saw during that drain (goal <= 1)
  recovered     seconds from the signal until every moved client was
                subscribed again elsewhere (drain_ms bounds the spread)
  rejoined      seconds from the node's restart to its links being back
  missed        messages published while a client was between sessions
                (expected without history: nothing replays across nodes)
  lost          messages published while a client was subscribed that it
                never received (goal 0); the first 100 ms of a session
                (a send racing the subscribe) and the last 250 ms (in
                flight when the node closed it) are not counted
At the end every client must be subscribed again: one marker message per
channel must reach all of them.

Usage: rolling.py WSRELAY [--clients 300] [--rate 200] [--channels 10]
                  [--drain-ms 10000] [--keep]
Exit status 0 when every goal held, 1 otherwise.
"""

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import websockets

TOKEN = "rolling-upgrade-mesh-token"
READY = re.compile(r"listening on https?://[^ ]*:(\d+)")
SESSION_TAIL = 0.25  # seconds at a session's end not counted as lost
SESSION_HEAD = 0.1  # and at its start (a send racing the subscribe)
STEP_DEADLINE = 60  # seconds for any one phase


class Node:
    def __init__(self, binary, workdir, name, peers):
        self.binary, self.name, self.peers = binary, name, peers
        self.workdir = workdir
        self.port = 0
        self.proc = None
        self.starts = 0

    def config(self):
        lines = ["[node]", f'name = "{self.name}"',
                 f'listen = "127.0.0.1:{self.port}"', f'token = "{TOKEN}"',
                 f"drain_ms = {self.drain_ms}", "", "[log]",
                 'level = "info"']
        for p in self.peers:
            lines += ["", "[[peers]]", f'name = "{p.name}"',
                      f'url = "ws://127.0.0.1:{p.port}/node"',
                      f'token = "{TOKEN}"']
        return "\n".join(lines) + "\n"

    def start(self):
        cfg = os.path.join(self.workdir, f"{self.name}.toml")
        with open(cfg, "w") as f:
            f.write(self.config())
        self.starts += 1
        log = open(os.path.join(self.workdir,
                                f"{self.name}.{self.starts}.log"), "w")
        self.proc = subprocess.Popen([self.binary, "-c", cfg],
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        ready = threading.Event()

        def read():
            for raw in iter(self.proc.stderr.readline, b""):
                line = raw.decode("utf-8", "replace")
                log.write(line)
                log.flush()
                m = READY.search(line)
                if m and not ready.is_set():
                    self.port = int(m.group(1))
                    ready.set()
            log.close()
        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(STEP_DEADLINE):
            raise RuntimeError(f"node {self.name} did not start")

    def url(self):
        return f"ws://127.0.0.1:{self.port}/connect"

    def peers_up(self):
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/api/node", timeout=2) as r:
                return {p["name"] for p in json.load(r)["peers"]}
        except (OSError, ValueError):
            return set()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def until(pred, what, timeout=STEP_DEADLINE, every=0.05):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


class Session:
    """One client's or the publisher's connection, reconnecting elsewhere."""

    def __init__(self, sc, start_node, channels):
        self.sc, self.node, self.channels = sc, start_node, channels
        self.ws = None
        self.subscribed = False
        self.sessions = []  # [node, subscribed at, ended at or None]
        self.closes = []  # (time, node name, close code)
        self.received = set()  # sequence numbers

    def other_node(self, avoid):
        choices = [n for n in self.sc.nodes if n is not avoid]
        return random.choice(choices)

    async def run(self):
        attempt = 0
        while not self.sc.done:
            try:
                ws = await websockets.connect(
                    self.node.url(), open_timeout=5, ping_interval=None,
                    close_timeout=2, max_size=None)
            except (OSError, asyncio.TimeoutError,
                    websockets.exceptions.InvalidHandshake):
                attempt += 1
                self.node = self.other_node(self.node)
                cap = min(2.0, 0.1 * 2 ** min(attempt - 1, 5))
                await asyncio.sleep(random.uniform(0, cap))
                continue
            attempt = 0
            self.ws = ws
            code = None
            try:
                for ch in self.channels:
                    await ws.send(json.dumps({"command": "subscribe",
                                              "data": {"topic": ch},
                                              "nonce": "s:" + ch}))
                pending = set(self.channels)
                async for raw in ws:
                    f = json.loads(raw)
                    if f.get("type") == "message":
                        self.received.add(int(f["data"]["message"]))
                    elif f.get("type") == "response":
                        self.on_response(f, pending)
            except websockets.exceptions.ConnectionClosed:
                pass
            code = ws.close_code
            self.ws = None
            self.subscribed = False
            now = time.monotonic()
            if self.sessions and self.sessions[-1][2] is None:
                self.sessions[-1][2] = now
            if self.sc.done:
                return
            self.closes.append((now, self.node.name, code))
            gone = self.node
            self.node = self.other_node(gone)
            # like the JS library: 1012 is "reconnect now, with jitter"
            await asyncio.sleep(random.uniform(0, 1.0) if code == 1012
                                else random.uniform(0, 0.1))

    def on_response(self, f, pending):
        nonce = f.get("nonce", "")
        if nonce.startswith("s:"):
            if not f["data"].get("ok"):
                raise RuntimeError(f"subscribe refused: {f}")
            pending.discard(nonce[2:])
            if not pending:
                self.subscribed = True
                self.sessions.append([self.node, time.monotonic(), None])


class Publisher(Session):
    def __init__(self, sc, start_node, channels):
        super().__init__(sc, start_node, channels)
        self.acked = {}  # seq -> (time acked, channel)
        self.sent_at = {}

    def on_response(self, f, pending):
        nonce = f.get("nonce", "")
        if nonce.startswith("p:"):
            seq = int(nonce[2:])
            if f["data"].get("ok"):
                self.acked[seq] = (time.monotonic(),
                                   self.channels[seq % len(self.channels)])
            return
        super().on_response(f, pending)

    async def publish(self, rate):
        seq = 0
        t0 = time.monotonic()
        while not self.sc.done:
            seq += 1
            due = t0 + seq / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            ws = self.ws
            if ws is None or not self.subscribed:
                continue  # between sessions: this one is not sent
            ch = self.channels[seq % len(self.channels)]
            try:
                await ws.send(json.dumps({
                    "command": "send",
                    "data": {"channel": ch, "message": str(seq)},
                    "nonce": f"p:{seq}"}))
            except websockets.exceptions.ConnectionClosed:
                pass


class Scenario:
    def __init__(self, binary, clients, rate, nchannels, drain_ms, workdir,
                 session_head=SESSION_HEAD, session_tail=SESSION_TAIL):
        self.done = False
        self.session_head, self.session_tail = session_head, session_tail
        self.lost_examples = []
        a = Node(binary, workdir, "a", [])
        b = Node(binary, workdir, "b", [a])
        c = Node(binary, workdir, "c", [a, b])
        self.nodes = [a, b, c]
        for n in self.nodes:
            n.drain_ms = drain_ms
        self.channels = [f"room{i}" for i in range(nchannels)]
        self.subs = [Session(self, self.nodes[i % 3],
                             [self.channels[i % nchannels]])
                     for i in range(clients)]
        self.pub = Publisher(self, self.nodes[0], self.channels)
        self.rate = rate
        self.drain_ms = drain_ms

    def all_subscribed(self):
        return all(s.subscribed for s in self.subs + [self.pub])

    def mesh_whole(self):
        return all(n.peers_up() == {m.name for m in self.nodes if m is not n}
                   for n in self.nodes)

    async def drain(self, node):
        moved = [s for s in self.subs if s.subscribed and s.node is node]
        before = {id(s): len(s.closes) for s in self.subs}
        t0 = time.monotonic()
        node.proc.send_signal(signal.SIGUSR2)
        await until(lambda: node.proc.poll() is not None,
                    f"{node.name} to exit after its drain",
                    timeout=self.drain_ms / 1000 + 30)
        exited = time.monotonic() - t0
        rc = node.proc.returncode
        await until(lambda: all(s.subscribed and s.node is not node
                                for s in moved),
                    "the moved clients to subscribe elsewhere")
        recovered = max([s.sessions[-1][1] for s in moved] or [t0]) - t0
        t1 = time.monotonic()
        node.start()  # same config, same port
        await until(self.mesh_whole, f"{node.name} back in the mesh")
        rejoined = time.monotonic() - t1
        await until(self.all_subscribed, "every client subscribed")
        extra = [len(s.closes) - before[id(s)] for s in self.subs]
        return {"node": node.name, "moved": len(moved),
                "max_disconnects": max(extra), "exit_status": rc,
                "exited_s": round(exited, 2),
                "recovered_s": round(recovered, 2),
                "rejoined_s": round(rejoined, 2),
                "t": (t0, time.monotonic())}

    def losses(self, t_from, t_to):
        """(missed between sessions, lost within sessions) for messages
        acked in [t_from, t_to); the first lost ones are kept in
        self.lost_examples to be printed."""
        missed = lost = 0
        acked = [(seq, t, ch) for seq, (t, ch) in self.pub.acked.items()
                 if t_from <= t < t_to]
        for s in self.subs:
            ch = s.channels[0]
            for seq, t, c in acked:
                if c != ch or seq in s.received:
                    continue
                inside = [(node, st, end) for node, st, end in s.sessions
                          if st + self.session_head <= t and
                          (end is None or t < end - self.session_tail)]
                if inside:
                    lost += 1
                    node, st, end = inside[0]
                    if len(self.lost_examples) < 5:
                        self.lost_examples.append(
                            f"seq {seq} on {ch}: acked {t - st:.3f} s into "
                            f"a session on {node.name}" +
                            (f", {end - t:.3f} s before its end"
                             if end is not None else ""))
                else:
                    missed += 1
        return missed, lost

    async def final_check(self):
        """One marker per channel reaches every client."""
        base = 10 ** 9
        for i, ch in enumerate(self.channels):
            await self.pub.ws.send(json.dumps({
                "command": "send",
                "data": {"channel": ch, "message": str(base + i)},
                "nonce": f"m:{i}"}))
        await until(lambda: all(base + self.channels.index(s.channels[0])
                                in s.received for s in self.subs),
                    "the final markers at every client", timeout=15)

    async def run(self, log):
        for n in self.nodes:
            n.start()
        await until(self.mesh_whole, "the mesh to form")
        tasks = [asyncio.create_task(s.run()) for s in self.subs + [self.pub]]
        pub = asyncio.create_task(self.pub.publish(self.rate))
        results = []
        try:
            await until(self.all_subscribed, "every client subscribed")
            await asyncio.sleep(1)  # steady traffic before the first drain
            for node in self.nodes:
                r = await self.drain(node)
                r["missed"], r["lost"] = self.losses(*r.pop("t"))
                log(f"drain {r['node']}: moved {r['moved']} clients, "
                    f"max disconnects per client {r['max_disconnects']}, "
                    f"exit {r['exit_status']} after {r['exited_s']} s, "
                    f"all moved resubscribed {r['recovered_s']} s after "
                    f"the signal, node back in the mesh "
                    f"{r['rejoined_s']} s after its restart, "
                    f"missed {r['missed']}, lost {r['lost']}")
                for ex in self.lost_examples:
                    log(f"  lost: {ex}")
                self.lost_examples.clear()
                results.append(r)
            await asyncio.sleep(1)
            await self.final_check()
        finally:
            self.done = True
            pub.cancel()
            for s in self.subs + [self.pub]:
                if s.ws is not None:
                    await s.ws.close()
            await asyncio.gather(*tasks, pub, return_exceptions=True)
            for n in self.nodes:
                n.stop()
        deliveries = sum(len(s.received) for s in self.subs)
        total = {"published": len(self.pub.acked),
                 "deliveries": deliveries,
                 "max_disconnects_per_drain": max(r["max_disconnects"]
                                                  for r in results),
                 "max_recovered_s": max(r["recovered_s"] for r in results),
                 "missed": sum(r["missed"] for r in results),
                 "lost": sum(r["lost"] for r in results),
                 "exit_statuses": [r["exit_status"] for r in results],
                 "drains": results}
        return total


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("wsrelay")
    ap.add_argument("--clients", type=int, default=300)
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--channels", type=int, default=10)
    ap.add_argument("--drain-ms", type=int, default=10000)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="wsrelay-rolling.")
    sc = Scenario(os.path.abspath(a.wsrelay), a.clients, a.rate, a.channels,
                  a.drain_ms, workdir)
    print(f"rolling upgrade: 3 nodes, {a.clients} clients on "
          f"{a.channels} channels, publisher {a.rate:g} msg/s, drain_ms "
          f"{a.drain_ms}")
    t = sc.run(lambda s: print("  " + s, flush=True))
    total = asyncio.run(t)
    ok = (total["max_disconnects_per_drain"] <= 1 and total["lost"] == 0
          and total["exit_statuses"] == [0, 0, 0])
    print(f"summary: published {total['published']}, deliveries "
          f"{total['deliveries']}, max disconnects per client per drain "
          f"{total['max_disconnects_per_drain']}, slowest recovery "
          f"{total['max_recovered_s']} s, missed between sessions "
          f"{total['missed']}, lost within sessions {total['lost']}, "
          f"every client subscribed at the end: yes -> "
          f"{'PASS' if ok else 'FAIL'}")
    if a.keep:
        print(f"logs and configs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
