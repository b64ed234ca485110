"""
PROTOCOL.md section 2: the client protocol on WS /connect — response
shapes, nonces, every error row, subscribe / unsubscribe / list / send,
delivery frames, channel names, ordering.
"""

import asyncio
import json

import pytest

from conftest import (MISSING, Pool, RawWS, command, delivery, fail, ok, run,
                      wait_until)


# ---------------------------------------------------------------------------
# responses and nonces
# ---------------------------------------------------------------------------

def test_response_shape_with_and_without_nonce(node):
    async def body():
        async with Pool() as pool:
            c = await pool.connect(node)
            r = await c.subscribe("chan", nonce="abc")
            assert r == {"type": "response", "data": {"ok": True}, "nonce": "abc"}
            r = await c.subscribe("chan2")
            assert r == {"type": "response", "data": {"ok": True}}
            assert "nonce" not in r
            r = await c.request(command("bogus", {}, "n-1"))
            assert r == {"type": "response",
                         "data": {"ok": False, "reason": "unknown command"},
                         "nonce": "n-1"}
            r = await c.request(command("bogus", {}))
            assert r == fail("unknown command")
    run(body())


@pytest.mark.parametrize("nonce", [
    "",
    "x",
    "a" * 128,                       # 128 bytes, the maximum
    "\U0001F600" * 32,               # 32 emoji = 128 UTF-8 bytes
    'quote" back\\slash\nnewline',
    "ünïcødé",
])
def test_nonce_echoed_exactly(shared_node, nonce):
    async def body():
        async with Pool() as pool:
            c = await pool.connect(shared_node)
            ch = f"nonce-echo-{len(nonce.encode())}-{abs(hash(nonce))}"
            assert await c.subscribe(ch, nonce=nonce) == ok(nonce)
            assert ch in await c.alive(nonce)
            assert await c.unsubscribe(ch, nonce=nonce) == ok(nonce)
            assert await c.publish(ch, "x", nonce=nonce) == fail("not subscribed", nonce)
    run(body())


@pytest.mark.parametrize("nonce", [
    "a" * 129,                        # 129 bytes
    "a" + "\U0001F600" * 32,          # 33 characters but 129 bytes
    42,
    1.5,
    True,
    ["abc"],
    {"n": "abc"},
])
def test_bad_nonce_is_rejected_without_echo(shared_node, nonce):
    async def body():
        async with Pool() as pool:
            c = await pool.connect(shared_node)
            ch = f"bad-nonce-{abs(hash(repr(nonce)))}"
            r = await c.request({"command": "subscribe", "data": {"topic": ch},
                                 "nonce": nonce})
            assert r == fail("missing field: nonce")
            # the command was not executed and the connection is still usable
            assert ch not in await c.alive()
            assert await c.publish(ch, "x") == fail("not subscribed")
    run(body())


def test_every_command_gets_exactly_one_response(node):
    async def body():
        async with Pool() as pool:
            c = await pool.connect(node)
            frames = [command("subscribe", {"topic": "one"}, "1"),
                      command("list", {}, "2"),
                      command("send", {"channel": "one", "message": "m"}, "3"),
                      command("unsubscribe", {"topic": "one"}, "4"),
                      command("nope", {}, "5"),
                      command("send", {"channel": "one", "message": "m"}, "6")]
            for f in frames:
                await c.send(f)
            got = [await c.recv() for _ in frames]
            assert got == [ok("1"), ok("2", channels=["one"]), ok("3"), ok("4"),
                           fail("unknown command", "5"), fail("not subscribed", "6")]
            await c.expect_quiet()
    run(body())


# ---------------------------------------------------------------------------
# error rows: every one answers and leaves the connection open
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "not json",
    "{",
    '{"command": "list"',
    "[]",
    '[{"command": "list", "nonce": "x"}]',
    '"subscribe"',
    "42",
    "null",
    "true",
    "",
])
def test_invalid_json(shared_node, text):
    async def body():
        async with Pool() as pool:
            c = await pool.connect(shared_node)
            r = await c.request(text)
            assert r == {"type": "response", "data": {"ok": False, "reason": "invalid json"}}
            await c.alive("still-open")
    run(body())


@pytest.mark.parametrize("frame", [
    {"data": {"topic": "x"}},
    {"command": None, "data": {"topic": "x"}},
    {"command": 7, "data": {"topic": "x"}},
    {"command": ["subscribe"], "data": {"topic": "x"}},
    {"command": {"name": "subscribe"}, "data": {"topic": "x"}},
])
@pytest.mark.parametrize("nonce", [MISSING, "nc"])
def test_missing_command(shared_node, frame, nonce):
    async def body():
        async with Pool() as pool:
            c = await pool.connect(shared_node)
            f = dict(frame)
            if nonce is not MISSING:
                f["nonce"] = nonce
            assert await c.request(f) == fail("missing field: command", nonce)
            assert "x" not in await c.alive()
    run(body())


@pytest.mark.parametrize("name", ["Subscribe", "publish", "", "list ", "handshake"])
def test_unknown_command(shared_node, name):
    async def body():
        async with Pool() as pool:
            c = await pool.connect(shared_node)
            assert await c.request(command(name, {"topic": "x"}, "u")) == \
                fail("unknown command", "u")
            assert "x" not in await c.alive()
    run(body())


@pytest.mark.parametrize("cmd,data,reason", [
    # data missing or not an object
    ("subscribe", MISSING, "missing field: data"),
    ("subscribe", None, "missing field: data"),
    ("subscribe", "chan", "missing field: data"),
    ("subscribe", ["chan"], "missing field: data"),
    ("subscribe", 3, "missing field: data"),
    ("unsubscribe", MISSING, "missing field: data"),
    ("unsubscribe", "chan", "missing field: data"),
    ("send", MISSING, "missing field: data"),
    ("send", [], "missing field: data"),
    # topic
    ("subscribe", {}, "missing field: topic"),
    ("subscribe", {"channel": "chan"}, "missing field: topic"),
    ("subscribe", {"topic": None}, "missing field: topic"),
    ("subscribe", {"topic": 5}, "missing field: topic"),
    ("subscribe", {"topic": ["chan"]}, "missing field: topic"),
    ("subscribe", {"topic": {"name": "chan"}}, "missing field: topic"),
    ("unsubscribe", {}, "missing field: topic"),
    ("unsubscribe", {"topic": 5}, "missing field: topic"),
    ("unsubscribe", {"channel": "chan"}, "missing field: topic"),
    # send: channel and message
    ("send", {"message": "hi"}, "missing field: channel"),
    ("send", {"channel": 1, "message": "hi"}, "missing field: channel"),
    ("send", {"channel": None, "message": "hi"}, "missing field: channel"),
    ("send", {"topic": "chan", "message": "hi"}, "missing field: channel"),
    ("send", {"channel": "chan"}, "missing field: message"),
    ("send", {"channel": "chan", "message": 5}, "missing field: message"),
    ("send", {"channel": "chan", "message": None}, "missing field: message"),
    ("send", {"channel": "chan", "message": {"a": 1}}, "missing field: message"),
    ("send", {"channel": "chan", "message": ["hi"]}, "missing field: message"),
    # password present but not a string
    ("subscribe", {"topic": "chan", "password": 1234}, "missing field: password"),
    ("subscribe", {"topic": "chan", "password": True}, "missing field: password"),
    ("subscribe", {"topic": "chan", "password": ["pw"]}, "missing field: password"),
    ("subscribe", {"topic": "chan", "password": {"p": "pw"}}, "missing field: password"),
])
def test_missing_or_mistyped_field(shared_node, cmd, data, reason):
    async def body():
        async with Pool() as pool:
            c = await pool.connect(shared_node)
            # "chan" exists (open) and this connection is subscribed, so the
            # only thing wrong with each frame is the field under test
            assert await c.subscribe("chan") == ok()
            assert await c.request(command(cmd, data, "f")) == fail(reason, "f")
            assert await c.request(command(cmd, data)) == fail(reason)
            assert "chan" in await c.alive()
            # still subscribed: the failed command changed nothing
            assert await c.publish("chan", "still in") == ok()
    run(body())


def test_list_accepts_missing_data(node):
    async def body():
        async with Pool() as pool:
            c = await pool.connect(node)
            assert await c.request({"command": "list"}) == ok(channels=[])
            assert await c.request({"command": "list", "nonce": "l"}) == ok("l", channels=[])
    run(body())


def test_null_password_counts_as_absent(node):
    async def body():
        async with Pool() as pool:
            a, b = await pool.connect_many(node, 2)
            # creates an open channel
            assert await a.subscribe("nullpw", password=None, nonce="1") == ok("1")
            # an open channel accepts a subscribe with no password / null password
            assert await b.subscribe("nullpw", nonce="2") == ok("2")
            assert await b.unsubscribe("nullpw") == ok()
            assert await b.subscribe("nullpw", password=None, nonce="3") == ok("3")
            # a real password for that open channel is wrong
            c = await pool.connect(node)
            assert await c.subscribe("nullpw", password="pw", nonce="4") == \
                fail("invalid password", "4")
    run(body())


def test_unknown_extra_fields_are_ignored(node):
    async def body():
        async with Pool() as pool:
            a, b = await pool.connect_many(node, 2)
            assert await a.request({"command": "subscribe", "data": {"topic": "x", "extra": 1},
                                    "nonce": "1", "something": "else"}) == ok("1")
            assert await b.subscribe("x") == ok()
            assert await b.request({"command": "send", "nonce": "2",
                                    "data": {"channel": "x", "message": "m", "foo": [1]}}) == ok("2")
            assert await a.recv() == delivery("m", "x", "2")
    run(body())


def test_send_not_subscribed(node):
    async def body():
        async with Pool() as pool:
            a, b = await pool.connect_many(node, 2)
            # channel does not exist at all
            assert await a.publish("nowhere", "hi", nonce="1") == fail("not subscribed", "1")
            # channel exists, but this connection is not in it
            assert await b.subscribe("there") == ok()
            assert await a.publish("there", "hi", nonce="2") == fail("not subscribed", "2")
            await b.expect_quiet()  # nothing was delivered
            # after unsubscribing, sending fails again
            assert await a.subscribe("there") == ok()
            assert await a.publish("there", "now", nonce="3") == ok("3")
            assert await b.recv() == delivery("now", "there", "3")
            assert await a.unsubscribe("there") == ok()
            assert await a.publish("there", "gone", nonce="4") == fail("not subscribed", "4")
            await b.expect_quiet()
    run(body())


def test_unsubscribe_not_subscribed(node):
    async def body():
        async with Pool() as pool:
            a, b = await pool.connect_many(node, 2)
            assert await a.unsubscribe("never", nonce="1") == fail("not subscribed", "1")
            assert await b.subscribe("other") == ok()
            assert await a.unsubscribe("other", nonce="2") == fail("not subscribed", "2")
            assert await a.subscribe("mine") == ok()
            assert await a.unsubscribe("mine", nonce="3") == ok("3")
            assert await a.unsubscribe("mine", nonce="4") == fail("not subscribed", "4")
            assert await a.list(nonce="5") == ok("5", channels=["other"])
    run(body())


# ---------------------------------------------------------------------------
# channel names
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", [
    "",
    "a" * 129,
    "\u00e9" * 64 + "a",   # 65 characters, 129 bytes
    "\u20ac" * 43,         # 43 characters, 129 bytes
    "\u0001",
    "a\u0001b",
    "\u007f",
    "chan\u007f",
    "line\nbreak",
    "tab\there",
    "cr\r",
    "\u001f",
    "nul-cut\u0000here",
])
def test_invalid_channel_name(shared_node, name):
    async def body():
        async with Pool() as pool:
            c = await pool.connect(shared_node)
            assert await c.subscribe(name, nonce="bad") == fail("invalid channel name", "bad")
            assert await c.subscribe(name, password="pw", nonce="bad2") == \
                fail("invalid channel name", "bad2")
            channels = await c.alive()
            assert name not in channels
            # a C string cut at the NUL must not have created "nul-cut"
            assert name.split("\u0000")[0] not in channels
    run(body())


@pytest.mark.parametrize("name", [
    "a",
    "a" * 128,
    "\u00e9" * 64,          # 128 bytes
    "\u20ac" * 42 + "ab",   # 128 bytes
    "\U0001F600" * 32,      # 128 bytes
    "канал",
    "频道 with spaces",
    "sym!@#$%^&*()[]{}<>/\\\"'",
    "\u0080\u00a0",         # C1 / nbsp: not in the forbidden set
])
def test_valid_channel_names(shared_node, name):
    async def body():
        async with Pool() as pool:
            a, b = await pool.connect_many(shared_node, 2)
            assert await a.subscribe(name, nonce="1") == ok("1")
            assert await b.subscribe(name, nonce="2") == ok("2")
            assert name in await a.alive()
            assert await a.publish(name, "hello", "3") == ok("3")
            assert await b.recv() == delivery("hello", name, "3")
            assert await a.unsubscribe(name) == ok()
    run(body())


# ---------------------------------------------------------------------------
# subscribe / unsubscribe / list
# ---------------------------------------------------------------------------

def test_subscribe_is_idempotent(node):
    async def body():
        async with Pool() as pool:
            a, b = await pool.connect_many(node, 2)
            for i in range(3):
                assert await a.subscribe("idem", nonce=str(i)) == ok(str(i))
            assert await b.subscribe("idem") == ok()
            assert await a.list() == ok(channels=["idem"])
            # subscribed once: one delivery per message, no duplicates
            assert await b.publish("idem", "once", "n") == ok("n")
            assert await a.recv() == delivery("once", "idem", "n")
            await a.expect_quiet()
            # one unsubscribe leaves the channel
            assert await a.unsubscribe("idem") == ok()
            assert await a.unsubscribe("idem") == fail("not subscribed")
    run(body())


def test_list_sorted_unique(node):
    async def body():
        async with Pool() as pool:
            a, b, c = await pool.connect_many(node, 3)
            names = ["delta", "alpha", "Charlie", "bravo", "\u00e9cho", "a b", "Z", "10", "9"]
            for n in names:
                assert await a.subscribe(n) == ok()
            for n in ["alpha", "bravo", "Z"]:
                assert await b.subscribe(n) == ok()
            expected = sorted(set(names), key=lambda s: s.encode())
            assert await c.list(nonce="L") == ok("L", channels=expected)
            assert await a.list() == ok(channels=expected)
    run(body())


def test_list_empty(node):
    async def body():
        async with Pool() as pool:
            c = await pool.connect(node)
            assert await c.list() == ok(channels=[])
    run(body())


def test_channel_leaves_list_when_last_subscriber_unsubscribes(node):
    async def body():
        async with Pool() as pool:
            a, b, obs = await pool.connect_many(node, 3)
            assert await a.subscribe("shared") == ok()
            assert await b.subscribe("shared") == ok()
            assert await a.subscribe("solo") == ok()
            assert await obs.channels() == ["shared", "solo"]
            assert await a.unsubscribe("shared") == ok()
            assert await obs.channels() == ["shared", "solo"]
            assert await b.unsubscribe("shared") == ok()
            assert await obs.channels() == ["solo"]
            assert await a.unsubscribe("solo") == ok()
            assert await obs.channels() == []
    run(body())


def test_channel_leaves_list_when_last_subscriber_disconnects(node):
    async def body():
        async with Pool() as pool:
            a, b, obs = await pool.connect_many(node, 3)
            assert await a.subscribe("dc") == ok()
            assert await b.subscribe("dc") == ok()
            assert await a.subscribe("dc2") == ok()
            await a.close()
            # dc2 goes with a; dc stays because b is still in it
            async def gone():
                return await obs.channels() == ["dc"]
            await wait_until(gone, what="dc2 to leave the list")
            await b.ws.close()
            async def empty():
                return await obs.channels() == []
            await wait_until(empty, what="dc to leave the list")
    run(body())


def test_disconnected_subscriber_gets_nothing_and_others_still_do(node):
    async def body():
        async with Pool() as pool:
            a, b, c = await pool.connect_many(node, 3)
            for x in (a, b, c):
                assert await x.subscribe("d") == ok()
            await b.close()
            assert await a.publish("d", "after", "n") == ok("n")
            assert await c.recv() == delivery("after", "d", "n")
            await a.expect_quiet()
    run(body())


# ---------------------------------------------------------------------------
# send and delivery
# ---------------------------------------------------------------------------

def test_delivery_to_every_other_subscriber_not_sender(node):
    async def body():
        async with Pool() as pool:
            a, b, c, outsider = await pool.connect_many(node, 4)
            for x in (a, b, c):
                assert await x.subscribe("room") == ok()
            assert await outsider.subscribe("other-room") == ok()
            assert await a.publish("room", "Hello", nonce="abc123") == ok("abc123")
            expected = {"type": "message", "data": {"message": "Hello", "channel": "room"},
                        "nonce": "abc123"}
            assert await b.recv() == expected
            assert await c.recv() == expected
            await a.expect_quiet()        # the sender does not get its own message
            await outsider.expect_quiet()
            await b.expect_quiet()        # exactly one copy each
            await c.expect_quiet()
    run(body())


def test_delivery_without_nonce_has_no_nonce_key(node):
    async def body():
        async with Pool() as pool:
            a, b = await pool.connect_many(node, 2)
            assert await a.subscribe("nn") == ok()
            assert await b.subscribe("nn") == ok()
            assert await a.publish("nn", "plain") == ok()
            got = await b.recv()
            assert got == {"type": "message", "data": {"message": "plain", "channel": "nn"}}
            assert "nonce" not in got
    run(body())


def test_unsubscribed_client_no_longer_receives(node):
    async def body():
        async with Pool() as pool:
            a, b, c = await pool.connect_many(node, 3)
            for x in (a, b, c):
                assert await x.subscribe("u") == ok()
            assert await b.unsubscribe("u") == ok()
            assert await a.publish("u", "m1", "1") == ok("1")
            assert await c.recv() == delivery("m1", "u", "1")
            await b.expect_quiet()
    run(body())


def test_messages_stay_in_their_channel(node):
    async def body():
        async with Pool() as pool:
            a, b, c = await pool.connect_many(node, 3)
            assert await a.subscribe("x") == ok()
            assert await a.subscribe("y") == ok()
            assert await b.subscribe("x") == ok()
            assert await c.subscribe("y") == ok()
            assert await a.publish("x", "to-x") == ok()
            assert await a.publish("y", "to-y") == ok()
            assert await b.recv() == delivery("to-x", "x")
            assert await c.recv() == delivery("to-y", "y")
            await b.expect_quiet()
            await c.expect_quiet()
    run(body())


def test_send_to_channel_with_no_other_subscriber(node):
    async def body():
        async with Pool() as pool:
            a = await pool.connect(node)
            assert await a.subscribe("alone") == ok()
            assert await a.publish("alone", "echo?", "1") == ok("1")
            await a.expect_quiet()
    run(body())


SPECIAL_MESSAGES = [
    "",
    " ",
    'quotes " and \' apostrophes',
    "back\\slash \\n not a newline \\u0041",
    "new\nline\r\ncrlf\ttab",
    "emoji \U0001F600\U0001F680 and \u2603 snow",
    "ünïcødé ✓ 中文 العربية עברית",
    '{"command": "subscribe", "data": {"topic": "x"}}',
    "</script><script>alert(1)</script>",
    "\u2028\u2029 line separators",
    "\ufeffBOM",
    "\U0010FFFF max code point",
]


def test_special_characters_round_trip(node):
    async def body():
        async with Pool() as pool:
            a, b = await pool.connect_many(node, 2)
            ch = "sp\u00e9cial \"chan\" \\ \U0001F4AC"
            assert await a.subscribe(ch) == ok()
            assert await b.subscribe(ch) == ok()
            for i, m in enumerate(SPECIAL_MESSAGES):
                nonce = f"n\"{i}\\\n\U0001F511"
                assert await a.publish(ch, m, nonce) == ok(nonce)
                assert await b.recv() == delivery(m, ch, nonce)
    run(body())


def test_control_characters_in_message_round_trip(node):
    # only channel names forbid control characters; a message is any string
    async def body():
        async with Pool() as pool:
            a, b = await pool.connect_many(node, 2)
            assert await a.subscribe("ctl") == ok()
            assert await b.subscribe("ctl") == ok()
            m = "".join(chr(i) for i in range(1, 32)) + "\u007f"
            assert await a.publish("ctl", m, "1") == ok("1")
            assert await b.recv() == delivery(m, "ctl", "1")
            m = "nul\u0000inside"
            assert await a.publish("ctl", m, "2") == ok("2")
            assert await b.recv() == delivery(m, "ctl", "2")
    run(body())


def test_escaped_and_raw_utf8_are_equivalent(node):
    # "\u00e9" written as a JSON escape and as raw UTF-8 is the same channel
    async def body():
        async with Pool() as pool:
            a, b = await pool.connect_many(node, 2)
            await a.send('{"command":"subscribe","data":{"topic":"caf\\u00e9"},"nonce":"1"}')
            assert await a.recv() == ok("1")
            await b.send('{"command":"subscribe","data":{"topic":"café"},"nonce":"2"}')
            assert await b.recv() == ok("2")
            assert await a.list() == ok(channels=["café"])
            await b.send('{"command":"send","data":{"channel":"café",'
                         '"message":"\\ud83d\\ude00 \\"q\\""},"nonce":"3"}')
            assert await b.recv() == ok("3")
            assert await a.recv() == delivery("\U0001F600 \"q\"", "café", "3")
    run(body())


def test_order_preserved_1000_messages_three_subscribers(node):
    N = 1000

    async def body():
        async with Pool() as pool:
            sender = await pool.connect(node)
            subs = await pool.connect_many(node, 3)
            for x in [sender, *subs]:
                assert await x.subscribe("order") == ok()

            async def collect(c):
                return [await c.recv() for _ in range(N)]

            async def responses():
                return [await sender.recv() for _ in range(N)]

            tasks = [asyncio.create_task(collect(s)) for s in subs]
            resp_task = asyncio.create_task(responses())
            for i in range(N):
                await sender.send(command("send", {"channel": "order", "message": f"m{i}"}, str(i)))
            resps = await asyncio.wait_for(resp_task, 60)
            assert resps == [ok(str(i)) for i in range(N)]
            expected = [delivery(f"m{i}", "order", str(i)) for i in range(N)]
            for t in tasks:
                got = await asyncio.wait_for(t, 60)
                assert got == expected
            for s in subs:
                await s.expect_quiet()
            await sender.expect_quiet()
    run(body())


def test_fragmented_command_is_one_message(node):
    # a text message split over continuation frames is one command,
    # including a UTF-8 character split across the fragment boundary
    async def body():
        async with Pool() as pool:
            b = await pool.connect(node)
            assert await b.subscribe("frag\u20ac") == ok()
            raw = RawWS(node)
            try:
                assert raw.status == 101
                payload = json.dumps({"command": "subscribe", "data": {"topic": "frag\u20ac"},
                                      "nonce": "f"}, ensure_ascii=False).encode()
                cut = payload.index("\u20ac".encode()) + 1  # inside the euro sign
                await asyncio.to_thread(_send_fragments, raw, [payload[:cut], payload[cut:]])
                assert await asyncio.to_thread(raw.recv_json) == ok("f")
                msg = json.dumps({"command": "send", "data": {"channel": "frag\u20ac",
                                  "message": "in three parts"}, "nonce": "g"}).encode()
                await asyncio.to_thread(_send_fragments, raw, [msg[:10], msg[10:20], msg[20:]])
                assert await asyncio.to_thread(raw.recv_json) == ok("g")
                assert await b.recv() == delivery("in three parts", "frag\u20ac", "g")
            finally:
                raw.close()
    run(body())


def _send_fragments(raw, parts):
    from conftest import OP_CONT, OP_TEXT
    for i, p in enumerate(parts):
        raw.send_frame(OP_TEXT if i == 0 else OP_CONT, p, fin=(i == len(parts) - 1))


def test_large_message_default_limit_round_trip(node):
    # default max_message_bytes is 65536: a message of exactly that many
    # bytes (multi-byte characters crossing any read-buffer boundary) is ok
    async def body():
        async with Pool() as pool:
            a, b = await pool.connect_many(node, 2)
            assert await a.subscribe("big") == ok()
            assert await b.subscribe("big") == ok()
            m = "\u20ac" * (65536 // 3) + "x" * (65536 % 3)
            assert len(m.encode()) == 65536
            assert await a.publish("big", m, "b") == ok("b")
            assert await b.recv() == delivery(m, "big", "b")
            m2 = m + "y"
            assert await a.publish("big", m2, "c") == fail("message too large", "c")
            await b.expect_quiet()
    run(body())
