"""
Presence across a real 3-node mesh (PROTOCOL.md 7.4, 7.5.9, 7.5.10): the
`presence` command's counts and users from every node, `partial` when a
holder is frozen, join / leave events for authenticated users (one per
user per channel whatever its tabs and nodes, none for anonymous clients,
none to the joiner itself), leaves everywhere after a node is killed, the
input checks and the metrics. Every node verifies tokens with the same
HS256 key (tokens minted here). Waits are for events with deadlines.

"Nothing else came" is shown without sleeping: after an action that must
not cause an event, an action that must is done on the same node; the
next event a listener receives must be that one (a node's later state
cannot be seen before its earlier one).
"""

import asyncio
import json

from conftest import Client, Pool, command, fail, metrics, ok, run
from meshutil import (CONVERGE_S, kill9, mesh_config, paused,
                      wait_peers_sync)
from test_auth import SECRET, claims, hs256

EVENT_S = 3  # 7.5.9: events reach every listener within 3 s
ROOM = "room"


def start_auth_mesh(node_factory, tmp_path, names=("a", "b", "c")):
    key = tmp_path / "hs.key"
    key.write_bytes(SECRET)
    nodes = {}
    for i, name in enumerate(names):
        peers = [(p, nodes[p].port) for p in names[:i]]
        text = mesh_config(name, peers=peers)
        text += f'\n[auth]\nhs256_secret_file = "{key}"\n'
        nodes[name] = node_factory.start(config_text=text)
        nodes[name].name = name
    wait_peers_sync(list(nodes.values()),
                    {n: set(names) - {n} for n in names})
    return nodes


async def user(pool, node, name=None, events=False, channel=ROOM):
    """A client on @node, logged in as @name (None: anonymous), subscribed
    to @channel, with presence_events when @events."""
    c = await pool.connect(node)
    if name:
        r = await c.request(command("auth", {"token": hs256(claims(name))},
                                    "login"))
        assert r["data"]["ok"] is True, r
    data = {"topic": channel}
    if events:
        data["presence_events"] = True
    assert await c.request(command("subscribe", data, "sub")) == ok("sub")
    return c


async def presence(c, channel=ROOM, nonce="p"):
    r = await c.request(command("presence", {"channel": channel}, nonce))
    assert r.get("type") == "response" and r.get("nonce") == nonce, r
    return r["data"]


async def next_event(c, timeout=EVENT_S + 2):
    f = await c.recv(timeout)
    assert f.get("type") in ("join", "leave"), f
    assert set(f["data"]) == {"channel", "user"}, f
    return f["type"], f["data"]["user"]


async def eventually_presence(c, want_clients, want_users, partial=False,
                              timeout=CONVERGE_S, channel=ROOM):
    deadline = asyncio.get_running_loop().time() + timeout
    seen = None
    while True:
        seen = await presence(c, channel)
        if (seen == {"ok": True, "clients": want_clients,
                     "users": want_users, "partial": partial}):
            return seen
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"presence stayed {seen}, want "
                                 f"{want_clients} {want_users} {partial}")
        await asyncio.sleep(0.1)  # a poll interval, not synchronisation


def test_presence_counts_and_users_on_every_node(node_factory, tmp_path):
    n = start_auth_mesh(node_factory, tmp_path)

    async def body():
        async with Pool() as pool:
            cl = [await user(pool, n["a"], "alice"),
                  await user(pool, n["b"], "alice"),  # a second tab
                  await user(pool, n["b"], "bob"),
                  await user(pool, n["c"], "carol"),
                  await user(pool, n["c"])]  # anonymous: counted, no user
            for c in (cl[0], cl[2], cl[4]):  # asked on every node
                await eventually_presence(c, 5, ["alice", "bob", "carol"])
            # leaving, on any node, shows everywhere
            await cl[3].close()
            await cl[1].close()
            await eventually_presence(cl[0], 3, ["alice", "bob"])
            await eventually_presence(cl[4], 3, ["alice", "bob"])
            # a channel of its own is not mixed in
            other = await user(pool, n["a"], "dave", channel="other")
            await eventually_presence(other, 1, ["dave"], channel="other")
    run(body())


def test_join_and_leave_once_per_user_across_tabs_and_nodes(node_factory,
                                                             tmp_path):
    n = start_auth_mesh(node_factory, tmp_path)

    async def body():
        async with Pool() as pool:
            la = await user(pool, n["a"], "lena", events=True)
            lb = await user(pool, n["b"], "liam", events=True)
            # lena was there first: liam's subscribe is a join for lena,
            # and liam does not receive his own
            assert await next_event(la) == ("join", "liam")
            bob_b = await user(pool, n["b"], "bob")
            for listener in (la, lb):
                assert await next_event(listener) == ("join", "bob")
            # bob's second and third tabs, on two nodes: no event; then
            # carol on the same nodes: her join is the next event
            bob_a = await user(pool, n["a"], "bob")
            bob_c = await user(pool, n["c"], "bob")
            await user(pool, n["c"], "carol")
            await user(pool, n["a"], "carol")
            for listener in (la, lb):
                assert await next_event(listener) == ("join", "carol")
            # anonymous subscribers: no event at all
            await user(pool, n["c"])
            await user(pool, n["a"])
            # bob leaves two tabs: still present, no leave; then the last
            await bob_b.close()
            await bob_c.close()
            await user(pool, n["c"], "dave")
            for listener in (la, lb):
                assert await next_event(listener) == ("join", "dave")
            await bob_a.close()
            for listener in (la, lb):
                assert await next_event(listener) == ("leave", "bob")
            # an unsubscribe is a leave too
            await la.request(command("unsubscribe", {"topic": ROOM}, "u"))
            assert await next_event(lb) == ("leave", "lena")
            await lb.expect_quiet()
        # the counters
        # liam's five: bob, carol, dave joined; bob, lena left
        m = metrics(n["b"])
        assert m.get("wsrelay_presence_events_total") == 5
        assert m.get("wsrelay_presence_polls_total") > 0
    run(body())


def test_killed_node_users_leave_everywhere(node_factory, tmp_path):
    n = start_auth_mesh(node_factory, tmp_path)

    async def body():
        async with Pool() as pool:
            la = await user(pool, n["a"], "lena", events=True)
            lb = await user(pool, n["b"], "liam", events=True)
            assert await next_event(la) == ("join", "liam")
            await user(pool, n["c"], "carol")
            await user(pool, n["c"], "cora")
            for listener in (la, lb):
                got = {await next_event(listener) for _ in range(2)}
                assert got == {("join", "carol"), ("join", "cora")}
            kill9(n["c"])
            # the mesh sees c gone within its convergence time; then the
            # next poll drops it
            for listener in (la, lb):
                got = {await next_event(listener, CONVERGE_S)
                       for _ in range(2)}
                assert got == {("leave", "carol"), ("leave", "cora")}
            await eventually_presence(la, 2, ["lena", "liam"])
    run(body())


def test_partial_when_a_holder_does_not_answer(node_factory, tmp_path):
    n = start_auth_mesh(node_factory, tmp_path)

    async def body():
        async with Pool() as pool:
            a = await user(pool, n["a"], "alice")
            await user(pool, n["c"], "carol")
            await eventually_presence(a, 2, ["alice", "carol"])
            with paused(n["c"]):
                # command_timeout_ms is 1 s in these meshes: c is left out
                p = await presence(a, nonce="frozen")
                assert p == {"ok": True, "clients": 1, "users": ["alice"],
                             "partial": True}, p
            await eventually_presence(a, 2, ["alice", "carol"])
        m = metrics(n["a"])
        assert m.get("wsrelay_presence_queries_total", result="partial") >= 1
        assert m.get("wsrelay_presence_queries_total",
                     result="complete") >= 1
    run(body())


def test_presence_input_checks(node_factory, tmp_path):
    n = start_auth_mesh(node_factory, tmp_path, names=("a", "b", "c"))

    async def body():
        async with Pool() as pool:
            c = await user(pool, n["a"], "alice")
            cases = [
                (command("presence", {"channel": "nope"}, "1"),
                 fail("not subscribed", "1")),
                (command("presence", {}, "2"),
                 fail("missing field: channel", "2")),
                (command("presence", {"channel": 5}, "3"),
                 fail("missing field: channel", "3")),
                (command("presence", {"channel": "x" * 200}, "4"),
                 fail("invalid channel name", "4")),
                (command("presence", None, "5"),
                 fail("missing field: data", "5")),
                (command("subscribe", {"topic": "x",
                                       "presence_events": "yes"}, "6"),
                 fail("missing field: presence_events", "6")),
            ]
            for req, want in cases:
                assert await c.request(req) == want, req
            # alone on its node and the mesh: answered at once, complete
            assert await presence(c) == {"ok": True, "clients": 1,
                                         "users": ["alice"],
                                         "partial": False}
            # an anonymous subscriber asks too
            anon = await user(pool, n["a"])
            p = await presence(anon)
            assert p["clients"] == 2 and p["users"] == ["alice"], p
            # presence_events on a channel already subscribed: events
            # from then on
            assert await anon.request(command(
                "subscribe", {"topic": ROOM, "presence_events": True},
                "again")) == ok("again")
            await user(pool, n["b"], "bob")
            assert await next_event(anon) == ("join", "bob")
            # a raw frame: exact shape
            await user(pool, n["c"], "carol")
            raw = json.loads(await anon.recv_raw(EVENT_S + 2))
            assert raw == {"type": "join",
                           "data": {"channel": ROOM, "user": "carol"}}
    run(body())


def test_cli_presence(node_factory, tmp_path):
    from test_cli_client import cli, url  # helpers only, no tests
    n = start_auth_mesh(node_factory, tmp_path)

    async def body():
        async with Pool() as pool:
            await user(pool, n["a"], "alice")
            await user(pool, n["b"], "bob")
            await user(pool, n["c"])
            watcher = await user(pool, n["a"])
            await eventually_presence(watcher, 4, ["alice", "bob"])
            # asked on c, with a token: itself counted, its user listed
            r = await asyncio.to_thread(cli, "presence", url(n["c"]), ROOM,
                                        "--token", hs256(claims("cid")))
            assert r.returncode == 0, r.stderr
            assert r.stdout.splitlines() == ["alice", "bob", "cid"]
            assert "wsrelay presence: 5 client(s)\n" in r.stderr, r.stderr
            r = await asyncio.to_thread(cli, "presence", url(n["b"]), ROOM,
                                        "--json")
            assert r.returncode == 0, r.stderr
            got = json.loads(r.stdout)
            assert got["data"] == {"ok": True, "clients": 5,
                                   "users": ["alice", "bob"],
                                   "partial": False}, got
            r = await asyncio.to_thread(cli, "presence", url(n["b"]),
                                        "x" * 200)
            assert r.returncode == 1
            assert "invalid channel name" in r.stderr, r.stderr
            # a protected channel: --password subscribes, a wrong one is
            # the server's reason on stderr, exit 1, nothing on stdout
            v = await pool.connect(n["a"])
            r = await v.request(command("auth", {"token": hs256(
                claims("vera"))}, "login"))
            assert r["data"]["ok"] is True, r
            assert await v.request(command("subscribe", {
                "topic": "vault", "password": "pw1"}, "sub")) == ok("sub")
            await eventually_presence(v, 1, ["vera"], channel="vault")
            r = await asyncio.to_thread(cli, "presence", url(n["c"]),
                                        "vault", "--password", "pw1")
            assert r.returncode == 0, r.stderr
            assert r.stdout.splitlines() == ["vera"], r.stdout
            assert "wsrelay presence: 2 client(s)\n" in r.stderr, r.stderr
            r = await asyncio.to_thread(cli, "presence", url(n["c"]),
                                        "vault", "--password", "pw2")
            assert r.returncode == 1, r
            assert "invalid password" in r.stderr and r.stdout == "", r
    run(body())
