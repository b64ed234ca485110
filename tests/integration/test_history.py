"""
History and recovery (PROTOCOL.md 7.3, 7.5.7, 7.5.8) on real nodes: a
subscriber that disconnects and comes back with `since` gets exactly what
it missed, in order, before anything new - also while a publisher keeps
sending at 1,000 msg/s during the replay; `recovered: false` on another
node of a mesh and after the ttl; the `history` command; subscribers
without `recover` keep today's frames byte for byte; the metrics; a lone
subscriber whose connection drops finds its channel still there
([history] linger_ms), an unsubscribe closes it at once.
"""

import asyncio
import json

from conftest import Client, Pool, command, delivery, fail, metrics, ok, run, wait_until
from meshutil import start_mesh, wait_converged

HIST = {"size": 1000, "ttl_ms": 300000}


def sub_cmd(topic, nonce=None, **data):
    return command("subscribe", {"topic": topic, **data},
                   *(() if nonce is None else (nonce,)))


async def recv_until_response(cl, nonce):
    """Frames up to and including the response with @nonce."""
    got = []
    while True:
        f = await cl.recv()
        got.append(f)
        if f.get("type") == "response" and f.get("nonce") == nonce:
            return got


def test_recover_exactly_the_missed_100_then_live(node_factory):
    node = node_factory.start(history=HIST)

    async def body():
        async with Pool() as pool:
            pub = await pool.connect(node)
            plain = await pool.connect(node)
            assert await pub.subscribe("h") == ok()
            assert await plain.subscribe("h") == ok()
            sub = await pool.connect(node)
            r = await sub.request(sub_cmd("h", "s1", recover=True))
            assert r["data"]["ok"] is True and r["nonce"] == "s1", r
            epoch = r["data"]["epoch"]
            assert isinstance(epoch, str) and epoch, r
            assert r["data"]["offset"] == 0, "an active channel without messages"
            assert "recovered" not in r["data"], "no since: no verdict"
            for i in range(5):
                assert await pub.publish("h", f"m{i}", f"n{i}") == ok(f"n{i}")
            for i in range(5):
                want = delivery(f"m{i}", "h", f"n{i}")
                want["data"]["offset"] = i + 1
                assert await sub.recv() == want
            # a subscriber without recover: today's frame, byte for byte
            for i in range(5):
                assert await plain.recv_raw() == (
                    '{"type":"message","data":{"message":"m%d","channel":"h"},'
                    '"nonce":"n%d"}' % (i, i))
            await sub.close()

            for i in range(5, 105):
                await pub.send(command("send", {"channel": "h", "message": f"m{i}"},
                                       f"n{i}"))
            for i in range(5, 105):
                assert await pub.recv() == ok(f"n{i}")

            sub = await pool.connect(node)
            r = await sub.request(sub_cmd("h", "s2",
                                          since={"epoch": epoch, "offset": 5}))
            assert r == ok("s2", epoch=epoch, offset=105, recovered=True), r
            for i in range(5, 105):
                want = delivery(f"m{i}", "h", f"n{i}")
                want["data"]["offset"] = i + 1
                assert await sub.recv() == want, i
            for i in range(105, 108):
                assert await pub.publish("h", f"m{i}", f"n{i}") == ok(f"n{i}")
            for i in range(105, 108):
                want = delivery(f"m{i}", "h", f"n{i}")
                want["data"]["offset"] = i + 1
                assert await sub.recv() == want
            await sub.expect_quiet()
            # nothing missed since 108: recovered, nothing replayed
            again = await pool.connect(node)
            r = await again.request(sub_cmd("h", "s3",
                                            since={"epoch": epoch, "offset": 108}))
            assert r == ok("s3", epoch=epoch, offset=108, recovered=True)
            await again.expect_quiet()
            # a since in the future, or another epoch: false, nothing replayed
            for since in ({"epoch": epoch, "offset": 109},
                          {"epoch": "0" * 16, "offset": 3},
                          {"epoch": "nope", "offset": 3}):
                c = await pool.connect(node)
                r = await c.request(sub_cmd("h", "s4", since=since))
                assert r == ok("s4", epoch=epoch, offset=108, recovered=False), since
                await c.expect_quiet()
            m = metrics(node)
            assert m.get("wsrelay_history_recoveries_total", result="recovered") == 2
            assert m.get("wsrelay_history_recoveries_total",
                         result="not_recovered") == 3
            assert m.get("wsrelay_history_entries") == 108
            assert m.get("wsrelay_history_bytes") > 108 * 128
    run(body())


def test_recover_while_1000_messages_a_second_arrive(node_factory):
    node = node_factory.start(history=HIST, limits={
        "messages_per_second": 100000, "messages_burst": 100000})
    total = 1500

    async def body():
        async with Pool() as pool:
            pub = await pool.connect(node)
            assert await pub.subscribe("fast") == ok()
            sub = await pool.connect(node)
            r = await sub.request(sub_cmd("fast", "s1", recover=True))
            epoch = r["data"]["epoch"]
            sent = 0
            acks = 0

            async def publisher():
                nonlocal sent
                # 1,000 msg/s: 10 every 10 ms (pacing, not synchronisation)
                loop = asyncio.get_running_loop()
                start = loop.time()
                while sent < total:
                    for _ in range(10):
                        await pub.send(command("send", {"channel": "fast",
                                                        "message": f"m{sent}"}))
                        sent += 1
                    await asyncio.sleep(max(0, start + sent / 1000 - loop.time()))

            async def drain_acks():
                nonlocal acks
                while acks < total:
                    assert await pub.recv() == ok()
                    acks += 1

            ptask = asyncio.ensure_future(publisher())
            atask = asyncio.ensure_future(drain_acks())
            # read some live, then drop the connection mid-stream
            last = 0
            while last < 200:
                f = await sub.recv()
                assert f["data"]["offset"] == last + 1, f
                last = f["data"]["offset"]
            await sub.close()
            await wait_until(lambda: sent >= 500, what="300 more sent meanwhile")
            sub = await pool.connect(node)
            r = await sub.request(sub_cmd("fast", "s2",
                                          since={"epoch": epoch, "offset": last}))
            assert r["data"]["recovered"] is True, r
            assert r["data"]["offset"] > last + 100, r
            # replay, then live while the publisher goes on: every offset
            # once, in order, each the message sent in that place
            while last < total:
                f = await sub.recv()
                assert f["type"] == "message", f
                off = f["data"]["offset"]
                assert off == last + 1, f"gap or duplicate: {last} then {off}"
                assert f["data"]["message"] == f"m{off - 1}", f
                last = off
            await asyncio.wait_for(ptask, 30)
            await asyncio.wait_for(atask, 30)
            await sub.expect_quiet()
    run(body(), timeout=180)


def test_mesh_remote_messages_kept_and_another_node_not_recovered(node_factory):
    a, b, c = start_mesh(node_factory, "ABC", [("B", "A"), ("C", "A"), ("C", "B")],
                         sections={"history": HIST})

    async def body():
        async with Pool() as pool:
            pub = await pool.connect(b)
            keep = await pool.connect(a)
            assert await keep.subscribe("mx") == ok()
            assert await pub.subscribe("mx") == ok()
            await wait_converged([a, b, c], "mx", holders=["A", "B"])
            sub = await pool.connect(a)
            r = await sub.request(sub_cmd("mx", "s", recover=True))
            epoch_a, start = r["data"]["epoch"], r["data"]["offset"]
            await sub.close()
            # sent on B: A keeps them though they came over the mesh (7.5.7)
            for i in range(20):
                assert await pub.publish("mx", f"r{i}") == ok()
            for i in range(20):
                assert await keep.recv() == delivery(f"r{i}", "mx")
            # another node: another epoch, recovered false, nothing replayed
            other = await pool.connect(c)
            r = await other.request(sub_cmd("mx", "o", since={"epoch": epoch_a,
                                                              "offset": start}))
            assert r["data"]["recovered"] is False, r
            assert r["data"]["epoch"] != epoch_a, r
            await other.expect_quiet()
            # the node it was on: exactly the 20
            sub = await pool.connect(a)
            r = await sub.request(sub_cmd("mx", "s2", since={"epoch": epoch_a,
                                                             "offset": start}))
            assert r == ok("s2", epoch=epoch_a, offset=start + 20, recovered=True), r
            for i in range(20):
                f = await sub.recv()
                assert f["data"] == {"message": f"r{i}", "channel": "mx",
                                     "offset": start + i + 1}, f
            await sub.expect_quiet()
            # live from B reaches both recovering subscribers with offsets
            # of their own node
            assert await pub.publish("mx", "live") == ok()
            fa = await sub.recv()
            fc = await other.recv()
            assert fa["data"]["offset"] == start + 21
            assert fc["data"]["message"] == "live" and "offset" in fc["data"]
    run(body(), timeout=180)


def test_lone_subscriber_recovers_while_its_channel_lingers(node_factory):
    a, b = start_mesh(node_factory, "AB", [("B", "A")],
                      sections={"history": dict(HIST, linger_ms=60000)})

    async def body():
        async with Pool() as pool:
            pub = await pool.connect(a)
            assert await pub.subscribe("ln") == ok()
            # the only subscriber of "ln" on B
            sub = await pool.connect(b)
            r = await sub.request(sub_cmd("ln", "s", recover=True))
            epoch, start = r["data"]["epoch"], r["data"]["offset"]
            await wait_converged([a, b], "ln", holders=["A", "B"])
            sub.ws.transport.abort()  # the connection drops, no close
            # B keeps the channel: still a holder, what A sends is kept
            for i in range(30):
                assert await pub.publish("ln", f"l{i}") == ok()
            await wait_converged([a, b], "ln", holders=["A", "B"])
            sub = await pool.connect(b)
            r = await sub.request(sub_cmd("ln", "s2", since={"epoch": epoch,
                                                             "offset": start}))
            assert r == ok("s2", epoch=epoch, offset=start + 30,
                           recovered=True), r
            for i in range(30):
                f = await sub.recv()
                assert f["data"]["message"] == f"l{i}", f
            await sub.expect_quiet()
            # an unsubscribe is meant: the channel closes on B at once
            assert await sub.request(command("unsubscribe", {"topic": "ln"},
                                             "u")) == ok("u")
            await wait_converged([a, b], "ln", holders=["A"])
    run(body(), timeout=120)


def test_not_recovered_after_the_ttl(node_factory):
    node = node_factory.start(history={"size": 100, "ttl_ms": 300})

    async def body():
        async with Pool() as pool:
            pub = await pool.connect(node)
            assert await pub.subscribe("t") == ok()
            sub = await pool.connect(node)
            r = await sub.request(sub_cmd("t", "s", recover=True))
            epoch = r["data"]["epoch"]
            await sub.close()
            for i in range(3):
                assert await pub.publish("t", f"x{i}") == ok()
            await wait_until(lambda: metrics(node).get("wsrelay_history_entries") == 0,
                             what="entries past the ttl dropped")
            sub = await pool.connect(node)
            r = await sub.request(sub_cmd("t", "s2", since={"epoch": epoch,
                                                            "offset": 0}))
            assert r == ok("s2", epoch=epoch, offset=3, recovered=False), r
            await sub.expect_quiet()
            # kept again within the ttl
            assert await pub.publish("t", "y") == ok()
            r = await sub.recv()
            assert r["data"]["offset"] == 4
    run(body())


def test_history_command(node_factory):
    node = node_factory.start(history={"size": 5})

    async def body():
        async with Pool() as pool:
            cl = await pool.connect(node)
            r = await cl.request(command("history", {"channel": "hc"}, "h0"))
            assert r == fail("not subscribed", "h0")
            assert await cl.subscribe("hc") == ok()
            r = await cl.request(command("history", {"channel": "hc"}, "h1"))
            epoch = r["data"]["epoch"]
            assert r == ok("h1", epoch=epoch, offset=0, messages=[])
            other = await pool.connect(node)
            assert await other.subscribe("hc") == ok()
            texts = ["a", 'q"\\', "\u00e9\u0001", "d", "e", "f", "g"]
            for t in texts:
                assert await other.publish("hc", t) == ok()
            for t in texts:
                assert (await cl.recv())["data"]["message"] == t
            r = await cl.request(command("history", {"channel": "hc"}, "h2"))
            assert r == ok("h2", epoch=epoch, offset=7, messages=[
                {"message": t, "offset": i + 1} for i, t in enumerate(texts)][2:]), r
            r = await cl.request(command("history", {"channel": "hc", "limit": 2}))
            assert r == ok(epoch=epoch, offset=7, messages=[
                {"message": "f", "offset": 6}, {"message": "g", "offset": 7}])
            r = await cl.request(command("history", {"channel": "hc", "limit": 99}))
            assert len(r["data"]["messages"]) == 5, "capped at size"
            r = await cl.request(command("history", {"channel": "hc", "limit": 0}))
            assert r["data"]["messages"] == []
            for bad in ("x", -1, 1.5, True):
                r = await cl.request(command("history", {"channel": "hc",
                                                         "limit": bad}))
                assert r == fail("missing field: limit"), bad
            r = await cl.request(command("history", {}, "h3"))
            assert r == fail("missing field: channel", "h3")
            r = await cl.request(command("history", {"channel": ""}))
            assert r == fail("invalid channel name")
            assert metrics(node).get("wsrelay_history_commands_total") == 5
    run(body())


def test_recover_and_since_input_checks(node_factory):
    node = node_factory.start(history={"size": 5})

    async def body():
        async with Pool() as pool:
            cl = await pool.connect(node)
            for data, reason in (
                    ({"recover": "yes"}, "missing field: recover"),
                    ({"since": 5}, "missing field: since"),
                    ({"since": {"epoch": 1, "offset": 0}}, "missing field: since"),
                    ({"since": {"epoch": "e"}}, "missing field: since"),
                    ({"since": {"epoch": "e", "offset": -1}}, "missing field: since"),
                    ({"since": {"epoch": "e", "offset": 1e3}}, "missing field: since")):
                r = await cl.request(sub_cmd("ic", "n", **data))
                assert r == fail(reason, "n"), data
            await cl.expect_quiet()
            # recover: false is today's subscribe
            assert await cl.request(sub_cmd("ic", "p", recover=False)) == ok("p")
            # an existing subscription asking recover: offsets from now on
            r = await cl.request(sub_cmd("ic", "q", recover=True))
            assert r["data"]["offset"] == 0 and r["nonce"] == "q", r
            other = await pool.connect(node)
            assert await other.subscribe("ic") == ok()
            assert await other.publish("ic", "z") == ok()
            f = await cl.recv()
            assert f["data"] == {"message": "z", "channel": "ic", "offset": 1}, f
    run(body())


def test_history_off_still_numbers_offsets(node_factory):
    node = node_factory.start()

    async def body():
        async with Pool() as pool:
            pub = await pool.connect(node)
            assert await pub.subscribe("off") == ok()
            sub = await pool.connect(node)
            r = await sub.request(sub_cmd("off", "s", recover=True))
            epoch = r["data"]["epoch"]
            assert await pub.publish("off", "a") == ok()
            assert (await sub.recv())["data"]["offset"] == 1
            await sub.close()
            assert await pub.publish("off", "b") == ok()
            sub = await pool.connect(node)
            r = await sub.request(sub_cmd("off", "s2", since={"epoch": epoch,
                                                              "offset": 1}))
            assert r == ok("s2", epoch=epoch, offset=2, recovered=False), r
            await sub.expect_quiet()
            r = await sub.request(command("history", {"channel": "off"}))
            assert r == ok(epoch=epoch, offset=2, messages=[])
            assert metrics(node).get("wsrelay_history_entries") == 0
    run(body())


def test_cli_sub_recover_since_and_history(node_factory):
    from test_cli_client import Sub, cli, url  # helpers only, no tests

    node = node_factory.start(history={"size": 50})
    u = url(node)

    async def body():
        async with Pool() as pool:
            keep = await pool.connect(node)  # keeps the channel (and epoch)
            assert await keep.subscribe("cli") == ok()
            sub = Sub(u, "cli", "--recover").wait_subscribed()
            try:
                for i in range(3):
                    assert await keep.publish("cli", f"a{i}") == ok()
                assert [sub.line() for _ in range(3)] == ["a0", "a1", "a2"]
            finally:
                assert sub.stop() == 0
            pos = [ln for ln in sub.stderr().splitlines() if "position" in ln]
            assert len(pos) == 1, sub.stderr()
            epoch, off = pos[0].split()[-1].split(":")
            assert off == "3", pos
            for i in range(3, 6):
                assert await keep.publish("cli", f"a{i}") == ok()
            sub = Sub(u, "cli", "--since", f"{epoch}:3").wait_subscribed()
            try:
                assert [sub.line() for _ in range(3)] == ["a3", "a4", "a5"]
                assert await keep.publish("cli", "live") == ok()
                assert sub.line() == "live"
            finally:
                assert sub.stop() == 0
            assert f"position {epoch}:7" in sub.stderr(), sub.stderr()
            assert "not recovered" not in sub.stderr()
            # a position the node cannot honour: said so, and it goes on
            sub = Sub(u, "cli", "--since", "0000000000000000:1").wait_subscribed()
            try:
                assert "not recovered" in sub.stderr()
            finally:
                assert sub.stop() == 0
            assert f"position {epoch}:7" in sub.stderr(), sub.stderr()

            r = cli("history", u, "cli", "--limit", "2")
            assert r.returncode == 0, r.stderr
            assert r.stdout == "a5\nlive\n"
            assert f"position {epoch}:7" in r.stderr
            r = cli("history", u, "cli", "--json", "--limit", "1")
            assert json.loads(r.stdout)["data"]["messages"] == [
                {"message": "live", "offset": 7}]
            assert cli("history", u, "cli", "--limit", "x").returncode == 2
            assert cli("sub", u, "cli", "--since", "nocolon").returncode == 2
            assert cli("list", u, "--recover").returncode == 2
    run(body())


def test_recovering_subscribes_that_wait(node_factory):
    """A recovering subscribe that opens the channel waits for the mesh's
    acknowledgement (held meanwhile) and one with a password waits for
    PBKDF2: both are answered with their position, then get offsets."""
    a, b = start_mesh(node_factory, "AB", [("B", "A")],
                      sections={"history": HIST})

    async def body():
        async with Pool() as pool:
            sub = await pool.connect(a)
            r = await sub.request(sub_cmd("wait", "w", recover=True,
                                          password="pw"))
            assert r["data"]["ok"] is True and r["data"]["offset"] == 0, r
            epoch = r["data"]["epoch"]
            keep = await pool.connect(a)  # the channel stays open on A
            assert await keep.subscribe("wait", password="pw") == ok()
            pub = await pool.connect(b)
            r = await pub.request(sub_cmd("wait", "p", password="pw"))
            assert r == ok("p"), r
            await wait_converged([a, b], "wait", holders=["A", "B"])
            for i in range(3):
                assert await pub.publish("wait", f"w{i}") == ok()
            for i in range(3):
                f = await sub.recv()
                assert f["data"] == {"message": f"w{i}", "channel": "wait",
                                     "offset": i + 1}, f
            await sub.close()
            assert await pub.publish("wait", "w3") == ok()
            sub = await pool.connect(a)
            r = await sub.request(sub_cmd("wait", "s", password="pw",
                                          since={"epoch": epoch, "offset": 1}))
            assert r == ok("s", epoch=epoch, offset=4, recovered=True), r
            assert [(await sub.recv())["data"]["offset"] for _ in range(3)] == [2, 3, 4]
            await sub.expect_quiet()
    run(body())
