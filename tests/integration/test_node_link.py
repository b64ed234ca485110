"""The accepted side of WS /node (PROTOCOL.md 3.1, 3.2, 3.4): the token
is checked before the upgrade, the handshake and its reply, 4409 for a
duplicate name, malformed packets dropped and counted while the link
stays up, a flood of them closed with 1002, and "unknown command" for a
command the node does not know. Real node processes, raw WebSocket."""
import json
import os
import time

from conftest import (RawWS, metrics, raw_handshake_status, wait_until_sync,
                      health)

TOKEN = "s3cret-node-token"


def start(node_factory, **kw):
    return node_factory.start(node={"token": TOKEN}, **kw)


def link(n, name="peer-a", url="ws://127.0.0.1:1/node"):
    ws = RawWS(n, path="/node", headers={"Authentication": TOKEN})
    assert ws.status == 101
    ws.send_json({"command": "handshake", "data": {"name": name, "url": url}})
    return ws


def nonce():
    return os.urandom(16).hex()


def recv_reply(ws, nc):
    """The response to command @nc; the node's own packets on the link
    (onboarding commands, announces) are skipped."""
    while True:
        pkt = ws.recv_json()
        if pkt.get("type") == "response" and pkt.get("nonce") == nc:
            return pkt


def test_token_checked_before_upgrade(node_factory):
    n = start(node_factory)
    assert raw_handshake_status(n, "/node") == 403
    assert raw_handshake_status(n, "/node", {"Authentication": TOKEN + "x"}) == 403
    assert raw_handshake_status(n, "/node", {"Authentication": TOKEN[:-1]}) == 403
    assert raw_handshake_status(n, "/node", {"Authentication": TOKEN}) == 101


def test_no_token_configured_refuses_every_link(node_factory):
    n = node_factory.start()
    assert raw_handshake_status(n, "/node", {"Authentication": TOKEN}) == 403


def test_handshake_reply_and_peers_up(node_factory):
    n = start(node_factory, name="hub")
    ws = link(n)
    assert ws.recv_json() == {"type": "response",
                              "data": {"ok": True, "name": "hub",
                                       "url": f"ws://127.0.0.1:{n.port}/node"}}
    wait_until_sync(lambda: metrics(n).get("wsrelay_peers_up") == 1,
                    what="peers_up == 1")
    ws.close()
    wait_until_sync(lambda: metrics(n).get("wsrelay_peers_up") == 0,
                    what="peers_up back to 0")


def test_own_name_and_duplicate_name_get_4409(node_factory):
    n = start(node_factory, name="hub")
    own = link(n, name="hub")
    assert own.recv_close() == (4409, "duplicate node")
    first = link(n, name="peer-a")
    assert first.recv_json()["data"]["ok"] is True
    second = link(n, name="peer-a")
    assert second.recv_close() == (4409, "duplicate node")
    # the first link is untouched
    nc = nonce()
    first.send_json({"source": "peer-a", "destination": "hub", "type": "command",
                     "nonce": nc, "data": {"command": "no-such"}})
    assert recv_reply(first, nc)["data"]["reason"] == "unknown command"


def test_invalid_handshake_is_a_protocol_error(node_factory):
    n = start(node_factory)
    for bad in ({"command": "hello", "data": {"name": "x"}},
                {"command": "handshake", "data": {"name": "bad name!"}},
                {"command": "handshake", "data": {}},
                "not json"):
        ws = RawWS(n, path="/node", headers={"Authentication": TOKEN})
        ws.send_text(bad if isinstance(bad, str) else json.dumps(bad))
        assert ws.recv_close() == (1002, "invalid handshake"), bad


def test_no_handshake_within_5s_closes(node_factory):
    n = start(node_factory)
    ws = RawWS(n, path="/node", headers={"Authentication": TOKEN})
    t0 = time.monotonic()
    got = ws.recv_close(timeout=12)
    took = time.monotonic() - t0
    assert 4 <= took <= 10, took
    assert got is None or got[0] != 1000


def test_unknown_command_answered_to_its_source(node_factory):
    n = start(node_factory, name="hub")
    ws = link(n)
    ws.recv_json()
    nc = nonce()
    ws.send_json({"source": "peer-a", "destination": "hub", "type": "command",
                  "nonce": nc, "data": {"command": "frobnicate"}})
    resp = recv_reply(ws, nc)
    assert resp == {"source": "hub", "destination": "peer-a", "type": "response",
                    "nonce": nc, "ttl": 16,
                    "data": {"ok": False, "reason": "unknown command"}}
    # "*" commands are processed too
    nc = nonce()
    ws.send_json({"source": "peer-a", "destination": "*", "type": "command",
                  "nonce": nc, "data": {"command": "frobnicate"}})
    assert recv_reply(ws, nc)["nonce"] == nc


def test_garbage_dropped_counted_link_stays_up(node_factory):
    n = start(node_factory, name="hub")
    ws = link(n)
    ws.recv_json()
    ws.send_text("{not json")
    ws.send_json({"source": "peer-a", "destination": "hub", "type": "command",
                  "nonce": "XYZ", "data": {"command": "x"}})
    ws.send_json({"source": "peer-a", "destination": "hub", "type": "teleport",
                  "nonce": nonce(), "data": {}})
    nc = nonce()
    ws.send_json({"source": "peer-a", "destination": "hub", "type": "command",
                  "nonce": nc, "data": {"command": "still-there"}})
    assert recv_reply(ws, nc)["nonce"] == nc
    m = metrics(n)
    assert m.get("wsrelay_inm_packets_dropped_total", reason="json") == 1
    assert m.get("wsrelay_inm_packets_dropped_total", reason="nonce") == 1
    assert m.get("wsrelay_inm_packets_dropped_total", reason="type") == 1
    assert m.get("wsrelay_inm_packets_in_total") == 1
    assert m.get("wsrelay_peers_up") == 1


def test_malformed_flood_closes_with_1002(node_factory):
    n = start(node_factory, name="hub")
    ws = link(n)
    ws.recv_json()
    for _ in range(101):
        ws.send_text("garbage")
    assert ws.recv_close() == (1002, "malformed packets")
    wait_until_sync(lambda: metrics(n).get(
        "wsrelay_inm_malformed_disconnects_total") == 1, what="counted")
    # other links and clients are unaffected
    assert health(n)[0] == 200
