"""
WS /node as seen by a hand-driven fake node (PROTOCOL.md 3.1-3.5): token
check before the upgrade, the handshake and its failures, one-time tokens
from get-connection-token, malformed packets dropped and counted, the
flood limit, and every INM command the node serves. Real node processes
on loopback; the fake node is meshutil.FakeNode (python websockets).
"""

import base64
import re
import time

import pytest

from conftest import Pool, delivery, fail, metrics, ok, run
from meshutil import (TOKEN, FakeNode, Refused, aapi_node, api_node, chan_of,
                      eventually, node_upgrade_status, nonce, pbkdf2_hex, pw_hash,
                      start_node, wait_peers, wait_peers_sync)

HEX64 = re.compile(r"^[0-9a-f]{64}$")
REASONS = ("json", "source", "destination", "type", "nonce", "ttl", "data")


def hub(node_factory, with_peer=False):
    """Node N (static TOKEN); with_peer: a real node M dialling N.
    max_peers = 1 so that no remote-connection traffic runs meanwhile."""
    n = start_node(node_factory, "N", node_extra={"max_peers": 1})
    if not with_peer:
        return n
    m = start_node(node_factory, "M", peers=[("N", n.port)],
                   node_extra={"max_peers": 1})
    wait_peers_sync([n, m], {"N": ["M"], "M": ["N"]}, exact=True)
    return n, m


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def url_of(node):
    return f"ws://127.0.0.1:{node.port}/node"


def dropped(node):
    m = metrics(node)
    return {r: m.get("wsrelay_inm_packets_dropped_total", reason=r) or 0
            for r in REASONS}


def test_unknown_token_is_403_without_upgrade(node_factory):
    n = hub(node_factory)

    async def body():
        assert await node_upgrade_status(n, None) == 403
        assert await node_upgrade_status(n, "nope") == 403
        assert await node_upgrade_status(n, TOKEN + "x") == 403
        assert await node_upgrade_status(n, TOKEN[:-1]) == 403
        assert await node_upgrade_status(n, "0" * 64) == 403
        assert await node_upgrade_status(n, TOKEN) == 101
        # a WebSocket client gets no connection at all, not a 101 and a close
        with pytest.raises(Refused):
            await FakeNode.open(n, "nope")
    run(body())
    assert metrics(n).get("wsrelay_peers_up") == 0


def test_handshake_reply_and_invalid_handshakes(node_factory):
    n = hub(node_factory)

    async def body():
        f = await FakeNode.open(n, TOKEN)
        assert await f.handshake("fake-1", "") == {
            "type": "response",
            "data": {"ok": True, "name": "N", "url": url_of(n)}}
        f.start()
        await eventually(lambda: (metrics(n).get("wsrelay_peers_up") == 1, None),
                         what="peers_up == 1")
        for bad in ('{"command": "hello", "data": {"name": "x", "url": ""}}',
                    '{"command": "handshake", "data": {"url": ""}}',
                    '{"command": "handshake", "data": {"name": 7, "url": ""}}',
                    '{"command": "handshake", "data": {"name": "bad name!", "url": ""}}',
                    '{"command": "handshake", "data": {"name": "", "url": ""}}',
                    '{"command": "handshake", "data": {"name": "' + "x" * 65 + '"}}',
                    '{"command": "handshake"}',
                    '["handshake"]',
                    'not json'):
            g = await FakeNode.open(n, TOKEN)
            await g.ws.send(bad)
            assert await g.wait_closed() == (1002, "invalid handshake"), bad
        # the good link was not disturbed
        assert (await f.command("N", "list-nodes"))["ok"] is True
        await f.close()
    run(body())


def test_no_handshake_within_5s_closes_the_link(node_factory):
    n = hub(node_factory)

    async def body():
        quiet = await FakeNode.open(n, TOKEN)
        t0 = time.monotonic()
        code, _ = await quiet.wait_closed(timeout=12)
        took = time.monotonic() - t0
        assert 4.5 <= took <= 9, took
        assert code != 1000, code
        assert metrics(n).get("wsrelay_peers_up") == 0
        # a prompt handshake still links
        f = await FakeNode.connect(n, TOKEN, "F")
        await f.close()
    run(body())


def test_own_or_linked_name_is_4409(node_factory):
    n, m = hub(node_factory, with_peer=True)

    async def body():
        for name in ("N", "M"):       # its own name; a real linked peer's
            g = await FakeNode.open(n, TOKEN)
            assert await g.handshake(name) == ("closed", 4409, "duplicate node"), name
        f = await FakeNode.connect(n, TOKEN, "F")
        g = await FakeNode.open(n, TOKEN)
        assert await g.handshake("F") == ("closed", 4409, "duplicate node")
        # the first F and the real link are untouched
        got = await f.command("N", "list-nodes")
        assert got["ok"] is True and sorted(got["nodes"]) == ["F", "M"], got
        assert metrics(n).get("wsrelay_peers_up") == 2
        await f.close()
    run(body())


def test_one_time_tokens_bound_to_a_name_and_single_use(node_factory):
    n = hub(node_factory)

    async def body():
        f = await FakeNode.connect(n, TOKEN, "F")
        resp = await f.command_packet("N", "get-connection-token", node="G")
        assert resp["type"] == "response" and resp["source"] == "N" \
            and resp["destination"] == "F", resp
        assert resp["data"]["ok"] is True and HEX64.match(resp["data"]["token"]), resp
        tok_g = resp["data"]["token"]
        assert tok_g != TOKEN

        # the token works once, for G
        g = await FakeNode.connect(n, tok_g, "G")
        assert g.reply["data"]["name"] == "N"
        assert await node_upgrade_status(n, tok_g) == 403
        # a token used under another name: 4403, and it is dead afterwards
        tok_g2 = (await f.command("N", "get-connection-token", node="G2"))["token"]
        assert HEX64.match(tok_g2) and tok_g2 != tok_g
        h = await FakeNode.open(n, tok_g2)
        assert await h.handshake("H") == ("closed", 4403, "forbidden")
        assert await node_upgrade_status(n, tok_g2) == 403
        # G's link is a full link: it is answered
        assert (await g.command("N", "list-nodes"))["ok"] is True
        got = sorted((await f.command("N", "list-nodes"))["nodes"])
        assert got == ["F", "G"], got
        # the static token still works
        k = await FakeNode.connect(n, TOKEN, "K")
        for x in (f, g, k):
            await x.close()
    run(body())


def test_garbage_is_dropped_and_counted_and_the_link_stays_up(node_factory):
    n = hub(node_factory)

    def pkt(**over):
        p = {"source": "F", "destination": "N", "type": "command",
             "nonce": nonce(), "ttl": 16, "data": {"command": "list-nodes"}}
        for k, v in over.items():
            if v is ...:
                p.pop(k)
            else:
                p[k] = v
        return p

    garbage = [
        ("json", "{not json"),
        ("json", "[1, 2, 3]"),
        ("source", pkt(source=...)),
        ("source", pkt(source=5)),
        ("destination", pkt(destination="bad name!")),
        ("type", pkt(type="teleport")),
        ("nonce", pkt(nonce="XYZ")),
        ("nonce", pkt(nonce=nonce().upper())),
        ("ttl", pkt(ttl="16")),
        ("ttl", pkt(ttl=-1)),
        ("data", pkt(data=...)),
        ("data", pkt(data={"no": "command"})),
        ("data", pkt(type="response", data={"ok": "yes"})),
    ]

    async def body():
        f = await FakeNode.connect(n, TOKEN, "F")
        assert (await f.command("N", "list-nodes"))["ok"] is True
        before = dropped(n)
        in_before = metrics(n).get("wsrelay_inm_packets_in_total")
        for _, g in garbage:
            await f.send_packet(g)
        # a valid command after the garbage is still answered, so every
        # frame before it has been handled
        got = await f.command("N", "list-nodes")
        assert got == {"ok": True, "nodes": ["F"]}, got
        after = dropped(n)
        want = {r: sum(1 for rr, _ in garbage if rr == r) for r in REASONS}
        assert {r: after[r] - before[r] for r in REASONS} == want, (before, after)
        m = metrics(n)
        assert m.get("wsrelay_inm_packets_in_total") >= in_before + 1
        assert m.get("wsrelay_peers_up") == 1
        assert f.closed is None
        await f.close()
    run(body())


def test_more_than_100_malformed_packets_close_with_1002(node_factory):
    n = hub(node_factory)

    async def body():
        f = await FakeNode.connect(n, TOKEN, "F")
        for i in range(100):
            await f.send_packet(f"garbage {i}")
        # 100 in a minute are tolerated
        assert (await f.command("N", "list-nodes"))["ok"] is True
        await f.send_packet("one too many")
        code, _ = await f.wait_closed()
        assert code == 1002
        await eventually(lambda: (metrics(n).get("wsrelay_peers_up") == 0, None),
                         what="peers_up back to 0")
        assert dropped(n)["json"] == 101
        # the node still takes new links
        g = await FakeNode.connect(n, TOKEN, "G")
        await g.close()
    run(body())


def test_unknown_command_and_response_shape(node_factory):
    n = hub(node_factory)

    async def body():
        f = await FakeNode.connect(n, TOKEN, "F")
        resp = await f.command_packet("N", "frobnicate", x=1)
        assert resp["source"] == "N" and resp["destination"] == "F"
        assert resp["type"] == "response" and re.match(r"^[0-9a-f]{32}$", resp["nonce"])
        assert resp["data"] == {"ok": False, "reason": "unknown command"}
        await f.close()
    run(body())


def test_list_nodes_and_list_channels(node_factory):
    n, m = hub(node_factory, with_peer=True)

    async def body():
        f = await FakeNode.connect(n, TOKEN, "F")
        got = await f.command("N", "list-nodes")
        assert got["ok"] is True and sorted(got["nodes"]) == ["F", "M"], got
        # M is one hop further: it answers too, with its own peers
        got = await f.command("M", "list-nodes")
        assert got["ok"] is True and sorted(got["nodes"]) == ["N"], got

        got = await f.command("N", "list-channels")
        assert got == {"ok": True, "channels": []}, got
        async with Pool() as pool:
            c = await pool.connect(n)
            t0 = int(time.time() * 1000)
            assert await c.subscribe("lc-pw", password="pw") == ok()
            assert await c.subscribe("lc-open") == ok()
            t1 = int(time.time() * 1000)
            got = await f.command("N", "list-channels")
            assert got["ok"] is True, got
            chans = sorted(got["channels"], key=lambda e: e["name"])
            assert [(e["name"], e["password"]) for e in chans] == [
                ("lc-open", None), ("lc-pw", pbkdf2_hex("lc-pw", "pw"))], got
            for e in chans:
                assert set(e) == {"name", "password", "created"}, e
                assert isinstance(e["created"], int) and \
                    t0 - 1000 <= e["created"] <= t1 + 1000, (e, t0, t1)
            # a channel opened on M is not active on N: not in N's list
            cm = await pool.connect(m)
            assert await cm.subscribe("on-m") == ok()
            got = await f.command("M", "list-channels")
            assert [e["name"] for e in got["channels"]] == ["on-m"], got
            await eventually(lambda: (chan_of_sync(n, "on-m") is not None, None),
                             what="on-m reserved on N")
            got = await f.command("N", "list-channels")
            assert "on-m" not in [e["name"] for e in got["channels"]], got
            # ...but it is reserved there, held by M
            got = await f.command("N", "list-reserved-channels")
            e = [x for x in got["channels"] if x["name"] == "on-m"]
            assert len(e) == 1 and e[0]["password"] is None \
                and e[0]["holders"] == ["M"], got
        await f.close()
    run(body())


def chan_of_sync(node, name):
    return chan_of(api_node(node), name)


def test_reserve_and_unreserve_channel_commands(node_factory):
    n = hub(node_factory)
    hf = pw_hash("fr", "fpw")  # what /api/node shows
    hf_raw = pbkdf2_hex("fr", "fpw")  # what nodes send each other

    async def body():
        f = await FakeNode.connect(n, TOKEN, "F")
        async with Pool() as pool:
            c, c2, watch = await pool.connect_many(n, 3)
            created = int(time.time() * 1000)
            f.held["fr"] = {"password": hf_raw, "created": created}
            got = await f.command("N", "reserve-channel", channel="fr",
                                  password=hf_raw, created=created)
            assert got == {"ok": True}, got
            # idempotent for the same hash
            got = await f.command("N", "reserve-channel", channel="fr",
                                  password=hf_raw, created=created)
            assert got == {"ok": True}, got
            # a later, different reservation loses
            got = await f.command("N", "reserve-channel", channel="fr",
                                  password=pbkdf2_hex("fr", "other"),
                                  created=created + 5000)
            assert got == {"ok": False, "reason": "channel already reserved"}, got
            e = chan_of((await aapi_node(n)), "fr")
            assert e["password"] == hf and e["holders"] == ["F"] \
                and e["active"] is False and e["created"] == created, e
            got = await f.command("N", "list-reserved-channels")
            e = [x for x in got["channels"] if x["name"] == "fr"]
            assert e == [{"name": "fr", "password": hf_raw, "created": created,
                          "holders": ["F"]}], got
            assert await watch.channels() == ["fr"]

            # N's clients must match F's hash
            assert await c.subscribe("fr", password="wrong") == fail("invalid password")
            assert await c.subscribe("fr") == fail("invalid password")
            assert await c.subscribe("fr", password="fpw") == ok()
            # channel messages both ways (3.5)
            assert await c.publish("fr", "to F", nonce="cn") == ok("cn")
            mp = await f.next_packet(lambda p: p.get("type") == "message",
                                     what="message packet")
            assert mp["source"] == "N" and mp["data"]["channel"] == "fr"
            assert base64.b64decode(mp["data"]["message"]) == b"to F"
            assert mp["data"].get("client_nonce") == "cn"
            await f.send_packet(f.packet("*", "message", {
                "channel": "fr", "message": base64.b64encode("from F \u2713".encode()).decode(),
                "client_nonce": "fn"}))
            assert await c.recv() == delivery("from F \u2713", "fr", "fn")

            # F leaves, but N still has it open
            got = await f.command("N", "unreserve-channel", channel="fr")
            assert got == {"ok": False, "reason": "channel still open"}, got
            del f.held["fr"]
            # a channel N opened itself: reserved, still open
            assert await c2.subscribe("act", password="a") == ok()
            got = await f.command("N", "reserve-channel", channel="act",
                                  password=None, created=int(time.time() * 1000) + 5000)
            assert got == {"ok": False, "reason": "channel already reserved"}, got
            got = await f.command("N", "unreserve-channel", channel="act")
            assert got == {"ok": False, "reason": "channel still open"}, got
            assert chan_of(await aapi_node(n), "act")["password"] == pw_hash("act", "a")

            # a reservation only F held goes away with F's unreserve
            f.held["gone"] = {"password": None, "created": int(time.time() * 1000)}
            got = await f.command("N", "reserve-channel", channel="gone",
                                  password=None, created=f.held["gone"]["created"])
            assert got == {"ok": True}
            assert "gone" in await watch.channels()
            del f.held["gone"]
            got = await f.command("N", "unreserve-channel", channel="gone")
            assert got == {"ok": True}, got
            assert "gone" not in await watch.channels()
            assert chan_of(await aapi_node(n), "gone") is None
        await f.close()
    run(body())


def test_earlier_reservation_from_a_peer_wins_the_race(node_factory):
    n = hub(node_factory)

    async def body():
        f = await FakeNode.connect(n, TOKEN, "F")
        async with Pool() as pool:
            c, watch = await pool.connect(n), await pool.connect(n)
            assert await c.subscribe("contested", password="mine") == ok()
            mine = chan_of(await aapi_node(n), "contested")
            hf = pw_hash("contested", "theirs")
            hf_raw = pbkdf2_hex("contested", "theirs")
            earlier = mine["created"] - 1000
            f.held["contested"] = {"password": hf_raw, "created": earlier}
            got = await f.command("N", "reserve-channel", channel="contested",
                                  password=hf_raw, created=earlier)
            assert got["ok"] is True, got
            assert await c.recv() == {
                "type": "unsubscribed",
                "data": {"channel": "contested", "reason": "channel reservation lost"}}
            assert await c.publish("contested", "x") == fail("not subscribed")
            e = chan_of(await aapi_node(n), "contested")
            assert e["password"] == hf and e["holders"] == ["F"], e
            assert await watch.subscribe("contested", password="mine") == \
                fail("invalid password")
            assert await watch.subscribe("contested", password="theirs") == ok()
        await f.close()
    run(body())


def test_get_node_connection_gives_a_working_token(node_factory):
    n, m = hub(node_factory, with_peer=True)

    async def body():
        f = await FakeNode.connect(n, TOKEN, "F")
        got = await f.command("N", "get-node-connection", node="M")
        assert got["ok"] is True and got["host"] == url_of(m) \
            and HEX64.match(got["token"]), got
        # the token is M's, bound to F (the asker): F dials M with it
        f_at_m = await FakeNode.connect(m, got["token"], "F")
        assert f_at_m.reply["data"]["name"] == "M"
        assert await node_upgrade_status(m, got["token"]) == 403
        await wait_peers([m], {"M": ["F", "N"]}, exact=True)
        got = await f.command("N", "get-node-connection", node="nobody")
        assert got == {"ok": False, "reason": "target not connected"}, got
        await f_at_m.close()
        await f.close()
    run(body())


def test_get_latency(node_factory):
    n, m = hub(node_factory, with_peer=True)

    async def body():
        f = await FakeNode.connect(n, TOKEN, "F")

        async def measured():
            got = await f.command("N", "get-latency", node="M")
            return got.get("ok") is True, got
        got = await eventually(measured, what="a latency for M")
        assert is_number(got["latency"]) and 0 <= got["latency"] < 1000, got
        got = await f.command("N", "get-latency", node="nobody")
        assert got == {"ok": False, "reason": "target not connected"}, got
        lat = metrics(n).get("wsrelay_peer_latency_seconds", peer="M")
        assert lat is not None and 0 <= lat < 1, lat
        peer = next(p for p in (await aapi_node(n))["peers"] if p["name"] == "M")
        assert is_number(peer["latency_ms"]) and peer["dialled"] is False, peer
        await f.close()
    run(body())
