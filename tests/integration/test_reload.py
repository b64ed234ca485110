"""
SIGHUP reloads the config file without dropping anyone (node/reload.c):
a renewed TLS certificate serves new connections while old ones stay open;
a broken file keeps the running config and says file:line; [[peers]]
entries added are dialled and removed ones closed; live keys take their
new value while restart-only ones (listen, name) are logged and kept.
"""

import asyncio
import re
import shutil
import signal
import socket
import ssl

from conftest import (Pool, delivery, fail, health, make_cert,
                      metrics, ok, render_config, run, wait_until_sync)
from meshutil import mesh_config, start_mesh, wait_peers_sync


def reload(node, nth):
    """SIGHUP, then waits for the nth reload outcome (ok or failed) in the
    log; returns the log text."""
    node.send_signal(signal.SIGHUP)
    rx = r"reload: config applied|reload failed"
    wait_until_sync(lambda: len(re.findall(rx, node.log_text())) >= nth,
                    what=f"reload #{nth} outcome")
    return node.log_text()


def reloads(node, result):
    return metrics(node).get("wsrelay_config_reloads_total", result=result)


def served_cert(node, ctx):
    """The DER certificate a new TLS connection to the node is shown."""
    with socket.create_connection(("127.0.0.1", node.port), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
            return t.getpeercert(binary_form=True)


def test_renewed_certificate_serves_new_connections_old_ones_stay(
        node_factory, tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old, new = make_cert(tmp_path / "old"), make_cert(tmp_path / "new")
    live_cert, live_key = tmp_path / "cert.pem", tmp_path / "key.pem"
    shutil.copy(old[0], live_cert)
    shutil.copy(old[1], live_key)
    ctx = ssl.create_default_context()
    for c in (old[0], new[0]):
        ctx.load_verify_locations(str(c))
    n = node_factory.start(ssl_context=ctx,
                           tls={"cert": str(live_cert), "key": str(live_key)})
    der = {k: ssl.PEM_cert_to_DER_cert(open(v[0]).read())
           for k, v in (("old", old), ("new", new))}
    assert served_cert(n, ctx) == der["old"]

    async def body():
        async with Pool() as pool:
            a = await pool.connect(n)
            assert await a.subscribe("renew") == ok()
            # the renewal: new files at the same paths, then the signal
            shutil.copy(new[0], live_cert)
            shutil.copy(new[1], live_key)
            await asyncio.to_thread(reload, n, 1)
            assert await asyncio.to_thread(served_cert, n, ctx) == der["new"]
            b = await pool.connect(n)
            assert await b.subscribe("renew") == ok()
            assert await b.publish("renew", "after", "r1") == ok("r1")
            # the connection made before the reload is still served
            assert await a.recv() == delivery("after", "renew", "r1")
            assert await a.publish("renew", "old conn", "r2") == ok("r2")
            assert await b.recv() == delivery("old conn", "renew", "r2")
    run(body())
    assert reloads(n, "ok") == 1 and reloads(n, "error") == 0


def test_mismatched_key_keeps_the_running_pair(node_factory, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = make_cert(tmp_path / "a"), make_cert(tmp_path / "b")
    ctx = ssl.create_default_context()
    ctx.load_verify_locations(str(a[0]))
    live_key = tmp_path / "key.pem"
    shutil.copy(a[1], live_key)
    n = node_factory.start(ssl_context=ctx,
                           tls={"cert": str(a[0]), "key": str(live_key)})
    shutil.copy(b[1], live_key)  # a key that is not the certificate's
    log = reload(n, 1)
    assert "does not match the certificate" in log, log[-2000:]
    assert served_cert(n, ctx) == ssl.PEM_cert_to_DER_cert(open(a[0]).read())
    assert reloads(n, "error") == 1


def test_broken_config_keeps_the_running_one_and_names_the_line(node_factory):
    n = node_factory.start(limits={"max_subscriptions": 2})
    good = n.config_path.read_text()

    async def body():
        async with Pool() as pool:
            c = await pool.connect(n)
            assert await c.subscribe("b1") == ok()
            n.config_path.write_text(
                '[node]\nname = "t1"\nlisten = "127.0.0.1:0"\n'
                '[limits]\nmax_subscriptions = "many"\n')
            log = await asyncio.to_thread(reload, n, 1)
            assert f"{n.config_path}:5:" in log, log[-2000:]
            assert "max_subscriptions" in log
            # the running config serves on: the old limit holds
            assert await c.subscribe("b2") == ok()
            assert await c.subscribe("b3") == fail("too many subscriptions")
            assert (await asyncio.to_thread(health, n))[0] == 200
            # fixed: the next reload applies
            n.config_path.write_text(good.replace("max_subscriptions = 2",
                                                  "max_subscriptions = 3"))
            await asyncio.to_thread(reload, n, 2)
            assert await c.subscribe("b3") == ok()
    run(body())
    assert reloads(n, "error") == 1 and reloads(n, "ok") == 1


def test_live_keys_apply_restart_keys_are_logged_and_kept(node_factory):
    n = node_factory.start(limits={"max_subscriptions": 3})
    text = render_config({
        "node": {"name": "renamed", "listen": "127.0.0.1:1"},
        "limits": {"max_subscriptions": 1},
        "log": {"level": "debug"},
    })

    async def body():
        async with Pool() as pool:
            c = await pool.connect(n)
            assert await c.subscribe("l1") == ok()
            n.config_path.write_text(text)
            log = await asyncio.to_thread(reload, n, 1)
            for key in ("node.name", "node.listen"):
                assert (f"reload: {key} changed: it needs a restart, keeping "
                        "the running value") in log, log[-2000:]
            assert await c.subscribe("l2") == fail("too many subscriptions")
            # still t1 on the same port
            status, h = await asyncio.to_thread(health, n)
            assert status == 200 and h["node"] == "t1", h
            d = await pool.connect(n)
            assert await d.subscribe("l1") == ok()
    run(body())


def rewrite(node, peers):
    node.config_path.write_text(mesh_config(node.name, peers=peers,
                                            node_extra={"max_peers": 1}))


def test_peers_added_are_dialled_and_removed_ones_closed(node_factory):
    # b and c are linked (c dials b); a starts alone. max_peers 1 on a and
    # b: once a-b is gone, neither asks the mesh for another link
    b, c = start_mesh(node_factory, ["b", "c"], edges=[("c", "b")],
                      per_node={"b": {"max_peers": 1}, "c": {"max_peers": 2}})
    a = start_mesh(node_factory, ["a"], max_peers=1)[0]
    rewrite(a, [("b", b.port), ("c", c.port)])
    reload(a, 1)
    wait_peers_sync([a, b, c], {"a": {"b", "c"}, "b": {"a", "c"},
                                "c": {"a", "b"}}, exact=True)
    assert "peer 'b': added to the config" in a.log_text()

    async def body():
        async with Pool() as pool:
            ca, cb = await pool.connect(a), await pool.connect(b)
            assert await cb.subscribe("p") == ok()
            # b leaves a's [[peers]]: the a-b link closes and stays closed;
            # a still reaches b through c
            rewrite(a, [("c", c.port)])
            await asyncio.to_thread(reload, a, 2)
            await asyncio.to_thread(
                wait_peers_sync, [a, b, c],
                {"a": {"c"}, "b": {"c"}, "c": {"a", "b"}}, True)
            assert await ca.subscribe("p") == ok()
            assert await ca.publish("p", "via c", "v") == ok("v")
            assert await cb.recv() == delivery("via c", "p", "v")
    run(body())
    assert "peer 'b': removed from the config" in a.log_text()
    assert reloads(a, "ok") == 2
