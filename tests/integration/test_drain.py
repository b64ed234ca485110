"""
Lame-duck drain (SIGUSR2): the node refuses new clients (503 on /connect,
/health bad with reason "draining"), closes the clients it has with 1012
("service restart") spread evenly over [node] drain_ms, then exits 0.
SIGTERM during a drain still stops at once, cleanly.
"""

import asyncio
import signal
import time

from conftest import (EXIT_DEADLINE, Pool, health, ok, raw_handshake_status,
                      run)
from meshutil import aapi_node, chan_of, start_mesh, wait_converged

N = 40
DRAIN_MS = 2000


def test_sigusr2_drains_clients_with_1012_spread_over_drain_ms(node_factory):
    node = node_factory.start(node={"drain_ms": DRAIN_MS})

    async def body():
        async with Pool() as pool:
            clients = await pool.connect_many(node, N)
            for i, c in enumerate(clients):
                assert await c.subscribe(f"d{i % 5}") == ok()

            async def watch(c):
                code, reason = await c.wait_closed(DRAIN_MS / 1000 + 5)
                return time.monotonic(), code, reason

            watchers = [asyncio.create_task(watch(c)) for c in clients]
            t0 = time.monotonic()
            node.send_signal(signal.SIGUSR2)

            # at once: new clients refused, /health bad for the balancers
            await asyncio.to_thread(node.wait_log, r"draining 40 client")
            status = await asyncio.to_thread(raw_handshake_status, node,
                                             "/connect")
            assert status == 503
            hs, hb = await asyncio.to_thread(health, node)
            assert hs == 503, hb
            assert hb["healthy"] == "bad" and hb["reason"] == "draining", hb

            closes = await asyncio.gather(*watchers)
            rc = await asyncio.to_thread(node.wait_exit, EXIT_DEADLINE)
            return t0, closes, rc

    t0, closes, rc = run(body())
    assert all(code == 1012 for _, code, _ in closes), closes
    assert all(reason == "service restart" for _, _, reason in closes)
    at = sorted((t - t0) * 1000 for t, _, _ in closes)
    print(f"drain {DRAIN_MS} ms, {N} clients: first {at[0]:.0f} ms, "
          f"last {at[-1]:.0f} ms")
    assert at[0] <= 0.2 * DRAIN_MS, at
    assert 0.8 * DRAIN_MS <= at[-1] <= 1.2 * DRAIN_MS, at
    # roughly even: no tenth of drain_ms holds more than ~20% of them
    tenths = [0] * 10
    for ms in at:
        tenths[min(9, int(ms * 10 // DRAIN_MS))] += 1
    print(f"per tenth: {tenths}")
    assert max(tenths) <= 0.2 * N, (tenths, at)
    assert rc == 0, f"exit status {rc} after the drain"


def test_sigterm_during_drain_stops_cleanly(node_factory):
    node = node_factory.start(node={"drain_ms": 10000})

    async def body():
        async with Pool() as pool:
            clients = await pool.connect_many(node, 10)
            for c in clients:
                assert await c.subscribe("t") == ok()
            node.send_signal(signal.SIGUSR2)
            # the first closes of the drain are 1012 (10 over 10 s: ~1 s)
            await asyncio.to_thread(node.wait_log, r"draining 10 client")
            t = time.monotonic()
            node.send_signal(signal.SIGTERM)
            codes = await asyncio.gather(
                *(c.wait_closed(EXIT_DEADLINE + 5) for c in clients))
            rc = await asyncio.to_thread(node.wait_exit, EXIT_DEADLINE)
            return codes, rc, time.monotonic() - t

    codes, rc, took = run(body())
    # the rest go with the stop's 1001, well before drain_ms
    assert all(code in (1001, 1012) for code, _ in codes), codes
    assert sum(code == 1001 for code, _ in codes) >= 1, codes
    assert took < 5, took
    assert rc == 0, f"exit status {rc} after SIGTERM during a drain"


def test_drain_keeps_channels_reserved_while_they_have_subscribers(node_factory):
    # B dials A; A drains 3 subscribers of "keep" over 3 s
    a, b = start_mesh(node_factory, "AB", [("B", "A")],
                      per_node={"A": {"drain_ms": 3000}})

    async def body():
        async with Pool() as pool:
            on_a = await pool.connect_many(a, 3)
            for c in on_a:
                assert await c.subscribe("keep") == ok()
            on_b = await pool.connect(b)
            assert await on_b.subscribe("keep") == ok()
            await wait_converged([a, b], "keep", holders=["A", "B"])

            a.send_signal(signal.SIGUSR2)
            first = await asyncio.wait_for(
                asyncio.wait([asyncio.create_task(c.wait_closed(10))
                              for c in on_a],
                             return_when=asyncio.FIRST_COMPLETED), 10)
            code, _ = next(iter(first[0])).result()
            assert code == 1012
            # two subscribers left on A: B still sees A holding the channel
            entry = chan_of(await aapi_node(b), "keep")
            assert entry is not None and "A" in entry["holders"], entry
            rc = await asyncio.to_thread(a.wait_exit, EXIT_DEADLINE + 3)
            assert rc == 0, f"exit status {rc} after the drain"
            # A is gone: the channel is B's alone, B's client still in it
            await wait_converged([b], "keep", holders=["B"])
            assert "keep" in await on_b.channels()
    run(body())
