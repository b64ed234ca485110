"""
A peer holding the mesh token cannot take the mesh over (issue 10): on a
real 3-node mesh a-b-c with a fake node F linked to a,
 - a reservation for a holder no node knows, or with a creation time far
   ahead of a's clock, is refused ("invalid reservation") and counted; the
   channel's subscribers everywhere keep it, with its password;
 - a record or legacy announce from the far future ("at": 9e15) is
   dropped, and the real node's records still count;
 - a packet naming as its source a node linked to a directly, arriving on
   F's link, is dropped (source bound to its link);
 - a channel message from a source no record ever named is not delivered;
 - thousands of made-up sources leave a's view and route table as they
   were.
Each time the real clients keep working: a message sent on c reaches the
subscriber on a.
"""

import base64
import time

from conftest import Pool, delivery, fail, metrics, ok, run
from meshutil import (TOKEN, FakeNode, aapi_node, chan_of, pbkdf2_hex, pw_hash,
                      start_mesh, wait_converged)


def dropped(node, reason):
    return metrics(node).get("wsrelay_inm_packets_dropped_total",
                             reason=reason) or 0


def refused(node):
    return metrics(node).get("wsrelay_inm_reservations_refused_total") or 0


def mesh(node_factory):
    return start_mesh(node_factory, ["a", "b", "c"],
                      edges=[("b", "a"), ("c", "b")])


async def still_served(pool, a, c, channel, tag):
    """A subscriber on a gets what a client on c sends."""
    sa, sc = await pool.connect(a), await pool.connect(c)
    assert await sa.subscribe(channel) == ok()
    assert await sc.subscribe(channel) == ok()
    await wait_converged([a, c], channel, holders=["a", "c"])
    assert await sc.publish(channel, tag, tag) == ok(tag)
    assert await sa.recv() == delivery(tag, channel, tag)
    await sa.close()
    await sc.close()


def test_made_up_holders_and_times_are_refused(node_factory):
    a, b, c = mesh(node_factory)
    hpw = pw_hash("vault", "pw")

    async def body():
        f = await FakeNode.connect(a, TOKEN, "F")
        async with Pool() as pool:
            sa, sc = await pool.connect(a), await pool.connect(c)
            assert await sa.subscribe("vault", password="pw") == ok()
            assert await sc.subscribe("vault", password="pw") == ok()
            await wait_converged([a, b, c], "vault", password=hpw)
            before = refused(a)
            # the attack: an older reservation for a holder that does not
            # exist would win the race, evict every subscriber, replace
            # the password, and never be swept
            got = await f.command("a", "reserve-channel", channel="vault",
                                  password=pbkdf2_hex("vault", "evil"),
                                  created=1, holder="ghost")
            assert got == {"ok": False, "reason": "invalid reservation"}, got
            # a time far ahead of a's clock: refused too
            got = await f.command("a", "reserve-channel", channel="fresh",
                                  password=None,
                                  created=int(time.time() * 1000) + 3600_000)
            assert got == {"ok": False, "reason": "invalid reservation"}, got
            assert refused(a) == before + 2
            view = await aapi_node(a)
            assert chan_of(view, "fresh") is None
            e = chan_of(view, "vault")
            assert e["password"] == hpw and "ghost" not in e["holders"], e
            # nobody was evicted: the channel still works both ways
            assert await sc.publish("vault", "still here", "s1") == ok("s1")
            assert await sa.recv() == delivery("still here", "vault", "s1")
            newcomer = await pool.connect(b)
            assert await newcomer.subscribe("vault", password="evil") == \
                fail("invalid password")
        await f.close()
    run(body())


def test_forged_sources_and_future_records_are_dropped(node_factory):
    a, b, c = mesh(node_factory)

    async def body():
        f = await FakeNode.connect(a, TOKEN, "F")
        async with Pool() as pool:
            sa = await pool.connect(a)
            assert await sa.subscribe("room") == ok()
            src0, data0 = dropped(a, "source"), dropped(a, "data")
            # b is linked to a: a packet naming b as source on F's link is
            # forged, whatever it says (here: b's announce from 9e15)
            await f.send_packet({
                "source": "b", "destination": "*", "type": "event",
                "nonce": "0123456789abcdef0123456789abcdef"[:32], "ttl": 4,
                "data": {"event": "announce", "name": "b", "url": "",
                         "peers": ["a"], "channels": [], "master": False,
                         "at": 9e15}})
            # F's own announce from the far future: dropped as data
            await f.send_packet(f.packet("*", "event", {
                "event": "announce", "name": "F", "url": "", "peers": ["a"],
                "channels": [], "master": False, "at": 9e15}))
            # a channel message from a node no record ever named
            await f.send_packet({
                "source": "nobody", "destination": "*", "type": "message",
                "nonce": "fedcba9876543210fedcba9876543210", "ttl": 4,
                "data": {"channel": "room",
                         "message": base64.b64encode(b"forged").decode()}})
            # thousands of made-up sources (unicast to a made-up node)
            for i in range(3000):
                await f.send_packet({
                    "source": f"fake-{i}", "destination": f"ghost-{i}",
                    "type": "command", "nonce": f"{i:032x}", "ttl": 4,
                    "data": {"command": "list-nodes"}})
            # the marker: a's answer to F comes after all of the above
            assert (await f.command("a", "list-nodes"))["ok"] is True
            assert dropped(a, "source") >= src0 + 2
            assert dropped(a, "data") >= data0 + 1
            await sa.expect_quiet()  # the forged message was not delivered
            view = await aapi_node(a)
            names = set(view["nodes"])
            assert not any(n.startswith(("fake-", "ghost-", "nobody"))
                           for n in names), sorted(names)[:20]
            # b's true records still count, and the mesh still delivers
            await still_served(pool, a, c, "after", "after the forgeries")
        await f.close()
    run(body())
