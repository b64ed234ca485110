"""
Smaller RFC 6455 / HTTP deviations of issue 10 point 5, on a real node:
 - close codes validated per RFC 6455 7.4: a valid code is echoed, a code
   that must not be sent (0-999, 1004-1006, 1015, 1016-2999, 5000 and up)
   is answered 1002;
 - a close reason that is not UTF-8 is answered 1007;
 - request headers up to 8 KiB are served (a 4,000-byte Cookie), more is
   a whole HTTP/1.1 431 a standard client reports;
and a well-behaved client on another address (127.0.0.2) is served
meanwhile (its /health within 100 ms, a round trip within 50 ms).
"""

import socket
import struct

import pytest

from conftest import (OP_CLOSE, RawWS, handshake_status, http_get, metrics,
                      run)
from conftest import served_elsewhere as conftest_served_elsewhere


def served_elsewhere(node):
    """A client from another address (127.0.0.2): its /health within
    100 ms, a round trip within 50 ms (conftest.served_elsewhere)."""
    run(conftest_served_elsewhere(node))


def refused(node, reason):
    return metrics(node).get("wsrelay_connections_refused_total",
                             reason=reason)


def test_websocket_version_8_is_426_and_counted(shared_node):
    before = refused(shared_node, "version")
    r = RawWS(shared_node, headers={"Sec-WebSocket-Version": "8"})
    try:
        assert r.status_line.startswith("HTTP/1.1 426 "), r.status_line
        assert r.headers.get("sec-websocket-version") == "13", r.headers
    finally:
        r.close()
    assert refused(shared_node, "version") == before + 1


def close_answer(node, payload):
    """Sends a close frame with @payload; returns the (code, reason) of
    the node's close frame."""
    r = RawWS(node)
    try:
        assert r.status == 101
        r.send_frame(OP_CLOSE, payload)
        got = r.recv_close(reply=False)
        assert got is not None, "no close frame in answer"
        return got
    finally:
        r.close()


VALID = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999,
         4000, 4999]
INVALID = [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535]


@pytest.mark.parametrize("code", VALID)
def test_valid_close_code_is_echoed(shared_node, code):
    got = close_answer(shared_node, struct.pack("!H", code) + b"bye")
    assert got[0] == code, got


@pytest.mark.parametrize("code", INVALID)
def test_invalid_close_code_is_1002(shared_node, code):
    got = close_answer(shared_node, struct.pack("!H", code) + b"bye")
    assert got[0] == 1002, got


def test_close_payload_of_one_byte_is_1002(shared_node):
    got = close_answer(shared_node, b"\x03")
    assert got[0] == 1002, got


def test_close_without_code_is_answered(shared_node):
    got = close_answer(shared_node, b"")
    assert got[0] in (None, 1000), got


@pytest.mark.parametrize("reason", [b"\xff", b"ok \xc3\x28", b"\xed\xa0\x80",
                                    b"\xf0\x9f\x98"])
def test_close_reason_not_utf8_is_1007(shared_node, reason):
    got = close_answer(shared_node, struct.pack("!H", 1000) + reason)
    assert got[0] == 1007, got


def test_close_reason_utf8_is_echoed(shared_node):
    got = close_answer(shared_node, struct.pack("!H", 1000) + "tschüß".encode())
    assert got == (1000, "tschüß"), got
    served_elsewhere(shared_node)


def raw_request(node, head):
    """Sends a raw request head; returns the status line and the whole
    response (read to EOF or a complete body)."""
    s = socket.create_connection(("127.0.0.1", node.port), timeout=5)
    try:
        s.sendall(head)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                hdr, body = data.split(b"\r\n\r\n", 1)
                for line in hdr.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        if len(body) >= int(line.split(b":")[1]):
                            return data
        return data
    finally:
        s.close()


def test_a_4000_byte_cookie_is_served(shared_node):
    cookie = {"Cookie": "a=" + "x" * 4000}
    status, _, body = http_get(shared_node, "/health", headers=cookie)
    assert status == 200 and b'"healthy"' in body
    assert handshake_status(shared_node, "/connect", headers=cookie) == 101


@pytest.mark.parametrize("size", [8300, 9000, 14000])
def test_headers_over_8k_are_431(shared_node, size):
    big = {"Cookie": "a=" + "x" * size}
    before = refused(shared_node, "headers")
    # a standard WebSocket client sees the status
    assert handshake_status(shared_node, "/connect", headers=big) == 431
    # and plain HTTP gets a whole HTTP/1.1 response
    resp = raw_request(shared_node, (
        "GET /health HTTP/1.1\r\nHost: x\r\nCookie: a=%s\r\n\r\n"
        % ("x" * size)).encode())
    assert resp.startswith(b"HTTP/1.1 431 "), resp[:200]
    assert b"content-length:" in resp.lower()
    assert refused(shared_node, "headers") == before + 2
    served_elsewhere(shared_node)


def test_several_headers_over_8k_together_are_431(shared_node):
    hdrs = {"Cookie": "a=" + "x" * 3000, "User-Agent": "u" * 3000,
            "Referer": "http://r/" + "y" * 3000}
    assert handshake_status(shared_node, "/connect", headers=hdrs) == 431
    served_elsewhere(shared_node)


def test_headers_beyond_lws_buffer_are_closed_not_served(shared_node):
    """Over lws's header buffer (2 x 8 KiB) lws closes the connection while
    parsing: no upgrade, no answer we could write, the node unharmed."""
    resp = raw_request(shared_node, (
        "GET /connect HTTP/1.1\r\nHost: x\r\nCookie: a=%s\r\n\r\n"
        % ("x" * 60000)).encode())
    assert not resp.startswith(b"HTTP/1.1 101"), resp[:200]
    served_elsewhere(shared_node)
