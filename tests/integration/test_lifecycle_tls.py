"""
Process lifecycle (SIGTERM / SIGINT with clients), endpoint routing (404,
the /node 403), and TLS (PROTOCOL.md section 1).
"""

import asyncio
import http.client
import signal
import ssl
import time
import warnings

import pytest
import websockets

from conftest import (EXIT_DEADLINE, Pool, RawWS, command, delivery,
                      http_get, ok, raw_handshake_status, run)


# ---------------------------------------------------------------------------
# shutdown
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_closes_clients_1001_and_exits_0(node, sig):
    async def body():
        async with Pool() as pool:
            subs = await pool.connect_many(node, 3)
            assert await subs[0].subscribe("bye") == ok()
            assert await subs[1].subscribe("bye") == ok()
            assert await subs[2].list() == ok(channels=["bye"])
            raw = RawWS(node)
            assert raw.status == 101
            raw.send_json(command("subscribe", {"topic": "bye"}, "r"))
            assert await asyncio.to_thread(raw.recv_json) == ok("r")

            node.send_signal(sig)
            codes = await asyncio.gather(*(c.wait_closed(EXIT_DEADLINE + 5) for c in subs))
            for code, _ in codes:
                assert code == 1001, codes
            got = await asyncio.to_thread(raw.recv_close, EXIT_DEADLINE + 5)
            raw.close()
            assert got is not None and got[0] == 1001, got
            rc = await asyncio.to_thread(node.wait_exit, EXIT_DEADLINE)
            assert rc == 0, f"exit status {rc} after {sig.name}"
    run(body())


def test_sigterm_with_no_clients_exits_0(node):
    node.send_signal(signal.SIGTERM)
    assert node.wait_exit(EXIT_DEADLINE) == 0


# ---------------------------------------------------------------------------
# routing
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/nope", "/connectx", "/healthz", "/node/x",
                                  "/health/extra", "/metrics2"])
def test_unknown_http_path_404(node, path):
    # ("/" is the demo page: test_static.py)
    status, _, _ = http_get(node, path)
    assert status == 404


@pytest.mark.parametrize("path", ["/nope", "/", "/connect/x", "/nodes", "/connectx"])
def test_websocket_upgrade_on_other_path_404(node, path):
    assert raw_handshake_status(node, path) == 404


def test_node_endpoint_requires_authentication(node):
    assert raw_handshake_status(node, "/node") == 403
    assert raw_handshake_status(node, "/node", {"Authentication": "not-a-token"}) == 403
    assert raw_handshake_status(node, "/node", {"Authentication": ""}) == 403
    # the node still serves clients afterwards
    async def body():
        async with Pool() as pool:
            c = await pool.connect(node)
            assert await c.list() == ok(channels=[])
    run(body())


def test_health_and_metrics_served_on_loopback(node):
    assert http_get(node, "/health")[0] == 200
    assert http_get(node, "/metrics")[0] == 200


# ---------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------


def client_ctx(certf):
    ctx = ssl.create_default_context(cafile=str(certf))
    return ctx


def start_tls(node_factory, tls_cert, **node_over):
    certf, keyf = tls_cert
    node_kw = {"listen": "127.0.0.1:0", **node_over}
    return node_factory.start(ssl_context=client_ctx(certf), node=node_kw,
                              tls={"cert": str(certf), "key": str(keyf)})


def test_tls_https_and_wss(node_factory, tls_cert):
    n = start_tls(node_factory, tls_cert)
    assert n.scheme == "https"
    assert "listening on https://" in n.log_text()
    status, hdrs, body = http_get(n, "/health")
    assert status == 200
    assert b'"healthy"' in body
    assert http_get(n, "/metrics")[0] == 200

    async def body_():
        async with Pool() as pool:
            a, b = await pool.connect_many(n, 2)
            assert a.ws.transport.get_extra_info("ssl_object") is not None
            assert await a.subscribe("secure", password="pw") == ok()
            assert await b.subscribe("secure", password="pw") == ok()
            assert await a.publish("secure", "over tls \U0001F512", "t") == ok("t")
            assert await b.recv() == delivery("over tls \U0001F512", "secure", "t")
    run(body_())


def test_tls_port_refuses_plaintext(node_factory, tls_cert):
    n = start_tls(node_factory, tls_cert)
    conn = http.client.HTTPConnection("127.0.0.1", n.port, timeout=10)
    served = False
    try:
        conn.request("GET", "/health")
        resp = conn.getresponse()
        body = resp.read()
        served = resp.status == 200 and b"healthy" in body
    except (OSError, http.client.HTTPException):
        pass
    finally:
        conn.close()
    assert not served, "plain HTTP /health answered on the TLS port"

    async def body_():
        try:
            ws = await websockets.connect(f"ws://127.0.0.1:{n.port}/connect", open_timeout=10)
        except (OSError, websockets.exceptions.WebSocketException, asyncio.TimeoutError):
            return
        await ws.close()
        raise AssertionError("plain ws:// upgrade accepted on the TLS port")
    run(body_())


def test_tls_rejects_tls_1_1(node_factory, tls_cert):
    n = start_tls(node_factory, tls_cert)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(tls_cert[0]))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            ctx.minimum_version = ssl.TLSVersion.TLSv1_1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ValueError, ssl.SSLError):
        pytest.skip("this Python/OpenSSL cannot offer TLS 1.1")
    conn = http.client.HTTPSConnection("127.0.0.1", n.port, timeout=10, context=ctx)
    with pytest.raises((ssl.SSLError, OSError)):
        conn.request("GET", "/health")
        conn.getresponse().read()
    conn.close()
    # a TLS 1.2+ client still works
    assert http_get(n, "/health")[0] == 200


def test_tls_on_non_loopback_needs_no_insecure_flag(node_factory, tls_cert):
    n = start_tls(node_factory, tls_cert, listen="0.0.0.0:0")
    assert n.scheme == "https"
    assert "insecure" not in n.log_text().lower()
    assert http_get(n, "/health")[0] == 200


def test_tls_missing_certificate_refuses_to_start(node_factory, tmp_path):
    n = node_factory.start(wait=False, tls={"cert": str(tmp_path / "nope.pem"),
                                            "key": str(tmp_path / "nope.key")})
    n.expect_clean_exit = False
    rc = n.wait_exit(10)
    assert rc is not None, "node started without its certificate"
    assert rc != 0
    assert n.port is None, "node logged 'listening on' without its certificate"


def test_refusals_are_whole_http_1_1_responses(node_factory, tls_cert):
    """Every refused upgrade is a complete HTTP/1.1 response that a
    standard client reports as its status (PROTOCOL.md 7.2), in plain
    text and over TLS."""
    plain = node_factory.start()
    tls = start_tls(node_factory, tls_cert, listen="127.0.0.1:0")
    for n in (plain, tls):
        assert raw_handshake_status(n, "/elsewhere") == 404
        assert raw_handshake_status(n, "/node") == 403
        assert raw_handshake_status(n, "/connect") == 101
    # the bytes: status line, length, close, and a body of that length
    raw = RawWS(plain, "/elsewhere")
    try:
        assert raw.status_line == "HTTP/1.1 404 Not Found", raw.status_line
        assert raw.headers["connection"] == "close", raw.headers
        deadline = time.monotonic() + 5
        while raw._read_more(deadline):
            pass  # to the node's close
        assert int(raw.headers["content-length"]) == len(raw.buf), \
            (raw.headers, raw.buf)
    finally:
        raw.close()


def test_port_already_taken_exits_1_with_the_reason(node_factory):
    first = node_factory.start()
    n = node_factory.start(wait=False, node={"name": "t2",
                                             "listen": f"127.0.0.1:{first.port}"})
    rc = n.wait_exit(EXIT_DEADLINE)
    assert rc == 1, (rc, n.log_text())
    assert f"cannot listen on 127.0.0.1:{first.port}: Address already in use" \
        in n.log_text(), n.log_text()
    assert "listening on" not in n.log_text()
    n.expect_clean_exit = False
    # the first node was not disturbed
    assert http_get(first, "/health")[0] == 200


def test_head_health_is_the_status_without_a_body(node):
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=5)
    try:
        conn.request("HEAD", "/health")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Content-Type") == "application/json"
        assert int(resp.getheader("Content-Length")) > 10
        assert resp.read() == b""
        # the connection stays usable: the HEAD answer had no body
        conn.request("GET", "/health")
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200 and b'"healthy"' in body
    finally:
        conn.close()


def test_websocket_version_other_than_13_is_426(node):
    for v in ("8", "12", "14", "x"):
        r = RawWS(node, "/connect", headers={"Sec-WebSocket-Version": v})
        try:
            assert r.status == 426, (v, r.status_line)
            assert r.headers.get("sec-websocket-version") == "13", r.headers
        finally:
            r.close()
    assert raw_handshake_status(node, "/connect") == 101
