"""
PROTOCOL.md section 2 limits: message size, subscription count, close
codes (1003 binary, 1007 invalid UTF-8, 1009 oversized frame), slow
consumers (1008), max_clients, and the client keepalive.
"""

import asyncio
import json
import time

import pytest

from conftest import (OP_BINARY, OP_CLOSE, OP_PING, OP_TEXT, Pool, RawWS,
                      ametrics, command, delivery, fail, handshake_status,
                      ok, run,
                      wait_metric, wait_until)

MAX = 1024


@pytest.fixture
def small_node(node_factory):
    return node_factory.start(limits={"max_message_bytes": MAX})


# ---------------------------------------------------------------------------
# message size
# ---------------------------------------------------------------------------

def test_message_size_limit_exact_boundary(small_node):
    async def body():
        async with Pool() as pool:
            a, b = await pool.connect_many(small_node, 2)
            assert await a.subscribe("sz") == ok()
            assert await b.subscribe("sz") == ok()
            m = "x" * MAX
            assert await a.publish("sz", m, "eq") == ok("eq")
            assert await b.recv() == delivery(m, "sz", "eq")
            assert await a.publish("sz", m + "y", "over") == fail("message too large", "over")
            # bytes, not characters: 342 euro signs are 1026 bytes
            assert await a.publish("sz", "\u20ac" * 342, "eur") == fail("message too large", "eur")
            m3 = "\u20ac" * 341 + "x"   # 1024 bytes
            assert await a.publish("sz", m3, "eur2") == ok("eur2")
            assert await b.recv() == delivery(m3, "sz", "eur2")
            # the decoded length counts, not the escaped one in the frame
            mq = '"' * 400 + "\\" * 200 + "x" * (MAX - 600)
            assert len(mq) == MAX and len(json.dumps(mq)) > MAX + 600
            assert await a.publish("sz", mq, "q") == ok("q")
            assert await b.recv() == delivery(mq, "sz", "q")
            # still open, nothing else delivered
            await b.expect_quiet()
            assert await a.list() == ok(channels=["sz"])
    run(body())


def test_message_too_large_even_when_not_subscribed_connection_stays(small_node):
    async def body():
        async with Pool() as pool:
            a = await pool.connect(small_node)
            r = await a.publish("nowhere", "z" * (MAX + 1), "n")
            assert r["data"]["ok"] is False
            assert r["data"]["reason"] in ("message too large", "not subscribed")
            assert await a.list(nonce="alive") == ok("alive", channels=[])
    run(body())


def test_frame_between_max_and_twice_max_stays_open(small_node):
    raw = RawWS(small_node)
    try:
        assert raw.status == 101
        raw.send_json(command("subscribe", {"topic": "f"}, "s"))
        assert raw.recv_json() == ok("s")
        # a frame of exactly 2 * max bytes holding an oversized message
        head = '{"command":"send","nonce":"big","data":{"channel":"f","message":"'
        tail = '"}}'
        frame = head + "m" * (2 * MAX - len(head) - len(tail)) + tail
        assert len(frame.encode()) == 2 * MAX
        raw.send_text(frame)
        assert raw.recv_json() == fail("message too large", "big")
        raw.send_json(command("list", {}, "alive"))
        assert raw.recv_json() == ok("alive", channels=["f"])
    finally:
        raw.close()


@pytest.mark.parametrize("size", [2 * MAX + 1, 3000, 70000])
def test_frame_larger_than_twice_max_closes_1009(small_node, size):
    raw = RawWS(small_node)
    try:
        assert raw.status == 101
        head = '{"command":"send","nonce":"big","data":{"channel":"f","message":"'
        tail = '"}}'
        frame = head + "m" * (size - len(head) - len(tail)) + tail
        assert len(frame) == size
        try:
            raw.send_text(frame)
        except (BrokenPipeError, ConnectionResetError):
            pass
        got = raw.recv_close()
        assert got is not None, "connection ended without a close frame"
        assert got[0] == 1009, got
    finally:
        raw.close()


def test_1009_does_not_affect_other_clients(small_node):
    async def body():
        async with Pool() as pool:
            a, b, victim = await pool.connect_many(small_node, 3)
            for c in (a, b, victim):
                assert await c.subscribe("shared") == ok()
            await victim.send("x" * (2 * MAX + 100))
            code, _ = await victim.wait_closed()
            assert code == 1009
            assert await a.publish("shared", "still here", "1") == ok("1")
            assert await b.recv() == delivery("still here", "shared", "1")
            await b.expect_quiet()
    run(body())


# ---------------------------------------------------------------------------
# subscription count
# ---------------------------------------------------------------------------

def test_too_many_subscriptions(node_factory):
    n = node_factory.start(limits={"max_subscriptions": 3})

    async def body():
        async with Pool() as pool:
            a, b = await pool.connect_many(n, 2)
            for ch in ("s1", "s2", "s3"):
                assert await a.subscribe(ch) == ok()
            assert await a.subscribe("s4", nonce="4") == fail("too many subscriptions", "4")
            assert await a.subscribe("s4", password="pw", nonce="5") == \
                fail("too many subscriptions", "5")
            # re-subscribing an existing one is still ok
            assert await a.subscribe("s2", nonce="again") == ok("again")
            # the refused channel was not created
            assert await a.list() == ok(channels=["s1", "s2", "s3"])
            assert await a.publish("s4", "x") == fail("not subscribed")
            # freeing one slot allows a new one
            assert await a.unsubscribe("s1") == ok()
            assert await a.subscribe("s4") == ok()
            assert await a.subscribe("s5") == fail("too many subscriptions")
            # the connection works normally
            assert await b.subscribe("s4") == ok()
            assert await b.publish("s4", "hey", "h") == ok("h")
            assert await a.recv() == delivery("hey", "s4", "h")
    run(body())


# ---------------------------------------------------------------------------
# close codes
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("payload", [b'{"command":"list"}', b"\x00\x01\x02", b""])
def test_binary_frame_closes_1003(node, payload):
    raw = RawWS(node)
    try:
        assert raw.status == 101
        raw.send_frame(OP_BINARY, payload)
        got = raw.recv_close()
        assert got is not None, "connection ended without a close frame"
        assert got[0] == 1003, got
    finally:
        raw.close()


@pytest.mark.parametrize("payload", [
    b"\xff\xfe",
    b'{"command":"list","nonce":"\xc3\x28"}',        # bad continuation byte
    b'{"command":"list","nonce":"\xc0\xaf"}',        # overlong "/"
    b'{"command":"list","nonce":"\xed\xa0\x80"}',    # UTF-16 surrogate
    b'{"command":"list","nonce":"\xf4\x90\x80\x80"}',  # > U+10FFFF
    b'{"command":"list","nonce":"\xe2\x82"}',        # truncated sequence
])
def test_invalid_utf8_text_closes_1007(node, payload):
    raw = RawWS(node)
    try:
        assert raw.status == 101
        raw.send_frame(OP_TEXT, payload)
        got = raw.recv_close()
        assert got is not None, "connection ended without a close frame"
        assert got[0] == 1007, got
    finally:
        raw.close()


def test_close_code_victims_do_not_affect_others(node):
    async def body():
        async with Pool() as pool:
            a, b = await pool.connect_many(node, 2)
            assert await a.subscribe("c") == ok()
            assert await b.subscribe("c") == ok()
            raws = [RawWS(node) for _ in range(2)]
            try:
                for r in raws:
                    r.send_json(command("subscribe", {"topic": "c"}))
                    assert await asyncio.to_thread(r.recv_json) == ok()
                raws[0].send_frame(OP_BINARY, b"bin")
                raws[1].send_frame(OP_TEXT, b"\xff")
                assert (await asyncio.to_thread(raws[0].recv_close))[0] == 1003
                assert (await asyncio.to_thread(raws[1].recv_close))[0] == 1007
            finally:
                for r in raws:
                    r.close()
            assert await a.publish("c", "ok?", "1") == ok("1")
            assert await b.recv() == delivery("ok?", "c", "1")
    run(body())


# ---------------------------------------------------------------------------
# slow consumers
# ---------------------------------------------------------------------------

def test_slow_consumer_is_closed_others_get_everything(node_factory):
    QUEUE = 65536
    n = node_factory.start(limits={"max_queue_bytes": QUEUE})
    SIZE = 4000
    WINDOW = 8            # publisher stays at most 8 messages ahead of `fast`
    MAX_MSGS = 8000       # 32 MB: far beyond any socket buffer
    EXTRA = 200           # sent after the slow consumer was cut

    async def body():
        async with Pool() as pool:
            pub, fast = await pool.connect_many(n, 2)
            assert await pub.subscribe("firehose") == ok()
            assert await fast.subscribe("firehose") == ok()
            slow = RawWS(n, rcvbuf=4096)
            assert slow.status == 101
            slow.send_json(command("subscribe", {"topic": "firehose"}, "slow"))
            assert await asyncio.to_thread(slow.recv_json) == ok("slow")
            # from here on `slow` never reads

            received = []
            got_one = asyncio.Event()

            async def reader():
                while True:
                    f = await fast.recv(30)
                    received.append(f)
                    got_one.set()

            acks = []

            async def ack_reader():
                while True:
                    acks.append(await pub.recv(30))

            rt = asyncio.create_task(reader())
            at = asyncio.create_task(ack_reader())
            sent = 0
            cut_at = None
            try:
                pad = "p" * SIZE
                while sent < MAX_MSGS and (cut_at is None or sent < cut_at + EXTRA):
                    while sent - len(received) >= WINDOW:
                        got_one.clear()
                        await asyncio.wait_for(got_one.wait(), 30)
                    await pub.send(command("send", {"channel": "firehose",
                                                    "message": f"{sent:06d}{pad}"}))
                    sent += 1
                    if cut_at is None and sent % 200 == 0:
                        m = await ametrics(n)
                        if m.get("wsrelay_slow_consumer_disconnects_total") == 1:
                            cut_at = sent
                await wait_until(lambda: len(received) >= sent and len(acks) >= sent,
                                 timeout=30, what="every message to reach the fast subscriber")
            finally:
                rt.cancel()
                at.cancel()
            v = await wait_metric(n, "wsrelay_slow_consumer_disconnects_total",
                                  lambda v: v >= 1)
            assert v == 1
            # the fast subscriber got every message, in order
            assert len(received) == sent
            for i, f in enumerate(received):
                assert f == delivery(f"{i:06d}{pad}", "firehose"), f"message {i} differs"
            # the publisher was neither cut nor refused
            assert acks == [ok()] * sent
            await pub.expect_quiet()
            await fast.expect_quiet()
            # the slow consumer's connection is closed with 1008 "slow
            # consumer": reading it to the end finds that close frame
            def drain():
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    f = slow.recv_frame(max(0.01, deadline - time.monotonic()))
                    if f is None:
                        return None
                    if f[1] == OP_CLOSE:
                        return f[2]
                raise AssertionError("slow consumer connection still open")
            close_payload = await asyncio.to_thread(drain)
            slow.close()
            assert close_payload is not None, "slow consumer cut without a close frame"
            code = int.from_bytes(close_payload[:2], "big")
            assert code == 1008, close_payload
            assert close_payload[2:].decode() == "slow consumer"
            # it is gone from the node
            await wait_metric(n, "wsrelay_clients", lambda v: v == 2)
    run(body(), timeout=150)


# ---------------------------------------------------------------------------
# max_clients
# ---------------------------------------------------------------------------

def test_max_clients(node_factory):
    n = node_factory.start(limits={"max_clients": 2})

    async def body():
        async with Pool() as pool:
            a, b = await pool.connect_many(n, 2)
            assert await a.subscribe("mc") == ok()
            assert await b.subscribe("mc") == ok()
            # a standard client reports the refusal's status
            assert await asyncio.to_thread(handshake_status, n,
                                           "/connect") == 503
            # the first two still work
            assert await a.publish("mc", "fine", "1") == ok("1")
            assert await b.recv() == delivery("fine", "mc", "1")
            # health and metrics are not /connect clients: still served
            m = await ametrics(n)
            assert m.get("wsrelay_clients") == 2
            # a freed slot can be used again
            await b.close()

            def admitted():
                r = RawWS(n)
                try:
                    if r.status == 101:
                        r.send_json(command("list", {}, "in"))
                        return r.recv_json() == ok("in", channels=["mc"])
                    assert r.status == 503, r.status
                    return False
                finally:
                    r.close()
            await wait_until(lambda: asyncio.to_thread(admitted),
                             what="a freed slot to admit a new client")
    run(body())


# ---------------------------------------------------------------------------
# keepalive
# ---------------------------------------------------------------------------

def test_keepalive_drops_silent_client_keeps_ponging_one(node_factory):
    n = node_factory.start(limits={"client_ping_interval_ms": 1000})

    async def body():
        async with Pool() as pool:
            # websockets answers pings automatically; its own pings are off
            good = await pool.connect(n)
            assert await good.subscribe("ka") == ok()
            silent = RawWS(n)
            assert silent.status == 101
            silent.send_json(command("subscribe", {"topic": "ka"}, "s"))
            assert await asyncio.to_thread(silent.recv_json) == ok("s")
            t0 = time.monotonic()

            def watch():
                pings = 0
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    try:
                        f = silent.recv_frame(max(0.01, deadline - time.monotonic()))
                    except TimeoutError:
                        break
                    if f is None:
                        return pings, "eof"
                    if f[1] == OP_PING:
                        pings += 1          # never answered
                    elif f[1] == OP_CLOSE:
                        return pings, "close"
                return pings, "still open"
            pings, how = await asyncio.to_thread(watch)
            silent.close()
            elapsed = time.monotonic() - t0
            assert pings >= 1, "the node never pinged an idle client"
            assert how in ("eof", "close"), \
                f"client that never answers pings still connected after {elapsed:.1f}s"
            # the ponging client survived the same intervals and works
            assert await good.list(nonce="alive") == ok("alive", channels=["ka"])
            assert good.ws.open
            await wait_metric(n, "wsrelay_clients", lambda v: v == 1)
    run(body())
