"""
The node's own views on the open internet (issue 10): GET /api/node never
shows a channel's password hash (a tag keyed by the mesh token instead),
and with [web] admin_token_file the /api paths and /metrics answer 401
(WWW-Authenticate: Bearer) without "Authorization: Bearer TOKEN", while
/health stays open; a reload changes the token; a bad token file is a
config error with file, line and reason.
"""

import hashlib
import json
import re
import signal
import subprocess

from conftest import BIN, Pool, http_get, ok, run, wait_until_sync
from meshutil import TOKEN, pbkdf2_hex, pw_hash, start_node

ADMIN = "admin-token-0123456789abcdef"
GUARDED = ("/api/node", "/api/overview", "/metrics")


def start(node_factory, tmp_path, token=ADMIN):
    f = tmp_path / "admin.token"
    f.write_text(token + "\n")
    n = start_node(node_factory, "adm", node_extra={"master": True},
                   sections={"web": {"admin_token_file": str(f)}})
    n.token_file = f
    return n


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_admin_paths_need_the_bearer_token(node_factory, tmp_path):
    n = start(node_factory, tmp_path)
    for path in GUARDED:
        for headers in ({}, bearer("wrong-token-0123456789abcdef"),
                        bearer(ADMIN + "x"), bearer(ADMIN[:-1]),
                        {"Authorization": f"Basic {ADMIN}"}):
            status, hdrs, body = http_get(n, path, headers=headers)
            assert status == 401, (path, headers, status)
            assert hdrs.get("www-authenticate", "").startswith("Bearer"), hdrs
            assert ADMIN.encode() not in body
        status, _, body = http_get(n, path, headers=bearer(ADMIN))
        assert status == 200, (path, status, body[:200])
        # the scheme is case-insensitive (RFC 7235)
        status, _, _ = http_get(n, path,
                                headers={"Authorization": f"bearer {ADMIN}"})
        assert status == 200, path
    status, _, body = http_get(n, "/health")
    assert status == 200 and "healthy" in json.loads(body)
    _, _, text = http_get(n, "/metrics", headers=bearer(ADMIN))
    m = re.search(rb'wsrelay_connections_refused_total\{reason="admin"\} (\d+)',
                  text)
    assert m and int(m.group(1)) == 15, text[-600:]
    assert ADMIN not in n.log_text()


def test_reload_changes_the_admin_token(node_factory, tmp_path):
    n = start(node_factory, tmp_path)
    new = "another-admin-token-9876543210"
    n.token_file.write_text(new)
    n.send_signal(signal.SIGHUP)
    wait_until_sync(lambda: "reload: config applied" in n.log_text(),
                    what="the reload")
    assert http_get(n, "/api/node", headers=bearer(ADMIN))[0] == 401
    assert http_get(n, "/api/node", headers=bearer(new))[0] == 200


def test_api_node_shows_no_password_hash(node_factory):
    n = start_node(node_factory, "solo")

    async def body():
        async with Pool() as pool:
            c = await pool.connect(n)
            assert await c.subscribe("vault", password="hunter2") == ok()
            assert await c.subscribe("open") == ok()
            status, _, raw = http_get(n, "/api/node")
            assert status == 200
            assert pbkdf2_hex("vault", "hunter2").encode() not in raw
            chans = {e["name"]: e for e in json.loads(raw)["channels"]}
            assert chans["open"]["password"] is None
            tag = chans["vault"]["password"]
            assert re.fullmatch(r"[0-9a-f]{16}", tag), tag
            assert tag == pw_hash("vault", "hunter2", TOKEN)
    run(body())


def check(tmp_path, content):
    f = tmp_path / "tok"
    if content is not None:
        f.write_bytes(content)
    cfg = tmp_path / "node.toml"
    cfg.write_text('[node]\nname = "x"\nlisten = "127.0.0.1:0"\n\n[web]\n'
                   f'admin_token_file = "{f}"\n')
    r = subprocess.run([BIN, "--check", "-c", str(cfg)], capture_output=True,
                       text=True, timeout=20)
    return r.returncode, r.stderr


def test_bad_admin_token_files(tmp_path):
    rc, err = check(tmp_path, None)
    assert rc != 0 and "node.toml:6: key 'web.admin_token_file': cannot read" \
        in err, err
    rc, err = check(tmp_path, b"short\n")
    assert rc != 0 and "at least 16 are needed" in err, err
    rc, err = check(tmp_path, b"has a space in it 0123456789\n")
    assert rc != 0 and "printable characters without spaces" in err, err
    rc, err = check(tmp_path, b"x" * 5000)
    assert rc != 0 and "more than 4096 bytes" in err, err
    rc, err = check(tmp_path, hashlib.sha256(b"k").hexdigest().encode() + b"\n")
    assert rc == 0, err


def test_big_api_answers_do_not_stall_the_node(node_factory):
    """Issue 10: with 20,000 channels /api/node cost 81 ms of the loop
    each; 30 clients asking in a loop pushed /health to 868 ms and 200
    unread answers grew RSS to 457 MB. An answer that is slow to build is
    reused for a second and streamed from one shared buffer."""
    import asyncio
    import http.client
    import threading

    from conftest import served_elsewhere

    N = 20000
    n = node_factory.start(limits={"max_subscriptions": N + 10,
                                   "max_queue_bytes": 64 << 20,
                                   "messages_per_second": 1000000,
                                   "messages_burst": 1000000,
                                   "max_pending_per_ip": 1000})

    async def fill():
        async with Pool() as pool:
            c = await pool.connect(n)
            for i in range(N):
                await c.send({"command": "subscribe",
                              "data": {"topic": f"chan-{i:05d}"}})
            for i in range(N):
                r = await c.recv()
                assert r["data"]["ok"] is True, r
            status, _, body = http_get(n, "/api/node", timeout=30)
            assert status == 200 and len(json.loads(body)["channels"]) == N
            size = len(body)

            stop = threading.Event()
            asked = [0]

            def loop():
                while not stop.is_set():
                    conn = http.client.HTTPConnection("127.0.0.1", n.port,
                                                      timeout=30)
                    conn.request("GET", "/api/node")
                    conn.getresponse().read()
                    conn.close()
                    asked[0] += 1
            ts = [threading.Thread(target=loop) for _ in range(30)]
            for t in ts:
                t.start()
            try:
                took_health, took_rt = await served_elsewhere(n)
            finally:
                stop.set()
                for t in ts:
                    t.join(60)
            assert asked[0] >= 30, asked
            print(f"/api/node {size} bytes; with 30 askers looping: "
                  f"/health {took_health * 1000:.1f} ms, round trip "
                  f"{took_rt * 1000:.1f} ms")

            # 200 answers nobody reads: one shared body, not 200 copies
            before = rss_kib(n)
            socks = []
            for _ in range(200):
                s = __import__("socket").create_connection(
                    ("127.0.0.1", n.port), timeout=10)
                s.setsockopt(__import__("socket").SOL_SOCKET,
                             __import__("socket").SO_RCVBUF, 4096)
                s.sendall(b"GET /api/node HTTP/1.1\r\nHost: x\r\n\r\n")
                socks.append(s)
            for s in socks:
                assert s.recv(12).startswith(b"HTTP/1.1 200")
            grown = rss_kib(n) - before
            for s in socks:
                s.close()
            print(f"200 unread answers of {size} bytes: RSS +{grown} KiB")
            assert grown * 1024 < 2 * size + 200 * 64 * 1024, grown
    run(fill(), timeout=240)


def rss_kib(node):
    with open(f"/proc/{node.proc.pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
