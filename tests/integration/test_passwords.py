"""
PROTOCOL.md section 2, "Passwords": channel creation with or without a
password, exact matching, re-creation after close, the per-connection rate
limit, hashing off the event loop, and in-order answers on one connection.
"""

import asyncio
import time

from conftest import (Pool, RawWS, command, delivery, fail, ok, run,
                      wait_until)


def test_protected_channel_password_matching(node):
    async def body():
        async with Pool() as pool:
            owner, good, wrong, nopw, case, space = await pool.connect_many(node, 6)
            assert await owner.subscribe("vault", password="wordpass", nonce="1") == ok("1")
            assert await good.subscribe("vault", password="wordpass", nonce="2") == ok("2")
            assert await wrong.subscribe("vault", password="passwort", nonce="3") == \
                fail("invalid password", "3")
            assert await nopw.subscribe("vault", nonce="4") == fail("invalid password", "4")
            assert await nopw.subscribe("vault", password=None, nonce="5") == \
                fail("invalid password", "5")
            assert await case.subscribe("vault", password="WORDPASS") == fail("invalid password")
            assert await space.subscribe("vault", password="wordpass ") == fail("invalid password")
            # the rejected ones are not in the channel
            for c in (wrong, nopw, case, space):
                assert await c.publish("vault", "x", "s") == fail("not subscribed", "s")
            # the accepted ones are
            assert await good.publish("vault", "secret msg", "g") == ok("g")
            assert await owner.recv() == delivery("secret msg", "vault", "g")
            for c in (wrong, nopw, case, space):
                await c.expect_quiet()
            assert await wrong.list() == ok(channels=["vault"])
    run(body())


def test_password_for_open_channel_is_invalid(node):
    async def body():
        async with Pool() as pool:
            owner, other, third = await pool.connect_many(node, 3)
            assert await owner.subscribe("open") == ok()
            assert await other.subscribe("open", password="anything", nonce="o") == \
                fail("invalid password", "o")
            assert await third.subscribe("open") == ok()
            assert await third.publish("open", "hi") == ok()
            assert await owner.recv() == delivery("hi", "open")
            await other.expect_quiet()
    run(body())


def test_empty_password_for_open_channel_is_invalid(node):
    # only null counts as absent: "" is a password given (a string)
    async def body():
        async with Pool() as pool:
            owner, other = await pool.connect_many(node, 2)
            assert await owner.subscribe("open") == ok()
            assert await other.subscribe("open", password="", nonce="e") == \
                fail("invalid password", "e")
    run(body())


def test_unicode_and_long_passwords(node):
    async def body():
        async with Pool() as pool:
            a, b, c = await pool.connect_many(node, 3)
            pw = "p\u00e4ssw\u00f6rd \U0001F511 \"quoted\" \\ \n"
            assert await a.subscribe("uni", password=pw) == ok()
            assert await b.subscribe("uni", password=pw) == ok()
            assert await c.subscribe("uni", password=pw[:-1]) == fail("invalid password")
            long_pw = "L" * 5000
            assert await a.subscribe("long", password=long_pw) == ok()
            assert await b.subscribe("long", password=long_pw) == ok()
            assert await c.subscribe("long", password=long_pw + "L") == fail("invalid password")
    run(body())


def test_same_password_different_channels_independent(node):
    async def body():
        async with Pool() as pool:
            a, b = await pool.connect_many(node, 2)
            assert await a.subscribe("c1", password="same") == ok()
            assert await a.subscribe("c2", password="other") == ok()
            assert await b.subscribe("c1", password="other") == fail("invalid password")
            assert await b.subscribe("c2", password="same") == fail("invalid password")
            assert await b.subscribe("c1", password="same") == ok()
            assert await b.subscribe("c2", password="other") == ok()
    run(body())


def test_recreate_after_close_by_unsubscribe(node):
    async def body():
        async with Pool() as pool:
            a, b, c, d = await pool.connect_many(node, 4)
            assert await a.subscribe("re", password="first") == ok()
            assert await b.subscribe("re", password="first") == ok()
            assert await a.unsubscribe("re") == ok()
            # still open (b is in it): still protected by "first"
            assert await c.subscribe("re", password="second") == fail("invalid password")
            assert await b.unsubscribe("re") == ok()
            assert await d.list() == ok(channels=[])
            # closed: the next subscriber re-creates it with its own password
            assert await c.subscribe("re", password="second") == ok()
            assert await d.subscribe("re", password="first") == fail("invalid password")
            assert await d.subscribe("re", password="second") == ok()
            assert await c.unsubscribe("re") == ok()
            assert await d.unsubscribe("re") == ok()
            # and now as an open channel
            assert await a.subscribe("re") == ok()
            assert await b.subscribe("re") == ok()
            assert await c.subscribe("re", password="second") == fail("invalid password")
    run(body())


def test_recreate_after_close_by_disconnect(node):
    async def body():
        async with Pool() as pool:
            a, b, obs = await pool.connect_many(node, 3)
            assert await a.subscribe("gone", password="old") == ok()
            await a.close()

            async def closed():
                return await obs.channels() == []
            await wait_until(closed, what="channel to close after its only subscriber left")
            assert await b.subscribe("gone", password="new") == ok()
            assert await obs.subscribe("gone", password="old") == fail("invalid password")
            assert await obs.subscribe("gone", password="new") == ok()
    run(body())


def test_rate_limit_after_five_failures(node):
    async def body():
        async with Pool() as pool:
            owner, attacker = await pool.connect_many(node, 2)
            bystander = await pool.connect(node, local_addr=("127.0.0.2", 0))
            assert await owner.subscribe("rl", password="right") == ok()
            for i in range(5):
                assert await attacker.subscribe("rl", password=f"wrong{i}", nonce=str(i)) == \
                    fail("invalid password", str(i))
            # the 6th, even with the right password, is rate limited
            assert await attacker.subscribe("rl", password="right", nonce="6") == \
                fail("rate limited", "6")
            assert await attacker.subscribe("rl", password="wrong", nonce="7") == \
                fail("rate limited", "7")
            # any subscribe WITH a password, on any channel
            assert await attacker.subscribe("fresh-protected", password="x", nonce="8") == \
                fail("rate limited", "8")
            assert await attacker.publish("rl", "x") == fail("not subscribed")
            # the limit is per address too (7.2): a new connection from
            # the attacker's address starts limited ...
            again = await pool.connect(node)
            assert await again.subscribe("rl", password="right", nonce="a") == \
                fail("rate limited", "a")
            # ... a client on another address is not affected
            assert await bystander.subscribe("rl", password="right", nonce="b") == ok("b")
            # subscribes without a password are not rate limited
            assert await attacker.subscribe("open-one", nonce="9") == ok("9")
            assert await attacker.list() == ok(channels=["open-one", "rl"])
    run(body())


def test_rate_limit_window_expires(node):
    # the limit lasts until the 10 s window has passed, then lifts by itself
    async def body():
        async with Pool() as pool:
            owner, attacker = await pool.connect_many(node, 2)
            assert await owner.subscribe("rw", password="right") == ok()
            t_first = time.monotonic()
            for i in range(5):
                assert await attacker.subscribe("rw", password="bad") == fail("invalid password")
            assert await attacker.subscribe("rw", password="right") == fail("rate limited")

            async def admitted():
                r = await attacker.subscribe("rw", password="right")
                if r == ok():
                    return True
                assert r == fail("rate limited"), r
                return False
            await wait_until(admitted, timeout=25, interval=0.5,
                             what="the rate limit to lift")
            elapsed = time.monotonic() - t_first
            assert elapsed >= 10.0, f"rate limit lifted after only {elapsed:.2f}s"
    run(body(), timeout=60)


def test_password_hashing_does_not_stall_other_clients(node_factory):
    """20 password subscribes (a PBKDF2 each) arrive in one read; meanwhile
    two other clients play ping-pong on an open channel (as fast as round
    trips go: the 7.2 send bucket, which would cut it after 2,000 sends, is
    test_edge_limits.py's business)."""
    NP = 20
    node = node_factory.start(limits={"messages_per_second": 1000000,
                                      "messages_burst": 1000000})

    async def body():
        async with Pool() as pool:
            a, b = await pool.connect_many(node, 2)
            assert await a.subscribe("fast") == ok()
            assert await b.subscribe("fast") == ok()
            hasher = RawWS(node)
            assert hasher.status == 101
            hashing_done = asyncio.Event()
            rtts = []

            async def pingpong():
                i = 0
                while i < 50 or not hashing_done.is_set():
                    t0 = time.monotonic()
                    await a.send(command("send", {"channel": "fast", "message": f"ping{i}"}))
                    assert await a.recv() == ok()
                    assert await b.recv() == delivery(f"ping{i}", "fast")
                    await b.send(command("send", {"channel": "fast", "message": f"pong{i}"}))
                    assert await b.recv() == ok()
                    assert await a.recv() == delivery(f"pong{i}", "fast")
                    rtts.append(time.monotonic() - t0)
                    i += 1
                    assert i < 100000

            # warm up, then start hashing while ping-pong runs
            pp = asyncio.create_task(pingpong())
            await wait_until(lambda: len(rtts) >= 3, what="ping-pong to start")
            try:
                frames = [command("subscribe", {"topic": f"pw{i}", "password": f"secret-{i}"},
                                  str(i)) for i in range(NP)]
                t0 = time.monotonic()
                await asyncio.to_thread(hasher.send_burst, frames)
                resps = []
                for _ in range(NP):
                    resps.append(await asyncio.to_thread(hasher.recv_json, 30))
                hash_time = time.monotonic() - t0
            finally:
                hashing_done.set()
            await asyncio.wait_for(pp, 60)
            hasher.close()
            assert resps == [ok(str(i)) for i in range(NP)]
            assert len(rtts) >= 50
            worst = max(rtts)
            assert worst < hash_time / 2, (
                f"a round trip took {worst * 1000:.1f} ms while {NP} password "
                f"subscribes took {hash_time * 1000:.1f} ms: hashing blocks the event loop?")
    run(body())


def test_commands_answered_in_order_after_password_subscribe(node):
    async def body():
        async with Pool() as pool:
            owner = await pool.connect(node)
            assert await owner.subscribe("ordered", password="pw1") == ok()
            joiner = RawWS(node)
            creator = RawWS(node)
            try:
                # joining an existing protected channel, then sending at once
                await asyncio.to_thread(joiner.send_burst, [
                    command("subscribe", {"topic": "ordered", "password": "pw1"}, "sub"),
                    command("send", {"channel": "ordered", "message": "right after"}, "snd"),
                    command("list", {}, "lst")])
                assert await asyncio.to_thread(joiner.recv_json) == ok("sub")
                assert await asyncio.to_thread(joiner.recv_json) == ok("snd")
                assert await asyncio.to_thread(joiner.recv_json) == ok("lst", channels=["ordered"])
                assert await owner.recv() == delivery("right after", "ordered", "snd")

                # a wrong password followed at once by a send: the send sees
                # the failed subscribe
                await asyncio.to_thread(joiner.send_burst, [
                    command("subscribe", {"topic": "ordered2x", "password": "a"}, "c1"),
                    command("send", {"channel": "ordered2x", "message": "m"}, "c2")])
                assert await asyncio.to_thread(joiner.recv_json) == ok("c1")
                assert await asyncio.to_thread(joiner.recv_json) == ok("c2")
                await asyncio.to_thread(creator.send_burst, [
                    command("subscribe", {"topic": "ordered2x", "password": "b"}, "w"),
                    command("send", {"channel": "ordered2x", "message": "m"}, "s"),
                    command("unsubscribe", {"topic": "ordered2x"}, "u")])
                assert await asyncio.to_thread(creator.recv_json) == fail("invalid password", "w")
                assert await asyncio.to_thread(creator.recv_json) == fail("not subscribed", "s")
                assert await asyncio.to_thread(creator.recv_json) == fail("not subscribed", "u")

                # several password subscribes in a row, then a list
                await asyncio.to_thread(creator.send_burst, [
                    *[command("subscribe", {"topic": f"k{i}", "password": f"p{i}"}, f"k{i}")
                      for i in range(5)],
                    command("list", {}, "all")])
                for i in range(5):
                    assert await asyncio.to_thread(creator.recv_json) == ok(f"k{i}")
                assert await asyncio.to_thread(creator.recv_json) == ok(
                    "all", channels=["k0", "k1", "k2", "k3", "k4", "ordered", "ordered2x"])
            finally:
                joiner.close()
                creator.close()
    run(body())
