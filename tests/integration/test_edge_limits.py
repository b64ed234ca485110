"""
Origins and per-address limits (PROTOCOL.md 7.2, 7.5.4, 7.5.6) on a real
node, each refusal seen by a standard client (Python's websockets) as its
HTTP status, and a well-behaved client on another address (127.0.0.2)
served meanwhile:
 - [web] allowed_origins: an unlisted Origin is refused 403; a listed one
   and no Origin at all are let in;
 - [limits] max_clients_per_ip: one more from the same address is 429, a
   closed connection frees its slot at once, another address is not
   affected;
 - [limits] messages_per_second / messages_burst: a send over the bucket
   is "rate limited" and not delivered; a send refused for another reason
   takes no token; the bucket refills.
"""

import asyncio
import os
import re
import http.client
import time

import websockets

from conftest import (wait_metric, DEADLINE, Client, Pool, delivery, fail,
                      handshake_status, health, metrics, ok, run,
                      served_elsewhere)

OTHER = "127.0.0.2"  # loopback too: another client address


async def connect_from(node, addr, **kw):
    return await Client.connect(node, local_addr=(addr, 0), **kw)


def refused(node, reason):
    return metrics(node).get("wsrelay_connections_refused_total",
                             reason=reason)


def test_allowed_origins(node_factory):
    n = node_factory.start(web={"allowed_origins": [
        "https://app.example.com", "http://localhost:3000"]})
    status = lambda origin: handshake_status(  # noqa: E731
        n, "/connect", {"Origin": origin} if origin else None)
    assert status("https://evil.example.net") == 403
    assert status("https://app.example.com.evil.net") == 403
    assert status("http://app.example.com") == 403  # another scheme
    assert status("https://app.example.com") == 101
    assert status("http://localhost:3000") == 101
    assert status(None) == 101  # non-browser clients send none
    assert refused(n, "origin") == 3
    run(served_elsewhere(n))


def test_max_clients_per_ip(node_factory):
    n = node_factory.start(limits={"max_clients_per_ip": 3})

    async def body():
        async with Pool() as pool:
            mine = [await pool.connect(n) for _ in range(3)]
            st = await asyncio.to_thread(handshake_status, n, "/connect")
            assert st == 429
            # another address is not affected
            await served_elsewhere(n)
            # a closed connection frees its slot at once
            await mine[0].close()
            await asyncio.wait_for(mine[0].ws.wait_closed(), DEADLINE)

            async def admitted():
                try:
                    c = await Client.connect(n)
                except websockets.exceptions.InvalidStatusCode as e:
                    assert e.status_code == 429
                    return None
                return c
            deadline = time.monotonic() + DEADLINE
            c = await admitted()
            while c is None and time.monotonic() < deadline:
                # the node sees the close a moment after the client
                await asyncio.sleep(0.05)
                c = await admitted()
            assert c is not None, "the freed slot was not given back"
            assert await c.alive() == []
            await c.close()
    run(body())
    assert refused(n, "per_ip") >= 1


def test_send_bucket(node_factory):
    n = node_factory.start(limits={"messages_per_second": 2,
                                   "messages_burst": 3})

    async def body():
        async with Pool() as pool:
            pub, sub = await pool.connect(n), await pool.connect(n)
            assert await pub.subscribe("b") == ok()
            assert await sub.subscribe("b") == ok()
            for i in range(3):  # the bucket starts full
                assert await pub.publish("b", f"m{i}", f"n{i}") == ok(f"n{i}")
                assert await sub.recv() == delivery(f"m{i}", "b", f"n{i}")
            # empty now: refused and not delivered; a send refused for
            # another reason is answered that reason and takes nothing
            assert await pub.publish("b", "over", "x") == fail("rate limited", "x")
            assert await pub.publish("nope", "y", "y") == fail("not subscribed", "y")
            await sub.expect_quiet()
            await served_elsewhere(n)
            # another connection has its own bucket
            assert await sub.publish("b", "from sub", "s") == ok("s")
            assert await pub.recv() == delivery("from sub", "b", "s")
            # refilled at 2 a second
            deadline = time.monotonic() + DEADLINE
            while True:
                r = await pub.publish("b", "later", "l")
                if r == ok("l"):
                    break
                assert r == fail("rate limited", "l"), r
                assert time.monotonic() < deadline, "the bucket never refilled"
                await asyncio.sleep(0.1)  # a refill period, not a sync
            assert await sub.recv() == delivery("later", "b", "l")
    run(body())
    m = metrics(n)
    assert m.get("wsrelay_client_sends_rate_limited_total") >= 1


def test_list_is_capped_and_never_cuts_its_asker(node_factory):
    """`list` answers at most [limits] max_list names ("truncated": true),
    and an answer bigger than max_queue_bytes is sent whole rather than
    closing the asker as a slow consumer (issue 10)."""
    n = node_factory.start(limits={"max_list": 40, "max_queue_bytes": 4096,
                                   "max_message_bytes": 1024})
    names = sorted(f"c{i:03d}-" + "x" * 100 for i in range(60))

    async def body():
        async with Pool() as pool:
            holders = [await pool.connect(n) for _ in range(2)]
            for i, ch in enumerate(names):
                assert await holders[i % 2].subscribe(ch, nonce=f"s{i}") \
                    == ok(f"s{i}")
            asker = await pool.connect(n)
            r = await asker.list(nonce="l")
            assert r == ok("l", channels=names[:40], truncated=True), \
                {k: v for k, v in r["data"].items() if k != "channels"}
            # 40 names of 104 bytes: more than max_queue_bytes, delivered
            assert len(str(r)) > 4096
            assert await asker.alive() == names[:40]
    run(body())


def test_node_endpoint_guarded_like_a_login(node_factory):
    """/node: 10 wrong Authentication tokens in 10 s from one address, then
    429 for that address (the right token included), counted; another
    address is served; wrong passwords count per address too."""
    token = "edge-guard-token-0123456789"
    n = node_factory.start(node={"token": token})

    async def status(tok, addr="127.0.0.1"):
        try:
            ws = await websockets.connect(
                n.ws_url("/node"), extra_headers={"Authentication": tok},
                local_addr=(addr, 0), open_timeout=DEADLINE,
                ping_interval=None)
        except websockets.exceptions.InvalidStatusCode as e:
            return e.status_code
        await ws.close()
        return 101

    async def body():
        for i in range(10):
            assert await status(f"wrong-{i}") == 403, i
        assert await status(token) == 429
        assert await status("wrong-again") == 429
        # another address: not held off
        assert await status(token, OTHER) == 101
        await served_elsewhere(n)
    run(body())
    m = metrics(n)
    assert m.get("wsrelay_node_auth_failures_total") == 10
    assert m.get("wsrelay_node_auth_blocked_total") == 2


def test_password_failures_count_per_address(node_factory):
    n = node_factory.start()

    async def body():
        async with Pool() as pool:
            owner = await pool.connect(n)
            assert await owner.subscribe("safe", password="right") == ok()
            # five wrong guesses, each on a new connection
            for i in range(5):
                c = await pool.connect(n)
                assert await c.subscribe("safe", password=f"guess{i}") == \
                    fail("invalid password")
                await c.close()
            late = await pool.connect(n)
            assert await late.subscribe("safe", password="right") == \
                fail("rate limited")
            # subscribes without a password still work
            assert await late.subscribe("open-one") == ok()
            await served_elsewhere(n)
            other = await connect_from(n, OTHER)
            assert await other.subscribe("safe", password="right") == ok()
            await other.close()
    run(body())


def test_password_hash_queue_is_bounded(node_factory):
    """A flood of subscribes with passwords from one address fills at most
    8 places of the PBKDF2 worker's queue (256 in all): the rest are
    answered "rate limited" at once, and a client on another address gets
    its subscribe answered promptly."""
    n = node_factory.start(limits={"password_failures_per_ip": 1000})

    async def body():
        async with Pool() as pool:
            owner = await connect_from(n, OTHER)
            assert await owner.subscribe("vault", password="right") == ok()
            flood = await pool.connect_many(n, 40)
            # all sent before any answer: the queue bound decides
            for i, c in enumerate(flood):
                await c.send({"command": "subscribe", "nonce": str(i),
                              "data": {"topic": "vault",
                                       "password": f"guess-{i}"}})
            t0 = time.monotonic()
            friend = await connect_from(n, OTHER)
            assert await friend.subscribe("vault", password="right") == ok()
            waited = time.monotonic() - t0
            await served_elsewhere(n)  # while the hashes are worked
            answers = [await c.recv() for c in flood]
            limited = sum(a == fail("rate limited", str(i))
                          for i, a in enumerate(answers))
            wrong = sum(a == fail("invalid password", str(i))
                        for i, a in enumerate(answers))
            assert limited + wrong == 40, answers
            assert wrong <= 8 and limited >= 32, (wrong, limited)
            # the friend waited for at most the 8 queued hashes ahead
            assert waited < 5, waited
            await owner.close()
            await friend.close()
    run(body())


def test_hung_up_clients_waiting_for_pbkdf2_are_dropped(node_factory):
    """Issue 10: each queued PBKDF2 job pinned its socket, and jobs of
    clients that had hung up still ran. 31 addresses queue 8 jobs each
    (248: seconds of work), then every one of those clients sends its FIN
    (a paused socket does not report it). The node notices, closes them
    and drops their queued jobs; a friend's subscribe that needs a PBKDF2
    of its own is answered promptly, and the dropped jobs are counted."""
    n = node_factory.start(limits={"password_failures_per_ip": 1000})

    async def body():
        owner = await connect_from(n, OTHER)
        assert await owner.subscribe("vault", password="right") == ok()
        flood = []
        for a in range(31):
            for _ in range(8):
                flood.append(await connect_from(n, f"127.0.1.{a + 1}"))
        for i, c in enumerate(flood):
            await c.send({"command": "subscribe", "nonce": str(i),
                          "data": {"topic": "vault",
                                   "password": f"guess-{i}"}})
        for c in flood:
            c.ws.transport.write_eof()  # FIN: a half-closed socket
        await wait_metric(n, "wsrelay_password_jobs_dropped_total",
                          lambda v: v >= 100)
        t0 = time.monotonic()
        friend = await connect_from(n, OTHER)
        assert await friend.subscribe("friends", password="ours") == ok()
        waited = time.monotonic() - t0
        dropped = metrics(n).get("wsrelay_password_jobs_dropped_total")
        print(f"friend waited {waited:.2f} s; {dropped:.0f} jobs dropped")
        assert waited < 3, waited
        for c in flood + [owner, friend]:
            await c.close()
    run(body())


def test_idle_sockets_from_one_address_leave_others_served(node_factory):
    """5,000 sockets from one address that never send their headers
    (issue 10: 256 of them used to stop the node): the node keeps at most
    [limits] max_pending_per_ip (64) of them and closes the rest at
    accept; another address's /health
    answers at once and its clients are served."""
    import resource
    import socket as so
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 6000)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    n = node_factory.start()
    held = []
    try:
        for _ in range(min(5000, want - 200)):
            s = so.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", n.port))
            held.append(s)
        # the marker: a request from the other address after the flood
        t0 = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", n.port, timeout=5,
                                          source_address=(OTHER, 0))
        conn.request("GET", "/health")
        status = conn.getresponse().status
        took = time.monotonic() - t0
        conn.close()
        print(f"/health from {OTHER} during {len(held)} idle sockets: "
              f"{took * 1000:.1f} ms")
        assert status == 200
        assert took < 0.25, took  # the goal is 100 ms; a loaded 2-core box
        run(served_elsewhere(n))
    finally:
        for s in held:
            s.close()
    # the slots come back: the same address is served again
    wait = time.monotonic() + DEADLINE
    while True:
        try:
            if health(n)[0] == 200:
                break
        except OSError:
            pass
        assert time.monotonic() < wait, "the address was never served again"
        time.sleep(0.05)  # a retry period, not a synchronisation
    m = metrics(n)
    assert m.get("wsrelay_connections_refused_total",
                 reason="pending") >= 4000, m.text[:200]


def test_at_the_descriptor_limit_the_node_neither_spins_nor_floods(tmp_path):
    """Issue 10: at RLIMIT_NOFILE the node spun at 100% CPU writing 23 MB/s
    of "accept: errno 24" and answered no one new. Run under a limit of
    256 descriptors, 600 sockets are opened against it: those over the
    node's reserve are closed at accept, its CPU stays low, its log small,
    max_clients is lowered to fit (a warning says so), and once the
    sockets go it serves again."""
    import resource
    import socket as so
    import subprocess

    from conftest import BIN, metrics as metrics_of

    cfg = tmp_path / "node.toml"
    cfg.write_text('[node]\nname = "fd"\nlisten = "127.0.0.1:0"\n\n'
                   '[limits]\nmax_pending_per_ip = 10000\n')
    log = tmp_path / "node.log"
    logf = open(log, "wb")

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    p = subprocess.Popen([BIN, "-c", str(cfg)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=logf,
                         preexec_fn=low_limit)
    held = []
    try:
        port = None
        deadline = time.monotonic() + DEADLINE
        while port is None and time.monotonic() < deadline:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)",
                          log.read_text(errors="replace"))
            port = int(m.group(1)) if m else None
            if port is None:
                time.sleep(0.05)  # polling the log for the port
        assert port, log.read_text()
        text = log.read_text()
        assert "limits.max_clients 100000 lowered to" in text, text

        class N:  # what metrics() needs
            scheme = "http"
            connect_host = "127.0.0.1"
        N.port = port

        def cpu_s():
            with open(f"/proc/{p.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        for _ in range(600):
            s = so.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            held.append(s)
        c0, t0 = cpu_s(), time.monotonic()
        # more arrive while it is full: each must cost a close, not a spin
        for _ in range(200):
            s = so.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            held.append(s)
        time.sleep(2)  # the measured interval itself
        used = (cpu_s() - c0) / (time.monotonic() - t0)
        size = log.stat().st_size
        print(f"at the limit: {used * 100:.0f}% of a core, log {size} bytes")
        assert used < 0.5, used
        assert size < 200_000, size
        assert p.poll() is None
    finally:
        for s in held:
            s.close()
    try:
        def served():
            try:
                return _get_health(port) == 200
            except OSError:
                return False
        from conftest import wait_until_sync
        wait_until_sync(served, what="/health after the sockets closed")
        m = metrics_of(N)
        assert m.get("wsrelay_connections_refused_total", reason="fds") > 0
    finally:
        p.terminate()
        p.wait(10)
        logf.close()


def _get_health(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status
    finally:
        conn.close()
