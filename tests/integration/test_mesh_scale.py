"""
Mesh cost and correctness at scale (PROTOCOL.md 3.3, 3.5, 3.6, 4.2, 4.5)
on real node processes over loopback, every node with max_peers = 0 (or 1)
so that the links are exactly the configured ones:

* a message sent the moment a 2-hop subscriber's subscribe is answered
  reaches it (the reservation is known along the path before the ok);
* delivery survives a crashed and a frozen relay when another path exists,
  and keeps working long after;
* a max_peers = 1 line whose middle node dies relinks its two ends;
* channel messages cross exactly the edges of the shortest-path tree from
  the publisher's node to the holders (line and ring of 7);
* an idle mesh's INM traffic is bounded by its links, not by its size;
* a crashed holder leaves every holder set within peer_timeout plus one
  announce period;
* a node that only speaks the full announce of 3.6 is still understood.

No sleeps: every wait is for an observable state with a deadline; the two
measurement windows (idle traffic, 10 s of deliveries) poll the mesh.
"""

import asyncio
import contextlib
import math
import time
from collections import deque

import pytest
import websockets.exceptions

from conftest import DEADLINE, Pool, command, delivery, fail, metrics, ok, run
from meshutil import (ANNOUNCE_S, CONVERGE_S, GONE_S, PEER_TIMEOUT_S, TOKEN,
                      FakeNode, aapi_node, aviews, eventually, kill9, paused,
                      pbkdf2_hex, peer_names, pw_hash, restart, start_mesh, start_node,
                      wait_client_lists, wait_converged, wait_peers)

# Extra time a timing bound allows for a loaded 2-core machine and an
# ASan/UBSan build (timers fire late, requests are answered late).
SLACK_S = 2.5

BY_TYPE = "wsrelay_inm_packets_out_by_type_total"


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

async def deliver_batch(pub, subs, chan, tag, n=20, timeout=DEADLINE / 2):
    """Sends n messages from pub and asserts that every subscriber in subs
    receives all n, in order, exactly once."""
    for i in range(n):
        await pub.send(command("send", {"channel": chan, "message": f"{tag} #{i}"},
                               nonce=f"{tag}-{i}"))
    for i in range(n):
        assert await pub.recv() == ok(f"{tag}-{i}"), (tag, i)
    want = [delivery(f"{tag} #{i}", chan, f"{tag}-{i}") for i in range(n)]
    for sub in subs:
        got = []
        deadline = time.monotonic() + timeout
        try:
            while len(got) < n:
                got.append(await sub.recv(max(0.01, deadline - time.monotonic())))
        except asyncio.TimeoutError:
            pass
        seen = {g["nonce"] for g in got if isinstance(g, dict) and "nonce" in g}
        missing = [i for i in range(n) if f"{tag}-{i}" not in seen]
        assert got == want, (f"{tag}: {n - len(missing)} of {n} delivered, "
                             f"missing #{missing}; got {got[:3]}...")
        await sub.expect_quiet(marker=f"quiet-{tag}")


async def deliver_for(pub, sub, chan, tag, seconds):
    """Sends one message at a time for `seconds` of real time; each must
    be delivered before the next is sent. Returns how many were sent."""
    t0 = time.monotonic()
    i = 0
    while time.monotonic() - t0 < seconds:
        n = f"{tag}-{i}"
        assert await pub.publish(chan, f"{tag} #{i}", nonce=n) == ok(n)
        try:
            got = await sub.recv(DEADLINE / 2)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"{tag}: message #{i} not delivered, {time.monotonic() - t0:.1f}s "
                f"into the window ({i} delivered before it)") from None
        assert got == delivery(f"{tag} #{i}", chan, n), (tag, i, got)
        i += 1
    await sub.expect_quiet(marker=f"quiet-{tag}")
    return i


async def wait_members(nodes, timeout, what):
    """Every node in nodes knows exactly the other ones (/api/node
    "nodes") and has no link to anything else."""
    names = {n.name for n in nodes}

    async def check():
        vs = await aviews(nodes)
        detail = {k: {"nodes": sorted(v["nodes"]),
                      "peers": sorted(peer_names(v))} for k, v in vs.items()}
        done = all(set(d["nodes"]) == names - {k} and set(d["peers"]) <= names
                   for k, d in detail.items())
        return done, detail
    return await eventually(check, timeout, what=what)


def edges_of(names, shape):
    """(dialler, target) pairs of a line or a ring over names."""
    edges = [(names[i + 1], names[i]) for i in range(len(names) - 1)]
    if shape == "ring":
        edges.append((names[-1], names[0]))
    return edges


def spt_edges(names, edges, root, targets):
    """Number of edges of the shortest-path (BFS) tree from root that
    reaches every node in targets. The test topologies have no ties."""
    adj = {n: set() for n in names}
    for x, y in edges:
        adj[x].add(y)
        adj[y].add(x)
    parent = {root: None}
    q = deque([root])
    while q:
        u = q.popleft()
        for v in sorted(adj[u]):
            if v not in parent:
                parent[v] = u
                q.append(v)
    tree = set()
    for t in targets:
        while parent[t] is not None:
            tree.add((parent[t], t))
            t = parent[t]
    return len(tree)


def by_type_counts(nodes):
    """{node name: copies of channel-message packets written to links};
    fails clearly when a node does not expose the metric."""
    out, missing = {}, []
    for n in nodes:
        m = metrics(n)
        if BY_TYPE not in m.types and BY_TYPE not in m.names():
            missing.append(n.name)
            continue
        out[n.name] = m.get(BY_TYPE, type="message") or 0.0
    if missing:
        pytest.fail(f"metric missing: {BY_TYPE}{{type=\"message\"}} is not "
                    f"exposed on /metrics of {missing}", pytrace=False)
    return out


# --------------------------------------------------------------------------
# a message sent at the ok of a 2-hop subscriber
# --------------------------------------------------------------------------

def test_message_sent_right_after_two_hop_subscribers_ok_arrives(node_factory):
    # a quiet line A - B - C; max_peers = 0: no A - C link ever forms
    a, b, c = start_mesh(node_factory, "ABC", [("B", "A"), ("C", "B")],
                         max_peers=0)
    tries = 10

    async def body():
        async with Pool() as pool:
            pub, sub = await pool.connect(a), await pool.connect(c)
            lost = []
            for i in range(tries):
                chan = f"fresh-{i}"
                # the publisher opens the channel on A; every node learns it
                assert await pub.subscribe(chan) == ok()
                await wait_converged([a, b, c], chan, password=None, holders=["A"])
                # C's subscribe makes C a holder; A sends at C's ok
                r = await sub.subscribe(chan, nonce=f"s{i}")
                await pub.send(command("send", {"channel": chan, "message": f"first {i}"},
                                       nonce=f"f{i}"))
                assert r == ok(f"s{i}"), r
                assert await pub.recv() == ok(f"f{i}")
                # settle, then a marker: if "first" was lost, the marker is
                # the subscriber's next frame
                await wait_converged([a, b, c], chan, password=None,
                                     holders=["A", "C"])
                assert await pub.publish(chan, f"marker {i}", nonce=f"m{i}") == ok(f"m{i}")
                frame = await sub.recv()
                if frame == delivery(f"first {i}", chan, f"f{i}"):
                    frame = await sub.recv()
                else:
                    lost.append(i)
                assert frame == delivery(f"marker {i}", chan, f"m{i}"), frame
            await sub.expect_quiet()
            await pub.expect_quiet()
            assert not lost, (f"{len(lost)} of {tries} messages sent at the 2-hop "
                              f"subscriber's ok were lost (tries {lost})")
    run(body())


# --------------------------------------------------------------------------
# delivery around a crashed / frozen relay
# --------------------------------------------------------------------------

def test_delivery_survives_crashed_and_frozen_relay(node_factory):
    # X - Y - F - H is a line; Z then joins, linked to H and X: the ring
    # X - Y - F - H - Z - X, whose path X - Z - H avoids F. The line
    # settles first, so what X learned about H came the long way.
    x, y, f, h = start_mesh(node_factory, ["X", "Y", "F", "H"],
                            [("Y", "X"), ("F", "Y"), ("H", "F")], max_peers=0)
    links = {"X": ["Y", "Z"], "Y": ["X", "F"], "F": ["Y", "H"],
             "H": ["F", "Z"], "Z": ["H", "X"]}

    async def body():
        await wait_members([x, y, f, h], CONVERGE_S, "the line in every view")
        z = start_node(node_factory, "Z", peers=[("H", h.port), ("X", x.port)],
                       node_extra={"max_peers": 0})
        await wait_peers([x, y, f, h, z], links, exact=True)
        async with Pool() as pool:
            pub, sub = await pool.connect(x), await pool.connect(h)
            assert await pub.subscribe("around") == ok()
            assert await sub.subscribe("around") == ok()
            await wait_converged([x, y, f, h, z], "around", password=None,
                                 holders=["H", "X"])
            await wait_members([x, y, f, h, z], CONVERGE_S, "all five in every view")
            await deliver_batch(pub, [sub], "around", "before")

            # F crashes: once the survivors' views agree, delivery goes X - Z - H
            survivors = [x, y, h, z]
            kill9(f)
            await wait_members(survivors, GONE_S, "F gone from every survivor's view")
            await wait_peers(survivors, {k: [p for p in v if p != "F"]
                                         for k, v in links.items() if k != "F"},
                             exact=True, timeout=1)
            await deliver_batch(pub, [sub], "around", "after-kill")
            # and it keeps working: 10 s of real time, every message
            sent = await deliver_for(pub, sub, "around", "kill-10s", 10.0)
            assert sent > 0
            await deliver_batch(pub, [sub], "around", "kill-later")

            # F comes back on the same port: the ring is whole again
            f2 = restart(node_factory, f)
            await wait_peers([x, y, f2, h, z], links, exact=True)
            await wait_members([x, y, f2, h, z], CONVERGE_S, "F back in every view")
            await deliver_batch(pub, [sub], "around", "restarted")

            # F frozen for 6 s (> peer_timeout): the others drop it
            t_stop = time.monotonic()
            with paused(f2):
                await wait_members(survivors, GONE_S,
                                   "frozen F gone from every survivor's view")
                await deliver_batch(pub, [sub], "around", "frozen")
                left = 6.0 - (time.monotonic() - t_stop)
                if left > 0:
                    await deliver_for(pub, sub, "around", "frozen-loop", left)
            # SIGCONT: the links come back as before and every view agrees
            await wait_peers([x, y, f2, h, z], links, exact=True)
            await wait_members([x, y, f2, h, z], CONVERGE_S,
                               "thawed F back in every view")
            await deliver_batch(pub, [sub], "around", "thawed")
            await pub.expect_quiet()
    run(body(), timeout=200)


# --------------------------------------------------------------------------
# a max_peers = 1 line relinks when its middle dies
# --------------------------------------------------------------------------

def test_max_peers_1_line_relinks_after_middle_node_killed(node_factory):
    # A and C have only B in [[peers]]; max_peers = 1 keeps it a line
    b, a, c = start_mesh(node_factory, ["B", "A", "C"], [("A", "B"), ("C", "B")],
                         max_peers=1)

    async def body():
        await wait_peers([a, b, c], {"A": ["B"], "B": ["A", "C"], "C": ["B"]},
                         exact=True, timeout=1)
        async with Pool() as pool:
            ca, cc = await pool.connect(a), await pool.connect(c)
            assert await ca.subscribe("relink") == ok()
            assert await cc.subscribe("relink") == ok()
            await wait_converged([a, b, c], "relink", password=None,
                                 holders=["A", "C"])

            budget = PEER_TIMEOUT_S + 2 * ANNOUNCE_S + SLACK_S
            kill9(b)
            t0 = time.monotonic()
            await wait_peers([a, c], {"A": ["C"], "C": ["A"]}, exact=True,
                             timeout=budget)
            took = time.monotonic() - t0
            print(f"A - C link up {took:.2f}s after B was killed (bound {budget:.1f}s)")
            await wait_converged([a, c], "relink", password=None, holders=["A", "C"])
            assert await ca.publish("relink", "over the new link", nonce="r") == ok("r")
            assert await cc.recv() == delivery("over the new link", "relink", "r")
            for cl in (ca, cc):
                await cl.expect_quiet()
    run(body())


# --------------------------------------------------------------------------
# frames per message == edges of the shortest-path tree
# --------------------------------------------------------------------------

@pytest.mark.parametrize("shape,holder_idx", [
    ("line", [0, 2, 4]),      # N5, N6 beyond the last holder get nothing
    ("ring", [0, 2, 3, 5]),   # both ways round from R0
])
def test_frames_per_message_equal_the_ideal(node_factory, shape, holder_idx):
    prefix = "N" if shape == "line" else "R"
    names = [f"{prefix}{i}" for i in range(7)]
    edges = edges_of(names, shape)
    nodes = start_mesh(node_factory, names, edges, max_peers=0)
    by_name = dict(zip(names, nodes))
    holders = [names[i] for i in holder_idx]
    origin = holders[0]
    ideal = spt_edges(names, edges, origin, holders)
    k_msgs = 20
    chan = f"spt-{shape}"

    async def body():
        want_links = {n: set() for n in names}
        for d, t in edges:
            want_links[d].add(t)
            want_links[t].add(d)
        await wait_peers(nodes, want_links, exact=True, timeout=1)
        async with Pool() as pool:
            pub = await pool.connect(by_name[origin])
            assert await pub.subscribe(chan) == ok()
            subs = []
            for hn in holders[1:]:
                s = await pool.connect(by_name[hn])
                assert await s.subscribe(chan) == ok()
                subs.append(s)
            # the publisher's node (and every other) lists every holder
            await wait_converged(nodes, chan, password=None, holders=holders)
            await deliver_batch(pub, subs, chan, "warm-up", n=3)

            before = await asyncio.to_thread(by_type_counts, nodes)
            await deliver_batch(pub, subs, chan, "counted", n=k_msgs)

            # copies still travelling toward non-holders are counted too:
            # wait until the counters stop moving (two reads a period apart)
            last = {}

            def settled():
                now = by_type_counts(nodes)
                done = now == last.get("v")
                last["v"] = now
                return done, now
            after = await eventually(settled, DEADLINE, interval=ANNOUNCE_S,
                                     what="message counters to settle")
            deltas = {n: after[n] - before[n] for n in names}
            measured = sum(deltas.values()) / k_msgs
            print(f"{shape}: ideal {ideal}, measured {measured}, per node {deltas}")
            assert measured == ideal, (
                f"{shape}: {measured} channel-message frames per message, ideal "
                f"{ideal} (publisher {origin}, holders {holders}); per-node "
                f"copies over {k_msgs} messages: {deltas}")
    run(body())


# --------------------------------------------------------------------------
# idle traffic and gone holders
# --------------------------------------------------------------------------

# A - B - C - D - E - A plus the chords A - C and B - D
FIVE = ["A", "B", "C", "D", "E"]
FIVE_EDGES = [("B", "A"), ("C", "B"), ("D", "C"), ("E", "D"), ("E", "A"),
              ("C", "A"), ("D", "B")]


async def _five_with_channels(pool, nodes):
    a, b, c, d, e = nodes
    clients = {}
    for node, chans in ((a, ["shared", "a-only"]), (c, ["shared", "c-only"]),
                        (e, ["e-only"])):
        cl = await pool.connect(node)
        for ch in chans:
            assert await cl.subscribe(ch) == ok()
        clients[node.name] = cl
    await wait_converged(nodes, "shared", password=None, holders=["A", "C"])
    await wait_converged(nodes, "c-only", password=None, holders=["C"])
    await wait_converged(nodes, "e-only", password=None, holders=["E"])
    await wait_converged(nodes, "a-only", password=None, holders=["A"])
    return clients


def test_idle_mesh_inm_packets_bounded_by_links(node_factory):
    nodes = start_mesh(node_factory, FIVE, FIVE_EDGES, max_peers=0)
    periods = 5

    async def body():
        async with Pool() as pool:
            await _five_with_channels(pool, nodes)
            await wait_members(nodes, CONVERGE_S, "all five in every view")
            links = {n.name: sorted(peer_names(await aapi_node(n))) for n in nodes}
            t0, c0 = {}, {}
            for n in nodes:
                c0[n.name] = (await asyncio.to_thread(metrics, n)).get(
                    "wsrelay_inm_packets_out_total")
                t0[n.name] = time.monotonic()
            start = min(t0.values())

            # the measurement window: ~5 announce periods, the links
            # checked unchanged all along
            async def window():
                vs = await aviews(nodes)
                now = {k: sorted(peer_names(v)) for k, v in vs.items()}
                assert now == links, (now, links)
                return time.monotonic() - start >= periods * ANNOUNCE_S, now
            await eventually(window, periods * ANNOUNCE_S + DEADLINE, interval=0.1,
                             what="the measurement window")
            report, over = {}, []
            for n in nodes:
                c1 = (await asyncio.to_thread(metrics, n)).get(
                    "wsrelay_inm_packets_out_total")
                el = time.monotonic() - t0[n.name]
                per = el / ANNOUNCE_S
                budget = 2 * len(links[n.name]) * (math.floor(per) + 1)
                sent = c1 - c0[n.name]
                report[n.name] = (f"{sent:.0f} packets in {per:.1f} periods, "
                                  f"{sent / per:.1f}/period, {len(links[n.name])} links, "
                                  f"budget {budget}")
                if sent > budget:
                    over.append(n.name)
            print(report)
            assert not over, (f"idle nodes {over} sent more than 2 x links INM packets "
                              f"per announce period: {report}")
    run(body())


def test_crashed_holder_leaves_holder_sets_within_peer_timeout(node_factory):
    nodes = start_mesh(node_factory, FIVE, FIVE_EDGES, max_peers=0)
    a, b, c, d, e = nodes
    survivors = [a, b, d, e]

    async def body():
        async with Pool() as pool:
            await _five_with_channels(pool, nodes)
            await wait_members(nodes, CONVERGE_S, "all five in every view")
            bound = PEER_TIMEOUT_S + ANNOUNCE_S + SLACK_S
            kill9(c)
            t0 = time.monotonic()

            async def c_out():
                vs = await aviews(survivors)
                with_c = {k: sorted(ch["name"] for ch in v["channels"]
                                    if "C" in ch["holders"])
                          for k, v in vs.items()}
                return not any(with_c.values()), with_c
            await eventually(c_out, max(0.1, bound - (time.monotonic() - t0)),
                             what=f"C out of every survivor's holder sets within "
                                  f"{bound:.1f}s of the kill")
            took = time.monotonic() - t0
            print(f"C out of every holder set {took:.2f}s after the kill "
                  f"(bound {bound:.1f}s)")
            # what is left is right: shared held by A alone, c-only gone
            await wait_converged(survivors, "shared", password=None, holders=["A"],
                                 timeout=1)
            await wait_converged(survivors, "c-only", absent=True, timeout=1)
            await wait_converged(survivors, "e-only", password=None, holders=["E"],
                                 timeout=1)
    run(body())


# --------------------------------------------------------------------------
# rolling upgrade: the full announce of 3.6 is still understood
# --------------------------------------------------------------------------

class StampedFakeNode(FakeNode):
    """A FakeNode whose full announce also carries the "at" (wall-clock ms)
    and "latency" fields today's wsrelay adds to it (3.6 lists neither)."""

    async def _announce(self, every):
        while True:
            with contextlib.suppress(websockets.exceptions.ConnectionClosed):
                await self.send_packet(self.packet("*", "event", {
                    "event": "announce", "name": self.name, "url": "",
                    "peers": [self.node.name], "latency": {},
                    "channels": [{"name": k, **v}
                                 for k, v in sorted(self.held.items())],
                    "master": False, "at": int(time.time() * 1000)}))
            await asyncio.sleep(every)  # a period, not a synchronisation


@pytest.mark.parametrize("fake", [FakeNode, StampedFakeNode],
                         ids=["protocol-3.6", "with-at"])
def test_old_full_announce_is_still_understood(node_factory, fake):
    a, b = start_mesh(node_factory, "AB", [("B", "A")], max_peers=0)
    h_old = pw_hash("legacy-pw", "old")  # what /api/node shows

    async def body():
        # OLD speaks only the full announce of 3.6 (protocol-3.6: exactly
        # the fields listed there; with-at: as today's nodes send it): no
        # reserve-channel, and its channels are added after onboarding
        old = await fake.connect(a, TOKEN, "OLD")
        try:
            await wait_peers([a], {"A": ["B", "OLD"]}, exact=True)
            async with Pool() as pool:
                cb, watch = await pool.connect(b), await pool.connect(b)
                assert await cb.subscribe("shared-legacy") == ok()
                e = (await wait_converged([a, b], "shared-legacy", password=None,
                                          holders=["B"]))["A"]
                now = int(time.time() * 1000)
                old.held["legacy-only"] = {"password": None, "created": now}
                old.held["legacy-pw"] = {"password": pbkdf2_hex("legacy-pw", "old"),
                                         "created": now}
                old.held["shared-legacy"] = {"password": None, "created": e["created"]}
                await wait_converged([a, b], "legacy-only", password=None,
                                     holders=["OLD"])
                await wait_converged([a, b], "legacy-pw", password=h_old,
                                     holders=["OLD"])
                await wait_converged([a, b], "shared-legacy", password=None,
                                     holders=["B", "OLD"])
                await wait_client_lists([watch], "legacy-only")
                # B enforces OLD's password and routes messages to OLD
                assert await watch.subscribe("legacy-pw", password="new") == \
                    fail("invalid password")
                assert await watch.subscribe("legacy-pw", password="old") == ok()
                await wait_converged([a, b], "legacy-pw", password=h_old,
                                     holders=["B", "OLD"])
                assert await watch.publish("legacy-pw", "to the old node", nonce="o") \
                    == ok("o")
                mp = await old.next_packet(
                    lambda p: p.get("type") == "message"
                    and (p.get("data") or {}).get("channel") == "legacy-pw",
                    what="the message packet for legacy-pw")
                assert mp["source"] == "B" and mp["data"].get("client_nonce") == "o", mp

                # its announce stops listing two of them: they go
                del old.held["legacy-only"]
                del old.held["shared-legacy"]
                await wait_converged([a, b], "legacy-only", absent=True)
                await wait_converged([a, b], "shared-legacy", password=None,
                                     holders=["B"])
                await wait_client_lists([watch], "legacy-only", present=False)
                await wait_converged([a, b], "legacy-pw", password=h_old,
                                     holders=["B", "OLD"], timeout=1)
        finally:
            await old.close()
    run(body())
