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
