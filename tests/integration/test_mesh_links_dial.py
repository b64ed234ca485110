"""How a dial learns that its attempt ended (node/link.c), against a fake
peer: a plain TCP listener that reads the /node upgrade request and then
ends the connection in a chosen way, before the 101 answer is complete.

lws 4.1.6 keeps a WebSocket client in its HTTP role until the 101 has
been parsed. A connection that the peer resets while lws waits for that
answer is closed through lws_service_fd_tsi's hang-up check (libuv reports
the socket error as UV_EBADF, lws turns it into POLLHUP), and
__lws_close_free_wsi then calls LWS_CALLBACK_CLOSED_CLIENT_HTTP only:
neither CLIENT_CONNECTION_ERROR nor CLIENT_CLOSED. The dial must end its
attempt on that callback with a reason, not wait for the WSI_DESTROY
backstop ("connection freed without a close", logged at debug level) or
the 5 s watchdog.
"""
import base64
import hashlib
import re
import socket
import struct
import threading
import time

import pytest

from conftest import DEADLINE, wait_until_sync

PARTIAL_101 = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_101(request):
    """A complete 101 for the dial's upgrade request."""
    key = re.search(rb"(?im)^sec-websocket-key:\s*(\S+)", request).group(1)
    acc = base64.b64encode(hashlib.sha1(key + WS_GUID.encode()).digest())
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + acc +
            b"\r\nSec-WebSocket-Protocol: wsrelay-node\r\n\r\n")


class FakePeer:
    """Accepts connections on loopback, one at a time; for each, reads the
    HTTP request, optionally sends `answer` (bytes, or a function of the
    request) after `delay` seconds, then closes with a reset (SO_LINGER 0)
    or a plain FIN, or (ending None) holds the connection open."""

    def __init__(self, answer=b"", ending="reset", delay=0.0):
        self.answer = answer
        self.ending = ending
        self.delay = delay
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        self.held = []
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(DEADLINE)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                with self.lock:
                    self.requests.append((time.monotonic(), data))
                if self.delay:
                    time.sleep(self.delay)  # a slow peer, not a sync
                if callable(self.answer):
                    c.sendall(self.answer(data))
                elif self.answer:
                    c.sendall(self.answer)
            except OSError:
                pass
            if self.ending is None:
                self.held.append(c)
                continue
            if self.ending == "reset":
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
            c.close()

    def count(self):
        with self.lock:
            return len(self.requests)

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()
        for c in self.held:
            c.close()


@pytest.fixture
def fake_peer(request):
    peers = []

    def make(**kw):
        p = FakePeer(**kw)
        peers.append(p)
        return p
    yield make
    for p in peers:
        p.close()


def dialler_config(port, level="debug"):
    return ('[node]\nname = "leaf"\nlisten = "127.0.0.1:0"\n'
            f'[log]\nlevel = "{level}"\n'
            '[mesh]\nreconnect_min_ms = 50\nreconnect_max_ms = 200\n'
            '[[peers]]\nname = "hub"\n'
            f'url = "ws://127.0.0.1:{port}/node"\ntoken = "tok"\n')


def wait_requests(peer, n, timeout=DEADLINE):
    wait_until_sync(lambda: peer.count() >= n, timeout,
                    what=f"{n} dial(s) at the fake peer")


@pytest.mark.parametrize("answer,ending,reason", [
    # lws: CLOSED_CLIENT_HTTP only (the case this file is about)
    (b"", "reset", "connection lost before the upgrade answer"),
    (PARTIAL_101, "reset", "connection lost before the upgrade answer"),
    # lws: CLIENT_CONNECTION_ERROR with its own reason
    (b"", "fin", "read failed"),
    (PARTIAL_101, "fin", "read failed"),
], ids=["reset", "partial-101-reset", "fin", "partial-101-fin"])
def test_dial_ended_during_upgrade_is_told_by_lws(node_factory, fake_peer,
                                                  answer, ending, reason):
    peer = fake_peer(answer=answer, ending=ending)
    leaf = node_factory.start(config_text=dialler_config(peer.port))
    # three attempts: each ended and was redialled with backoff
    wait_requests(peer, 3)
    wait_until_sync(lambda: leaf.log_text().count("redialling") >= 2,
                    what="two attempts ended")
    text = leaf.log_text()
    assert "connection freed without a close" not in text, \
        "an attempt ended on WSI_DESTROY, not on a callback lws sent"
    assert "no answer for" not in text
    assert "node link 'hub' up" not in text
    assert f"peer 'hub': {reason}, redialling" in text


def test_slow_upgrade_then_silence_is_dropped_by_the_watchdog(node_factory,
                                                              fake_peer):
    """The backstop: a peer that answers the upgrade after 3 s (every lws
    phase within lws's own 5 s limit) and then never sends its handshake.
    Our handshake timeout would end the link 5 s after the upgrade; the
    watchdog bounds the whole attempt to 5 s (PROTOCOL.md 3.1) and the
    dial starts anew."""
    peer = fake_peer(answer=accept_101, delay=3.0, ending=None)
    leaf = node_factory.start(config_text=dialler_config(peer.port, "info"))
    wait_requests(peer, 1)
    leaf.wait_log(r"peer 'hub': no answer for 5000 ms, dropping the attempt",
                  timeout=5 + DEADLINE)
    wait_requests(peer, 2)
    took = peer.requests[1][0] - peer.requests[0][0]
    assert 4.5 <= took < 7.5, took
