"""Observability across a real mesh (PROTOCOL.md 5.4, 6): node-stats and
host-stats answered over a link, the master repairing a node put out of
step, GET /api/overview, and /health "high latency" through a TCP delay
proxy of our own (no netem here)."""
import json
import re
import time

from conftest import (Pool, http_get, health, metrics, ok, run,
                      wait_until_sync)
from delayproxy import DelayProxy
from meshutil import (TOKEN, FakeNode, api_node, chan_of, mesh_config,
                      start_mesh, start_node, wait_converged)


def test_node_stats_and_host_stats_over_a_link(node_factory):
    n = start_node(node_factory, "N")

    async def body():
        async with Pool() as pool:
            a, b = await pool.connect(n), await pool.connect(n)
            assert await a.subscribe("s") == ok()
            assert await b.subscribe("s") == ok()
            for i in range(5):
                assert await a.publish("s", "x" * 100) == ok()
                await b.recv()
            f = await FakeNode.connect(n, TOKEN, "F")
            try:
                st = await f.command("N", "node-stats")
                host = await f.command("N", "host-stats")
            finally:
                await f.close()
        return st, host
    st, host = run(body())
    assert st["ok"] is True
    assert st["relay"] == {"channels": ["s"], "clients": 2,
                           "channel_connections": {"s": 2}}
    # 5 messages of 100 bytes: once each, whatever the fan-out
    net = st["network"]
    assert net["packets"]["15s"] == 5 and net["packets"]["60s"] == 5
    assert net["bandwidth"]["15s"] == round(5 * 100 * 8 / 1000 / 15, 3)
    assert net["bandwidth"]["60s"] == round(5 * 100 * 8 / 1000 / 60, 3)
    assert st["channels"]["s"]["packets"]["60s"] == 5
    # extension: the node's /health verdict rides along, for the overview
    assert st["health"]["healthy"] == "good" and st["health"]["node"] == "N"
    assert host["ok"] is True
    assert set(host["cpu"]) == {"1m", "5m", "15m"}
    assert 0 < host["mem"]["used"] < host["mem"]["total"]
    assert all(d["total"] >= d["used"] for d in host["disk"])
    # windows not covered by 15 s samples yet are null, never invented
    assert set(host["network"]["bytes"]) >= {"15s_in", "60s_out"}


def test_master_repairs_a_node_out_of_step(node_factory):
    # announces far apart: only the master's reconciliation can repair
    a, b, c = start_mesh(node_factory, "ABC", [("B", "A"), ("C", "A")],
                         per_node={"A": {"master": True}},
                         announce_interval_ms=600000,
                         reconcile_interval_ms=300)

    async def body():
        async with Pool() as pool:
            # B checks C's channels against C's record when C joins its
            # view (docs/mesh.md), and then only when C's record changes,
            # a period later: with the channel opened after that, only
            # the master's reconciliation can repair B
            for who in ("A", "C"):
                b.wait_log(re.escape(f"mesh: node '{who}' joined our view"))
            cc = await pool.connect(c)
            assert await cc.subscribe("real") == ok()
            await wait_converged([a, b, c], "real", holders=["C"])
            f = await FakeNode.connect(b, TOKEN, "F")
            try:
                # B forgets C holds "real"; C does not tell it again
                assert (await f.command("B", "unreserve-channel",
                                        channel="real", holder="C"))["ok"]
                # and believes C holds a channel nobody has
                assert (await f.command("B", "reserve-channel", channel="ghost",
                                        password=None,
                                        created=int(time.time() * 1000),
                                        holder="C"))["ok"]
                wait_until_sync(lambda: chan_of(api_node(b), "ghost") is not None,
                                what="B out of step")
                wait_until_sync(
                    lambda: (chan_of(api_node(b), "real") or {}).get("holders") == ["C"]
                    and chan_of(api_node(b), "ghost") is None,
                    what="the master put B back in step")
            finally:
                await f.close()
    run(body())
    # the lines are written before B is repaired, read from the pipe after
    a.wait_log(re.escape("master: reserve-channel 'real' (holder 'C') on 'B'"))
    a.wait_log(re.escape("master: unreserve-channel 'ghost' (holder 'C') on 'B'"))


def test_overview_api(node_factory):
    a, b, c = start_mesh(node_factory, "ABC", [("B", "A"), ("C", "A")],
                         per_node={"A": {"master": True}},
                         stats_interval_ms=200)

    async def body():
        async with Pool() as pool:
            cb, cc, cc2 = (await pool.connect(b), await pool.connect(c),
                           await pool.connect(c))
            for cl in (cb, cc, cc2):
                assert await cl.subscribe("chat", password="pw") == ok()
            await wait_converged([a, b, c], "chat", holders=["B", "C"])

            def overview():
                s, _, body = http_get(a, "/api/overview")
                assert s == 200
                return json.loads(body)

            def complete():
                o = overview()
                names = sorted(n["name"] for n in o["nodes"])
                links = {(l["a"], l["b"]) for l in o["links"]
                         if l["latency_ms"] is not None}
                ch = [x for x in o["channels"] if x["name"] == "chat"]
                return (names == ["A", "B", "C"] and
                        links == {("A", "B"), ("A", "C"), ("B", "C")} and
                        ch and ch[0]["subscribers"] == {"B": 1, "C": 2} and
                        all(len(n["history"]) >= 2 for n in o["nodes"]) and o)
            o = wait_until_sync(complete, what="a complete overview")
            ch = [x for x in o["channels"] if x["name"] == "chat"][0]
            assert ch["holders"] == ["B", "C"] and ch["protected"] is True
            assert ch["total_subscribers"] == 3
            node_c = [n for n in o["nodes"] if n["name"] == "C"][0]
            assert node_c["stats"]["relay"]["clients"] == 2
            assert node_c["host"]["mem"]["total"] > 0
            assert o["master"] == "A"
    run(body())
    s, _, body = http_get(b, "/api/overview")
    assert s == 404 and b"not the master" in body

    # a node that goes stays listed, down, and nothing counts it any more
    c.stop()

    def c_down():
        o = json.loads(http_get(a, "/api/overview")[2])
        node_c = [n for n in o["nodes"] if n["name"] == "C"]
        links = {(l["a"], l["b"]) for l in o["links"]}
        return (node_c and node_c[0]["up"] is False and
                not links & {("A", "C"), ("B", "C")} and
                all("C" not in x["subscribers"] and "C" not in x["holders"]
                    for x in o["channels"]) and o)
    o = wait_until_sync(c_down, timeout=15, what="C listed as down")
    assert all(n["up"] for n in o["nodes"] if n["name"] != "C")
    assert [n for n in o["nodes"] if n["name"] == "C"][0]["history"]


def test_high_latency_through_a_delay_proxy(node_factory):
    hub = start_node(node_factory, "hub")
    with DelayProxy(hub.port, 0.015) as proxy:
        # the leaf reaches the hub only through 15 ms each way
        leaf = node_factory.start(config_text=mesh_config(
            "leaf", peers=[("hub", f"ws://127.0.0.1:{proxy.port}/node", TOKEN)]))
        wait_until_sync(lambda: health(leaf)[1]["reason"] == "high latency",
                        what="high latency on the leaf")
        status, body = health(leaf)
        assert status == 200 and body["healthy"] == "degraded"
        m = metrics(leaf)
        assert m.get("wsrelay_peer_latency_seconds", peer="hub") >= 0.030
        assert m.get("wsrelay_inm_bytes_in_total") > 0
        assert m.get("wsrelay_inm_bytes_out_total") > 0
        lat = api_node(leaf)["peers"][0]["latency_ms"]
        assert lat >= 30, lat
        # the hub measures the same link from its side
        wait_until_sync(lambda: health(hub)[1]["reason"] == "high latency",
                        what="high latency on the hub")
        leaf.stop()
    wait_until_sync(lambda: health(hub)[1]["healthy"] == "good",
                    what="hub good again once the slow peer left")
