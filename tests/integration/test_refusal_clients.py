"""
Every refusal of an upgrade is a whole HTTP/1.1 response that standard
clients report as its status (PROTOCOL.md 7.2, issue 10 point 3): Node's
`ws` and Debian's Chromium (tests/browser/refusals.mjs), besides Python's
websockets (conftest.handshake_status, used by every other test):
404 (path), 403 (Origin), 429 (max_clients_per_ip), 431 (headers over
8 KiB: a header for `ws`, cookies in the browser), 426 (version 8, `ws`
only: a browser always sends 13), 503 (max_clients full). Skips only when
node or /usr/bin/chromium is missing (`scripts/deps.sh test` installs both).
"""

import asyncio
import json
import socket
import subprocess

from conftest import LOG_DIR, Client, handshake_status, run
from browserutil import BROWSER_DIR, browser_tools

OTHER = "127.0.0.2"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refusals_reported_by_node_ws_and_chromium(node_factory):
    node_bin = browser_tools()
    assert (BROWSER_DIR / "node_modules" / "ws").is_dir(), \
        "ws is missing: run `npm ci` in tests/browser (scripts/deps.sh test does)"
    port = free_port()
    page = f"http://127.0.0.1:{port}/health"
    # a: the page's origin listed, one client per address
    a = node_factory.start(
        node={"name": "ra", "listen": f"127.0.0.1:{port}"},
        web={"allowed_origins": [f"http://127.0.0.1:{port}"]},
        limits={"max_clients_per_ip": 1})
    # b: one client in all
    b = node_factory.start(name="rb", limits={"max_clients": 1})
    wa, wb = a.ws_url("/connect"), b.ws_url("/connect")
    big = "x" * 3000
    cases = {
        "ws": [
            {"name": "ws-404", "url": a.ws_url("/elsewhere")},
            {"name": "ws-403", "url": wa,
             "headers": {"Origin": "https://evil.example"}},
            {"name": "ws-429", "url": wa},
            {"name": "ws-431", "url": wb, "headers": {"Cookie": "c=" + "x" * 9000}},
            {"name": "ws-426", "url": wb, "protocolVersion": 8},
            {"name": "ws-503", "url": wb},
        ],
        "browser": [
            {"name": "br-404", "page": page, "url": a.ws_url("/elsewhere")},
            {"name": "br-403", "page": f"http://localhost:{port}/health",
             "url": wa},
            {"name": "br-429", "page": page, "url": wa},
            {"name": "br-431", "page": page, "url": wa,
             "cookies": {"c1": big, "c2": big, "c3": big}},
            {"name": "br-503", "page": page, "url": wb},
        ],
    }

    async def body():
        # the one slot of a for 127.0.0.1, the one of b from elsewhere
        ca = await Client.connect(a)
        cb = await Client.connect(b, local_addr=(OTHER, 0))
        try:
            log = LOG_DIR / f"{node_factory.test_id}.refusals.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "wb") as errf:
                r = await asyncio.to_thread(
                    subprocess.run, [node_bin, "refusals.mjs", json.dumps(cases)],
                    cwd=BROWSER_DIR, stdout=subprocess.PIPE, stderr=errf,
                    timeout=240)
            assert r.returncode == 0, \
                f"refusals.mjs exited {r.returncode}; log {log}:\n" + \
                log.read_text(errors="replace")[-3000:]
            return json.loads(r.stdout)
        finally:
            await ca.close()
            await cb.close()

    got = run(body(), timeout=300)
    want = {c["name"]: int(c["name"].split("-")[1])
            for kind in cases.values() for c in kind}
    assert got == want, got
    # the same slots free again: the clients are let in
    assert handshake_status(a, "/connect") == 101
    assert handshake_status(b, "/connect") == 101
