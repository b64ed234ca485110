"""Link rules of PROTOCOL.md 3.1 and the peer rows of 6.3 on real meshes:
two nodes that dial each other keep exactly one link, link pings measure latency (/metrics, /api/node), and a
peer slower than [health] max_latency_ms makes /health "high latency"."""
import socket

from conftest import health, metrics, wait_until_sync
from meshutil import api_node, mesh_config, start_node


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nodes_dialling_each_other_keep_one_link(node_factory):
    pa, pb = free_port(), free_port()
    a = start_node(node_factory, "alpha", port=pa, peers=[("beta", pb)])
    b = start_node(node_factory, "beta", port=pb, peers=[("alpha", pa)])

    def one_link():
        va, vb = api_node(a), api_node(b)
        return ([p["name"] for p in va["peers"]] == ["beta"] and
                [p["name"] for p in vb["peers"]] == ["alpha"])
    wait_until_sync(one_link, what="one link between alpha and beta")
    # both sides agree on which link it is: dialled by one, accepted by
    # the other (a simultaneous dial is settled for the lower name's)
    wait_until_sync(lambda: api_node(a)["peers"][0]["dialled"] !=
                    api_node(b)["peers"][0]["dialled"],
                    what="both sides name the same link")
    # and it stays that way: several ping rounds later, still one link up
    wait_until_sync(lambda: api_node(a)["peers"][0]["latency_ms"] is not None,
                    what="latency measured")
    assert metrics(a).get("wsrelay_peers_up") == 1
    assert metrics(b).get("wsrelay_peers_up") == 1


def test_latency_measured_and_high_latency_degrades_health(node_factory):
    hub = start_node(node_factory, "hub")
    # any measured round trip is above 0 ms: "high latency" once pinged
    leaf = start_node(node_factory, "leaf", peers=[("hub", hub.port)])
    slow = node_factory.start(config_text=mesh_config(
        "slow", peers=[("hub", hub.port)]) + "\n[health]\nmax_latency_ms = 0\n")
    wait_until_sync(lambda: metrics(leaf).get(
        "wsrelay_peer_latency_seconds", peer="hub") is not None,
        what="leaf measured hub's latency")
    lat = metrics(leaf).get("wsrelay_peer_latency_seconds", peer="hub")
    assert 0 < lat < 1.0
    # (the leaf may also link to "slow" directly: remote connection)
    view = [p for p in api_node(leaf)["peers"] if p["name"] == "hub"][0]
    assert 0 < view["latency_ms"] < 1000
    assert health(leaf)[1]["healthy"] == "good"

    wait_until_sync(lambda: health(slow)[1]["reason"] == "high latency",
                    what="high latency on the node with max_latency_ms = 0")
    status, body = health(slow)
    assert status == 200 and body["healthy"] == "degraded"
    assert "high latency" in body["reasons"]


def test_largest_message_crosses_a_link_intact(node_factory):
    """A message of max_message_bytes is ~87 KB of base64 inside its
    packet, more than one coalesced write: it must cross, the link stay."""
    from conftest import Pool, delivery, ok, run
    from meshutil import start_mesh, wait_converged

    a, b = start_mesh(node_factory, "AB", [("B", "A")])
    big = "é" * 32767 + "xy"   # 65536 bytes of UTF-8

    async def body():
        async with Pool() as pool:
            ca, cb = await pool.connect(a), await pool.connect(b)
            assert await cb.subscribe("big") == ok()
            assert await ca.subscribe("big") == ok()
            await wait_converged([a, b], "big", holders=["A", "B"])
            for i in range(3):
                assert await ca.publish("big", big, nonce=f"b{i}") == ok(f"b{i}")
                assert await cb.recv() == delivery(big, "big", f"b{i}")
            assert await cb.publish("big", big[::-1]) == ok()
            assert await ca.recv() == delivery(big[::-1], "big")
    run(body())
    assert metrics(a).get("wsrelay_peers_up") == 1
    assert "node link 'B' down" not in a.log_text()
