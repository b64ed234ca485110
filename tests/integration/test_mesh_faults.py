"""
Faults in a live mesh (PROTOCOL.md 3.6, 4.4, 4.5): a holder killed with
SIGKILL, a hub frozen with SIGSTOP while one side changes state, a node
restarted on the same name and port, and two nodes racing to open one
channel with different passwords. Every assertion is on the end state all
nodes converge to; waits are for events with deadlines.
"""

import asyncio
import itertools
import time
import warnings

from conftest import Pool, delivery, fail, ok, run
from meshutil import (CONVERGE_S, GONE_S, aapi_node, chan_of, kill9, paused, pw_hash,
                      restart, start_mesh, wait_client_lists, wait_converged,
                      wait_peers)

TRIANGLE = [("B", "A"), ("C", "A"), ("C", "B")]


def test_killed_holder_leaves_every_holder_set(node_factory):
    a, b, c = start_mesh(node_factory, "ABC", TRIANGLE)
    h = pw_hash("shared-k", "pw")

    async def body():
        async with Pool() as pool:
            ca, cb, cc = await pool.connect(a), await pool.connect(b), await pool.connect(c)
            cc_only = await pool.connect(c)
            la = await pool.connect(a)
            for cl in (ca, cb, cc):
                assert await cl.subscribe("shared-k", password="pw") == ok()
            assert await cc_only.subscribe("only-c", password="c") == ok()
            await wait_converged([a, b, c], "shared-k", password=h,
                                 holders=["A", "B", "C"])
            await wait_converged([a, b, c], "only-c", holders=["C"])

            kill9(c)
            t0 = time.monotonic()
            # C leaves every holder set; a channel only C held is gone
            await wait_converged([a, b], "shared-k", password=h,
                                 holders=["A", "B"], timeout=GONE_S)
            await wait_converged([a, b], "only-c", absent=True,
                                 timeout=max(0.5, GONE_S - (time.monotonic() - t0)))
            await wait_client_lists([la], "only-c", present=False, timeout=1)
            await wait_peers([a, b], {"A": ["B"], "B": ["A"]}, exact=True,
                             timeout=GONE_S)
            # the survivors still relay to each other
            assert await ca.publish("shared-k", "after the crash", nonce="z") == ok("z")
            assert await cb.recv() == delivery("after the crash", "shared-k", "z")
            await ca.expect_quiet()
            # and the dead node's channel is free to re-create
            assert await la.subscribe("only-c", password="new") == ok()
            await wait_converged([a, b], "only-c", password=pw_hash("only-c", "new"),
                                 holders=["A"])
    run(body())


def test_partition_by_sigstop_of_the_hub_then_heal(node_factory):
    # a star: L1 and L2 dial H; max_peers = 1 so the leaves stay leaves
    h_, l1, l2 = start_mesh(node_factory, ["H", "L1", "L2"],
                            [("L1", "H"), ("L2", "H")], max_peers=1)
    hp = pw_hash("during", "split")

    async def body():
        async with Pool() as pool:
            c1 = await pool.connect(l1)
            c2 = await pool.connect(l2)
            watcher = await pool.connect(l2)
            assert await c1.subscribe("before") == ok()
            assert await c2.subscribe("before") == ok()
            await wait_converged([h_, l1, l2], "before", password=None,
                                 holders=["L1", "L2"])

            with paused(h_):
                # each leaf notices the silence, drops its link, and the
                # two leaves, each left alone, heal the mesh themselves
                await wait_peers([l1, l2], {"L1": ["L2"], "L2": ["L1"]},
                                 exact=True, timeout=GONE_S)
                await wait_converged([l1, l2], "before", holders=["L1", "L2"],
                                     timeout=GONE_S)
                # state changes while the hub is frozen
                c1b = await pool.connect(l1)
                assert await c1b.subscribe("during", password="split") == ok()
                assert await c2.unsubscribe("before") == ok()
            # SIGCONT: the hub's links come back and every view converges
            await wait_peers([h_, l1, l2], {"H": ["L1", "L2"], "L1": ["H"],
                                            "L2": ["H"]})
            await wait_converged([h_, l1, l2], "during", password=hp, holders=["L1"])
            await wait_converged([h_, l1, l2], "before", password=None, holders=["L1"])
            await wait_client_lists([watcher], "during")
            # delivery resumes across the healed hub, both channels
            assert await c2.subscribe("during", password="wrong") == fail("invalid password")
            assert await c2.subscribe("during", password="split") == ok()
            await wait_converged([h_, l1, l2], "during", password=hp,
                                 holders=["L1", "L2"])
            assert await c1b.publish("during", "healed") == ok()
            assert await c2.recv() == delivery("healed", "during")
            assert await watcher.subscribe("before") == ok()
            await wait_converged([h_, l1, l2], "before", holders=["L1", "L2"])
            assert await watcher.publish("before", "back", nonce="b") == ok("b")
            assert await c1.recv() == delivery("back", "before", "b")
            for cl in (c1, c1b, c2, watcher):
                await cl.expect_quiet()
    run(body())


def test_restarted_node_resyncs_its_view(node_factory):
    a, b, c = start_mesh(node_factory, "ABC", TRIANGLE)
    h1, h3 = pw_hash("r1", "one"), pw_hash("r3", "three")

    async def body():
        async with Pool() as pool:
            ca, cb = await pool.connect(a), await pool.connect(b)
            cc = await pool.connect(c)
            assert await ca.subscribe("r1", password="one") == ok()
            assert await cb.subscribe("r2") == ok()
            assert await cc.subscribe("r1", password="one") == ok()
            await wait_converged([a, b, c], "r1", password=h1, holders=["A", "C"])
            await wait_converged([a, b, c], "r2", password=None, holders=["B"])
            port = c.port

            assert c.stop() == []
            await wait_converged([a, b], "r1", password=h1, holders=["A"],
                                 timeout=GONE_S)
            # the world moves on while C is down
            ca3 = await pool.connect(a)
            assert await ca3.subscribe("r3", password="three") == ok()
            assert await cb.unsubscribe("r2") == ok()
            await wait_converged([a, b], "r2", absent=True)

            c2 = restart(node_factory, c)
            assert c2.port == port
            await wait_peers([a, b, c2], {"A": ["B", "C"], "B": ["A", "C"],
                                          "C": ["A", "B"]}, exact=True)
            # the restarted node's view: r1 and r3 as they are now, no r2,
            # and it is not a holder of anything
            await wait_converged([a, b, c2], "r1", password=h1, holders=["A"])
            await wait_converged([a, b, c2], "r3", password=h3, holders=["A"])
            await wait_converged([a, b, c2], "r2", absent=True, timeout=1)
            vc = await aapi_node(c2)
            assert sorted(ch["name"] for ch in vc["channels"]) == ["r1", "r3"], vc
            assert sorted(vc["nodes"]) == ["A", "B"], vc
            nc = await pool.connect(c2)
            assert await nc.channels() == ["r1", "r3"]
            assert await nc.subscribe("r1", password="nope") == fail("invalid password")
            assert await nc.subscribe("r1", password="one") == ok()
            await wait_converged([a, b, c2], "r1", password=h1, holders=["A", "C"])
            assert await ca.publish("r1", "welcome back") == ok()
            assert await nc.recv() == delivery("welcome back", "r1")
            await ca.expect_quiet()
    run(body())


_PROBES = itertools.count(1)


async def _race_once(pool, nodes, x, y, cx, cy, chan, hold=None):
    """Opens chan at once on x (client cx) and y (client cy) with different
    passwords and checks the settled state. With hold (the node between x
    and y), hold is frozen with SIGSTOP for the two subscribes -- shorter
    than peer_timeout, so no link drops -- which makes the race certain
    and its winner predictable from each side's created. Returns True if
    both subscribes were answered ok (a real race)."""
    hx, hy = pw_hash(chan, "pw-x"), pw_hash(chan, "pw-y")
    expect_hash = None
    if hold is None:
        rx, ry = await asyncio.gather(cx.subscribe(chan, password="pw-x"),
                                      cy.subscribe(chan, password="pw-y"))
    else:
        with paused(hold):
            rx, ry = await asyncio.gather(cx.subscribe(chan, password="pw-x"),
                                          cy.subscribe(chan, password="pw-y"))
            assert rx == ok() and ry == ok(), (rx, ry)
            ex = chan_of(await aapi_node(x), chan)
            ey = chan_of(await aapi_node(y), chan)
        # each side saw only itself when it opened
        assert ex["holders"] == [x.name] and ex["password"] == hx, ex
        assert ey["holders"] == [y.name] and ey["password"] == hy, ey
        # 4.4: the smaller created wins, then the smaller holder name
        expect_hash = min((ex["created"], x.name, hx),
                          (ey["created"], y.name, hy))[2]
    for r in (rx, ry):
        assert r in (ok(), fail("invalid password")), r
    assert ok() in (rx, ry), "nobody managed to open the channel"
    # one reservation wins on every node
    entries = await wait_converged(nodes, chan, timeout=CONVERGE_S)
    winner_hash = next(iter(entries.values()))["password"]
    assert winner_hash in (hx, hy), entries
    if expect_hash is not None:
        assert winner_hash == expect_hash, (entries, ex, ey)
    winner, loser = ((x, cx), (y, cy)) if winner_hash == hx else ((y, cy), (x, cx))
    raced = rx == ok() and ry == ok()
    # the winner's client is still in; the loser's, if it got in, was told
    # and removed
    if (rx if loser[1] is cx else ry) == ok():
        assert await loser[1].recv() == {
            "type": "unsubscribed",
            "data": {"channel": chan, "reason": "channel reservation lost"}}
        assert await loser[1].publish(chan, "late") == fail("not subscribed")
    await wait_converged(nodes, chan, password=winner_hash, holders=[winner[0].name])
    assert await winner[1].publish(chan, "i won") == ok()
    await winner[1].expect_quiet()
    await loser[1].expect_quiet()
    # the loser's node now enforces the winning password
    # its own address: each probe tries one wrong password, and those are
    # limited per address (7.2)
    probe = await pool.connect(loser[0],
                               local_addr=(f"127.0.3.{next(_PROBES)}", 0))
    wrong_pw = "pw-y" if winner_hash == hx else "pw-x"
    right_pw = "pw-x" if winner_hash == hx else "pw-y"
    assert await probe.subscribe(chan, password=wrong_pw) == fail("invalid password")
    assert await probe.subscribe(chan, password=right_pw) == ok()
    await wait_converged(nodes, chan, password=winner_hash,
                         holders=[winner[0].name, loser[0].name])
    assert await winner[1].publish(chan, "to the probe") == ok()
    assert await probe.recv() == delivery("to the probe", chan)
    await probe.close()
    return raced


def test_concurrent_reservation_race_settles_on_one_password(node_factory):
    # a line A - B - C: the racers A and C are two hops apart
    a, b, c = start_mesh(node_factory, "ABC", [("B", "A"), ("C", "B")],
                         max_peers=1)

    async def body():
        async with Pool() as pool:
            # a certain race: B holds both reserve-channels back
            # each race from its own addresses: a lost race is a wrong
            # password, and those are limited per address (7.2)
            def racers(i):
                return (pool.connect(a, local_addr=(f"127.0.1.{i + 1}", 0)),
                        pool.connect(c, local_addr=(f"127.0.2.{i + 1}", 0)))
            for i in range(2):
                ca, cc = [await x for x in racers(i)]
                assert await _race_once(pool, [a, b, c], a, c, ca, cc,
                                        f"held-race-{i}", hold=b)
            # free-running races: both subscribes answered ok happens in
            # roughly one try in eight on loopback; the end state is
            # checked on every try, raced or not
            races = 0
            for i in range(24):
                ca, cc = [await x for x in racers(2 + i)]
                if await _race_once(pool, [a, b, c], a, c, ca, cc, f"race-{i}"):
                    races += 1
                    if races >= 2:
                        break
        print(f"free-running races observed: {races}")
        if not races:
            warnings.warn("no free-running reservation race in 24 tries")
    run(body())
