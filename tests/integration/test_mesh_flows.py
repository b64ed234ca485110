"""
Multi-node flows (PROTOCOL.md 4, 5.1-5.3) on real node processes linked
over loopback: the new-client flow across a line, exactly-once in-order
fan-out in a triangle, delivery along a 5-node chain, onboarding of a late
node, the remote-connection flow, and freeing a channel network-wide.
Synchronisation is on each node's GET /api/node view (holders, peers),
never on sleeps.
"""

from conftest import Pool, delivery, fail, metrics, ok, run
from meshutil import (aapi_node, chan_of, peer_names, pw_hash,
                      start_mesh, start_node, wait_client_lists,
                      wait_converged, wait_peers)


def test_line_new_client_flow_password_and_both_directions(node_factory):
    # C dials B, B dials A; max_peers = 1 keeps it a line (no A-C link)
    a, b, c = start_mesh(node_factory, "ABC", [("B", "A"), ("C", "B")],
                         max_peers=1)
    h = pw_hash("line-chan", "wordpass")

    async def body():
        async with Pool() as pool:
            c1 = await pool.connect(a)
            c2, c3, c4 = await pool.connect_many(c, 3)
            mid = await pool.connect(b)
            assert await c1.subscribe("line-chan", password="wordpass", nonce="s1") == ok("s1")
            # reserve-channel reached the far node: its view and list have it
            await wait_converged([a, b, c], "line-chan", password=h, holders=["A"])
            assert "line-chan" in await c2.channels()
            assert "line-chan" in await mid.channels()
            # the far node checks against A's hash
            assert await c2.subscribe("line-chan", password="wrong", nonce="w") == \
                fail("invalid password", "w")
            assert await c3.subscribe("line-chan", nonce="n") == fail("invalid password", "n")
            assert await c4.subscribe("line-chan", password="wordpass ") == fail("invalid password")
            assert await c2.subscribe("line-chan", password="wordpass", nonce="r") == ok("r")
            # rejected clients are not in the channel
            assert await c3.publish("line-chan", "x") == fail("not subscribed")
            await wait_converged([a, b, c], "line-chan", password=h, holders=["A", "C"])
            # A -> C, through B
            assert await c1.publish("line-chan", "hello from A", nonce="m1") == ok("m1")
            assert await c2.recv() == delivery("hello from A", "line-chan", "m1")
            # C -> A, without a nonce
            assert await c2.publish("line-chan", "hello from C") == ok()
            assert await c1.recv() == delivery("hello from C", "line-chan")
            # no echo, nothing to the rejected or unsubscribed clients
            for cl in (c1, c2, c3, c4, mid):
                await cl.expect_quiet()
            # still a line: A and C are not linked directly
            va, vc = await aapi_node(a), await aapi_node(c)
            assert peer_names(va) == {"B"} and peer_names(vc) == {"B"}, (va, vc)
            assert "C" in va["nodes"] and "A" in vc["nodes"]
            entry = chan_of(va, "line-chan")
            assert entry["active"] is True and entry["subscribers"] == 1, entry
            assert chan_of(await aapi_node(b), "line-chan")["active"] is False
            # /metrics agrees: B only relays, A and C hold the channel
            mb, ma = metrics(b), metrics(a)
            assert mb.get("wsrelay_channels_reserved") == 1
            assert mb.get("wsrelay_channels_active") == 0
            assert mb.get("wsrelay_peers_up") == 2
            assert mb.get("wsrelay_mesh_nodes_known") == 2
            assert ma.get("wsrelay_channels_active") == 1
            assert ma.get("wsrelay_channels_reserved") == 0
            assert ma.get("wsrelay_inm_packets_out_total") > 0
            assert ma.get("wsrelay_inm_packets_in_total") > 0
            assert mb.get("wsrelay_inm_packets_forwarded_total") >= 2
    run(body())


def test_triangle_300_messages_exactly_once_in_order(node_factory):
    a, b, c = start_mesh(node_factory, "ABC",
                         [("B", "A"), ("C", "A"), ("C", "B")])
    n_msgs = 300

    async def body():
        async with Pool() as pool:
            pub = await pool.connect(a)
            subs = {"A": [await pool.connect(a)],
                    "B": await pool.connect_many(b, 2),
                    "C": await pool.connect_many(c, 2)}
            assert await pub.subscribe("tri", password="pw") == ok()
            for name, cls in subs.items():
                for cl in cls:
                    assert await cl.subscribe("tri", password="pw") == ok(), name
            await wait_converged([a, b, c], "tri", password=pw_hash("tri", "pw"),
                                 holders=["A", "B", "C"])
            # pipelined: every send first, then the 300 answers in order
            for i in range(n_msgs):
                await pub.send({"command": "send", "nonce": f"n{i}",
                                "data": {"channel": "tri", "message": f"msg-{i}"}})
            for i in range(n_msgs):
                assert await pub.recv() == ok(f"n{i}"), i
            for name, cls in subs.items():
                for cl in cls:
                    got = [await cl.recv() for _ in range(n_msgs)]
                    want = [delivery(f"msg-{i}", "tri", f"n{i}") for i in range(n_msgs)]
                    assert got == want, f"subscriber on {name}: first diff at " + str(
                        next(i for i, (x, y) in enumerate(zip(got, want)) if x != y))
            # exactly once: nothing more for anyone, no echo to the publisher
            for cl in [pub] + [x for cls in subs.values() for x in cls]:
                await cl.expect_quiet()
    run(body())


def test_chain_of_five_end_to_end(node_factory):
    names = ["N1", "N2", "N3", "N4", "N5"]
    edges = [(names[i + 1], names[i]) for i in range(4)]
    nodes = start_mesh(node_factory, names, edges, max_peers=1)
    n1, n3, n5 = nodes[0], nodes[2], nodes[4]

    async def body():
        async with Pool() as pool:
            left = await pool.connect(n1)
            right = await pool.connect(n5)
            middle = await pool.connect(n3)
            outsider = await pool.connect(nodes[1])
            assert await left.subscribe("chain") == ok()
            await wait_converged(nodes, "chain", password=None, holders=["N1"])
            assert await right.subscribe("chain") == ok()
            assert await middle.subscribe("chain") == ok()
            await wait_converged(nodes, "chain", password=None,
                                 holders=["N1", "N3", "N5"])
            assert await left.publish("chain", "east", nonce="e") == ok("e")
            assert await right.recv() == delivery("east", "chain", "e")
            assert await middle.recv() == delivery("east", "chain", "e")
            assert await right.publish("chain", "west", nonce="w") == ok("w")
            assert await left.recv() == delivery("west", "chain", "w")
            assert await middle.recv() == delivery("west", "chain", "w")
            for cl in (left, right, middle, outsider):
                await cl.expect_quiet()
            # no shortcut was made: still a chain
            await wait_peers(nodes, {"N1": ["N2"], "N2": ["N1", "N3"],
                                     "N3": ["N2", "N4"], "N4": ["N3", "N5"],
                                     "N5": ["N4"]}, exact=True, timeout=1)
    run(body())


def test_late_node_onboards_existing_channels(node_factory):
    a, b = start_mesh(node_factory, "AB", [("B", "A")])
    h = pw_hash("prot-late", "s3cret")

    async def body():
        async with Pool() as pool:
            ca = await pool.connect(a)
            cb = await pool.connect(b)
            assert await ca.subscribe("open-late") == ok()
            assert await cb.subscribe("prot-late", password="s3cret") == ok()
            await wait_converged([a, b], "open-late", password=None, holders=["A"])
            await wait_converged([a, b], "prot-late", password=h, holders=["B"])

            late = start_node(node_factory, "C", peers=[("B", b.port)])
            await wait_peers([late, b], {"C": ["B"], "B": ["C"]})
            # onboarding alone (list-channels / list-reserved-channels)
            # gives C both channels with their hashes and holders
            await wait_converged([a, b, late], "open-late", password=None, holders=["A"])
            await wait_converged([a, b, late], "prot-late", password=h, holders=["B"])
            cc, cc2, cc3 = await pool.connect_many(late, 3)
            assert await cc.channels() == ["open-late", "prot-late"]
            # passwords are enforced on the late node
            assert await cc.subscribe("prot-late", password="nope") == fail("invalid password")
            assert await cc.subscribe("prot-late") == fail("invalid password")
            assert await cc2.subscribe("open-late", password="x") == fail("invalid password")
            assert await cc.subscribe("prot-late", password="s3cret") == ok()
            assert await cc2.subscribe("open-late") == ok()
            await wait_converged([a, b, late], "prot-late", password=h, holders=["B", "C"])
            await wait_converged([a, b, late], "open-late", password=None,
                                 holders=["A", "C"])
            assert await cb.publish("prot-late", "to the newcomer") == ok()
            assert await cc.recv() == delivery("to the newcomer", "prot-late")
            assert await cc2.publish("open-late", "from the newcomer", nonce="q") == ok("q")
            assert await ca.recv() == delivery("from the newcomer", "open-late", "q")
            for cl in (ca, cb, cc, cc2, cc3):
                await cl.expect_quiet()
    run(body())


def test_remote_connection_links_nodes_that_only_know_a_hub(node_factory):
    # B and C each have only A in [[peers]]; with max_peers 4 they ask A
    # list-nodes, get-node-connection and dial each other with a token
    a, b, c = start_mesh(node_factory, "ABC", [("B", "A"), ("C", "A")],
                         max_peers=4)

    async def body():
        got = await wait_peers([a, b, c], {"A": ["B", "C"], "B": ["A", "C"],
                                           "C": ["A", "B"]}, exact=True)
        assert got == {"A": ["B", "C"], "B": ["A", "C"], "C": ["A", "B"]}
        vb, vc = await aapi_node(b), await aapi_node(c)
        b_to_c = next(p for p in vb["peers"] if p["name"] == "C")
        c_to_b = next(p for p in vc["peers"] if p["name"] == "B")
        # one link, dialled by exactly one side
        assert b_to_c["dialled"] != c_to_b["dialled"], (vb, vc)
        # the B-C link is a live link: its latency gets measured
        # and traffic between B and C flows
        async with Pool() as pool:
            cb, cc = await pool.connect(b), await pool.connect(c)
            assert await cb.subscribe("rc") == ok()
            assert await cc.subscribe("rc") == ok()
            await wait_converged([a, b, c], "rc", password=None, holders=["B", "C"])
            assert await cb.publish("rc", "direct") == ok()
            assert await cc.recv() == delivery("direct", "rc")
            await cc.expect_quiet()
        # the dialled one is the remote-connection link: B and C's [[peers]]
        # only hold A, and A's own links were all accepted
        va = await aapi_node(a)
        assert all(p["dialled"] is False for p in va["peers"]), va
        for v in (vb, vc):
            assert next(p for p in v["peers"] if p["name"] == "A")["dialled"] is True, v
    run(body())


def test_last_subscriber_frees_channel_everywhere_then_recreate(node_factory):
    a, b, c = start_mesh(node_factory, "ABC", [("B", "A"), ("C", "B")],
                         max_peers=1)
    h1, h2 = pw_hash("freeme", "one"), pw_hash("freeme", "two")

    async def body():
        async with Pool() as pool:
            ca, cb, cc = await pool.connect(a), await pool.connect(b), await pool.connect(c)
            la, lb, lc = await pool.connect(a), await pool.connect(b), await pool.connect(c)
            assert await ca.subscribe("freeme", password="one") == ok()
            await wait_converged([a, b, c], "freeme", password=h1, holders=["A"])
            assert await cc.subscribe("freeme", password="one") == ok()
            await wait_converged([a, b, c], "freeme", password=h1, holders=["A", "C"])
            # one holder leaves (unsubscribe): the channel stays, held by C
            assert await ca.unsubscribe("freeme") == ok()
            await wait_converged([a, b, c], "freeme", password=h1, holders=["C"])
            assert await lb.channels() == ["freeme"]
            # the last subscriber anywhere leaves (connection closed)
            await cc.close()
            await wait_converged([a, b, c], "freeme", absent=True)
            await wait_client_lists([la, lb, lc], "freeme", present=False)
            # free again: re-created on B with another password
            assert await cb.subscribe("freeme", password="two") == ok()
            await wait_converged([a, b, c], "freeme", password=h2, holders=["B"])
            assert await la.subscribe("freeme", password="one") == fail("invalid password")
            assert await la.subscribe("freeme", password="two") == ok()
            await wait_converged([a, b, c], "freeme", password=h2, holders=["A", "B"])
            assert await la.publish("freeme", "reborn") == ok()
            assert await cb.recv() == delivery("reborn", "freeme")
            await la.expect_quiet()
    run(body())
