"""
The command-line client, `wsrelay sub|pub|list|health` (clients/cli/),
run as real processes against real nodes: sub receives what pub sends
(argument and stdin, one node and across two), --json prints the raw
frames, list, refusals (exit 1 with the server's reason), unreachable and
silent servers (exit 3, quickly / at --timeout), a node going away under a
subscriber, wss:// with --cafile and --insecure, /health's exit statuses
(0 and 1 from real nodes, 2 and the bad answers from a fake HTTP server),
and usage errors (exit 2).

No sleeps: a subscriber is ready when it says "subscribed to" on stderr
(and, across nodes, when the publishing node lists the subscriber's node
among the channel's holders); every wait has a deadline.
"""

import http.server
import json
import queue
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import BIN, DEADLINE, RawWS, SANITIZER_MARKERS, command, ok
from meshutil import api_node, chan_of, eventually_sync, mesh_config, start_mesh

RUN_DEADLINE = 20       # one short-lived client command, start to exit


def check_stderr(text):
    for marker in SANITIZER_MARKERS:
        assert marker not in text, text


def cli(*args, stdin=None, timeout=RUN_DEADLINE):
    """Runs one client command to completion; returns CompletedProcess
    (text, UTF-8)."""
    r = subprocess.run([BIN, *args], input=stdin, capture_output=True,
                       encoding="utf-8", timeout=timeout,
                       stdin=None if stdin is not None else subprocess.DEVNULL)
    check_stderr(r.stderr)
    return r


def url(node, form="ws"):
    base = f"127.0.0.1:{node.port}"
    tls = node.scheme == "https"
    return {"ws": f"{'wss' if tls else 'ws'}://{base}/connect",
            "ws-bare": f"{'wss' if tls else 'ws'}://{base}",
            "http": f"{'https' if tls else 'http'}://{base}"}[form]


def closed_port():
    """A loopback port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Sub:
    """A running `wsrelay sub`: its stdout lines arrive on a queue."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([BIN, "sub", *args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = queue.Queue()
        self.err = []
        self.err_event = threading.Event()
        self._threads = [threading.Thread(target=self._out, daemon=True),
                         threading.Thread(target=self._errs, daemon=True)]
        for t in self._threads:
            t.start()

    def _out(self):
        for raw in iter(self.proc.stdout.readline, b""):
            self.lines.put(raw.decode("utf-8").rstrip("\n"))

    def _errs(self):
        for raw in iter(self.proc.stderr.readline, b""):
            self.err.append(raw.decode("utf-8", "replace"))
            self.err_event.set()

    def stderr(self):
        return "".join(self.err)

    def wait_subscribed(self, timeout=DEADLINE):
        deadline = time.monotonic() + timeout
        while "subscribed to" not in self.stderr():
            assert self.proc.poll() is None, \
                f"sub exited {self.proc.returncode}: {self.stderr()}"
            left = deadline - time.monotonic()
            assert left > 0, f"sub did not subscribe: {self.stderr()!r}"
            self.err_event.wait(min(left, 0.1))
            self.err_event.clear()
        return self

    def line(self, timeout=DEADLINE):
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line from sub within {timeout}s; "
                                 f"stderr: {self.stderr()!r}") from None

    def wait_exit(self, timeout=DEADLINE):
        rc = self.proc.wait(timeout)
        for t in self._threads:
            t.join(5)
        check_stderr(self.stderr())
        return rc

    def stop(self, sig=signal.SIGINT):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait_exit()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def subs():
    """Starts subscribers; kills any still running at the end."""
    started = []

    def start(*args):
        s = Sub(*args)
        started.append(s)
        return s
    yield start
    for s in started:
        s.kill()


# ---------------------------------------------------------------------------
# sub and pub
# ---------------------------------------------------------------------------

def test_sub_receives_pub_argument_and_stdin(node, subs):
    s = subs(url(node), "lobby").wait_subscribed()
    text = 'héllo "wörld" \\ \t 🎉'
    r = cli("pub", url(node, "http"), "lobby", text)
    assert (r.returncode, r.stdout) == (0, ""), r
    assert s.line() == text
    # stdin: one message a line, an empty line is an empty message, the
    # last line needs no newline, "\r\n" counts as a newline
    r = cli("pub", url(node, "ws-bare"), "lobby", stdin="one\ntwo\r\n\nthree")
    assert (r.returncode, r.stdout) == (0, ""), r
    assert [s.line() for _ in range(4)] == ["one", "two", "", "three"]
    # a message beginning with '-' after "--"
    r = cli("pub", url(node), "lobby", "--", "-dash")
    assert r.returncode == 0, r
    assert s.line() == "-dash"
    assert s.stop(signal.SIGINT) == 0
    assert s.lines.empty()


def test_pub_stdin_many_lines_in_order(node, subs):
    s = subs(url(node), "bulk").wait_subscribed()
    n = 500
    r = cli("pub", url(node), "bulk",
            stdin="".join(f"message {i}\n" for i in range(n)))
    assert r.returncode == 0, r
    assert [s.line() for _ in range(n)] == [f"message {i}" for i in range(n)]
    assert s.stop(signal.SIGTERM) == 0


def test_sub_json_prints_raw_delivery_frames(node, subs):
    s = subs(url(node), "raw", "--json").wait_subscribed()
    msg = 'two\nlines and "quotes" ✓'
    assert cli("pub", url(node), "raw", msg).returncode == 0
    line = s.line()
    # one frame per line: the newline inside the message stays escaped
    assert json.loads(line) == {"type": "message", "nonce": "1",
                                "data": {"message": msg, "channel": "raw"}}
    r = cli("pub", url(node), "raw", stdin="a\nb\n")
    assert r.returncode == 0, r
    assert [json.loads(s.line())["data"]["message"] for _ in range(2)] == ["a", "b"]
    assert s.stop() == 0


def test_sub_and_pub_across_two_nodes(node_factory, subs):
    a, b = start_mesh(node_factory, ["A", "B"], edges=[("B", "A")])
    s = subs(url(b), "far").wait_subscribed()
    # A sends toward B only once it knows B holds the channel
    eventually_sync(lambda: ((chan_of(api_node(a), "far") or {}).get("holders") == ["B"],
                             api_node(a)), what="A to see B holding 'far'")
    r = cli("pub", url(a), "far", "from A")
    assert r.returncode == 0, r
    assert s.line() == "from A"
    r = cli("pub", url(a, "http"), "far", stdin="x\ny\n")
    assert r.returncode == 0, r
    assert [s.line(), s.line()] == ["x", "y"]
    assert s.stop() == 0


def test_list_prints_channel_names(node):
    r = cli("list", url(node))
    assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), r
    raw = RawWS(node)
    try:
        for i, name in enumerate(["zeta", "alpha", "ünï code"]):
            raw.send_json(command("subscribe", {"topic": name}, str(i)))
            assert raw.recv_json() == ok(str(i))
        r = cli("list", url(node, "http"))
        assert r.returncode == 0, r
        assert r.stdout.splitlines() == sorted(["zeta", "alpha", "ünï code"])
    finally:
        raw.close()


# ---------------------------------------------------------------------------
# refusals: exit 1 with the server's reason
# ---------------------------------------------------------------------------

def test_wrong_password_exits_1_with_reason(node, subs):
    raw = RawWS(node)
    try:
        raw.send_json(command("subscribe", {"topic": "vault", "password": "right"}, "s"))
        assert raw.recv_json() == ok("s")
        for args in (["sub", url(node), "vault", "--password", "wrong"],
                     ["sub", url(node), "vault"],
                     ["pub", url(node), "vault", "msg", "--password", "wrong"],
                     ["pub", url(node), "vault", "msg"]):
            r = cli(*args)
            assert r.returncode == 1, r
            assert "invalid password" in r.stderr, r
            assert r.stdout == "", r
        # the right one works, and a sub with it receives
        s = subs(url(node), "vault", "-p", "right").wait_subscribed()
        r = cli("pub", url(node), "vault", "inside", "--password", "right")
        assert r.returncode == 0, r
        assert s.line() == "inside"
        assert raw.recv_json()["data"] == {"message": "inside", "channel": "vault"}
        assert s.stop() == 0
    finally:
        raw.close()


def test_refused_message_exits_1(node_factory):
    # over max_message_bytes, but a frame under twice that (not closed 1009)
    n = node_factory.start(limits={"max_message_bytes": 1024})
    r = cli("pub", url(n), "small", "x" * 1500)
    assert r.returncode == 1, r
    assert "message too large" in r.stderr, r
    # from stdin: the line that is refused is named, and pub stops there
    r = cli("pub", url(n), "small", stdin="fine\n" + "y" * 1500 + "\nnever\n")
    assert r.returncode == 1, r
    assert "message 2 refused: message too large" in r.stderr, r


# ---------------------------------------------------------------------------
# connection errors: exit 3, never a hang
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["sub", "{u}", "c"], ["pub", "{u}", "c", "m"],
                                  ["pub", "{u}", "c"], ["list", "{u}"]])
def test_unreachable_exits_3_quickly(args):
    u = f"ws://127.0.0.1:{closed_port()}/connect"
    t0 = time.monotonic()
    r = cli(*[a.format(u=u) for a in args], stdin="m\n" if len(args) == 3 else None)
    took = time.monotonic() - t0
    assert r.returncode == 3, r
    assert "Connection refused" in r.stderr and u in r.stderr, r
    assert took < 5, f"took {took:.1f}s to fail"


def test_silent_server_times_out_exit_3():
    # accepts TCP connections (the kernel's backlog) and never answers
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        port = s.getsockname()[1]
        for args in (["list", f"ws://127.0.0.1:{port}/connect"],
                     ["sub", f"http://127.0.0.1:{port}", "c"],
                     ["health", f"http://127.0.0.1:{port}"]):
            t0 = time.monotonic()
            r = cli(*args, "--timeout", "1")
            took = time.monotonic() - t0
            assert r.returncode == 3, r
            assert "timed out" in r.stderr, r
            assert 0.9 < took < 6, f"{args[0]}: {took:.1f}s"


def test_sub_exits_3_when_the_node_goes_away(node, subs):
    s = subs(url(node), "doomed").wait_subscribed()
    assert node.stop() == []
    assert s.wait_exit() == 3
    assert "1001" in s.stderr(), s.stderr()


# ---------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------


def test_wss_verifies_the_certificate(node_factory, tls_cert, subs):
    certf, keyf = tls_cert
    n = node_factory.start(tls={"cert": str(certf), "key": str(keyf)})
    assert n.scheme == "https"
    # self-signed: refused against the system store, with the reason
    r = cli("list", url(n))
    assert r.returncode == 3, r
    assert "certificate" in r.stderr and "self-signed" in r.stderr, r
    assert cli("list", url(n), "--insecure").returncode == 0
    assert cli("list", url(n), "--cafile", str(certf)).returncode == 0
    s = subs(url(n), "sealed", "--cafile", str(certf)).wait_subscribed()
    r = cli("pub", url(n, "http"), "sealed", "over tls 🔒", "-k")
    assert r.returncode == 0, r
    assert s.line() == "over tls 🔒"
    assert s.stop() == 0
    r = cli("health", url(n, "http"), "--cafile", str(certf))
    assert r.returncode == 0, r
    assert json.loads(r.stdout)["healthy"] == "good"
    # a plaintext client on the TLS port: a connection error, not a hang
    r = cli("list", f"ws://127.0.0.1:{n.port}/connect")
    assert r.returncode == 3, r


# ---------------------------------------------------------------------------
# health
# ---------------------------------------------------------------------------

def test_health_good_exits_0(node):
    for form in ("http", "ws", "ws-bare"):
        r = cli("health", url(node, form))
        assert r.returncode == 0, r
        body = json.loads(r.stdout)
        assert body["healthy"] == "good" and body["reason"] == "healthy", body


def test_health_degraded_exits_1(node_factory):
    # a configured peer that cannot be reached: "no peers"
    n = node_factory.start(config_text=mesh_config(
        "lonely", peers=[("ghost", closed_port())]))
    r = cli("health", url(n))
    assert r.returncode == 1, r
    body = json.loads(r.stdout)
    assert (body["healthy"], body["reason"]) == ("degraded", "no peers"), body


class FakeHealth(http.server.BaseHTTPRequestHandler):
    """Answers every GET with the server's .reply: (status, body bytes,
    with Content-Length)."""

    def do_GET(self):
        status, body, length = self.server.reply
        self.server.paths.append(self.path)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def fake_http():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeHealth)
    srv.paths = []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("status,body,length,want", [
    (503, b'{"healthy":"bad","reason":"channels no clients"}', True, 2),
    (503, b'{"healthy":"bad","reason":"channels no clients"}', False, 2),
    (200, b'{"healthy":"degraded","reason":"high latency"}', True, 1),
    (200, b'{"healthy":"good","reason":"healthy"}', False, 0),
    (200, b'not json', True, 3),
    (200, b'{"healthy":"splendid"}', True, 3),
    (200, b'[]', True, 3),
    (404, b'{"healthy":"good"}', True, 3),
    (500, b'', True, 3),
])
def test_health_exit_status_mapping(fake_http, status, body, length, want):
    fake_http.reply = (status, body, length)
    port = fake_http.server_address[1]
    r = cli("health", f"ws://127.0.0.1:{port}/connect")
    assert r.returncode == want, r
    assert fake_http.paths == ["/health"]
    if want < 3:
        assert json.loads(r.stdout) == json.loads(body), r
        assert r.stderr == "", r
    else:
        assert r.stdout == "" and r.stderr.strip(), r


def test_health_unreachable_exits_3():
    r = cli("health", f"http://127.0.0.1:{closed_port()}")
    assert r.returncode == 3, r
    assert "Connection refused" in r.stderr, r


# ---------------------------------------------------------------------------
# usage
# ---------------------------------------------------------------------------

U = "ws://127.0.0.1:9/connect"


@pytest.mark.parametrize("args", [
    ["sub"], ["sub", U], ["sub", U, "c", "extra"], ["sub", U, ""],
    ["sub", U, "c", "--bogus"], ["sub", U, "c", "--timeout", "0"],
    ["sub", U, "c", "--timeout", "soon"], ["sub", U, "c", "--password"],
    ["pub", U], ["pub", "not-a-url", "c", "m"], ["pub", U, "c", "m", "more"],
    ["pub", U, "c", "m", "--json"], ["list"], ["list", U, "--password", "p"],
    ["list", "ftp://127.0.0.1:9"], ["list", "ws://127.0.0.1:99999"],
    ["list", "ws://:9/connect"], ["health"], ["health", U, U],
    ["health", U, "--cafile", "/nonexistent/ca.pem"],
])
def test_usage_errors_exit_2(args):
    r = cli(*args)
    assert r.returncode == 2, r
    assert r.stdout == "", r
    assert r.stderr.startswith(f"wsrelay {args[0]}: "), r
    assert "usage: wsrelay " + args[0] in r.stderr, r


def test_invalid_utf8_on_stdin_exits_2(node):
    p = subprocess.run([BIN, "pub", url(node), "bytes"], input=b"ok\n\xff\xfe\n",
                       capture_output=True, timeout=RUN_DEADLINE)
    assert p.returncode == 2, p
    assert b"line 2: not valid UTF-8" in p.stderr, p


@pytest.mark.parametrize("cmd", ["sub", "pub", "list", "health"])
def test_help_documents_exit_statuses(cmd):
    r = cli(cmd, "--help")
    assert r.returncode == 0 and r.stderr == "", r
    assert r.stdout.startswith(f"usage: wsrelay {cmd} URL"), r.stdout
    assert "Exit status: 0 " in r.stdout and " 3 " in r.stdout, r.stdout
    assert "--timeout" in r.stdout, r.stdout


def test_node_help_lists_the_client():
    r = cli("--help")
    assert r.returncode == 0, r
    for cmd in ("sub", "pub", "list", "health"):
        assert f"wsrelay {cmd} URL" in r.stdout, r.stdout
    assert "Client exit status" in r.stdout, r.stdout
    # anything else is still the node's command line
    r = cli("publish")
    assert r.returncode == 2 and "unexpected argument 'publish'" in r.stderr, r
