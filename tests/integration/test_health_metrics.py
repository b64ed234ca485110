"""
PROTOCOL.md 6.3 (GET /health) and 6.4 (GET /metrics) on a single node.
"""

import asyncio
import json
import re
import subprocess

from conftest import (BIN, Pool, ametrics, fail, health, http_get,
                      metrics, ok, run, wait_metric, wait_until)

HEALTH_KEYS = {"healthy", "reason", "reasons", "node"}


def assert_health(status, body, healthy, reason, node="t1"):
    assert set(body) == HEALTH_KEYS, body
    assert body["healthy"] == healthy, body
    assert body["reason"] == reason, body
    assert body["node"] == node, body
    assert isinstance(body["reasons"], list), body
    if reason == "healthy":
        # "every reason that holds": none of the problem rows holds
        assert body["reasons"] in ([], ["healthy"]), body
    else:
        assert body["reasons"][0] == reason, body
    assert status == (503 if healthy == "bad" else 200), (status, body)


async def ahealth(node):
    return await asyncio.to_thread(health, node)


async def wait_health(node, reason, timeout=10):
    async def check():
        s, b = await ahealth(node)
        return b.get("reason") == reason and (s, b)
    return await wait_until(check, timeout, what=f"/health reason {reason!r}")


# ---------------------------------------------------------------------------
# /health
# ---------------------------------------------------------------------------

def test_health_good_with_no_clients(node):
    status, hdrs, body = http_get(node, "/health")
    assert hdrs.get("content-type", "").startswith("application/json"), hdrs
    assert_health(status, json.loads(body), "good", "healthy")


def test_health_reports_configured_name(node_factory):
    n = node_factory.start(name="health-node-7")
    status, body = health(n)
    assert_health(status, body, "good", "healthy", node="health-node-7")


def test_health_clients_no_channels(node):
    async def body():
        async with Pool() as pool:
            clients = await pool.connect_many(node, 3)
            for c in clients:
                assert await c.list() == ok(channels=[])
            # 3 clients is not "more than 3"
            assert_health(*await ahealth(node), "good", "healthy")
            fourth = await pool.connect(node)
            assert await fourth.list() == ok(channels=[])
            s, b = await wait_health(node, "clients no channels")
            assert_health(s, b, "degraded", "clients no channels")
            assert b["reasons"] == ["clients no channels"]
            # one subscription makes an active channel: good again
            assert await fourth.subscribe("any") == ok()
            assert_health(*await ahealth(node), "good", "healthy")
            assert await fourth.unsubscribe("any") == ok()
            assert_health(*await ahealth(node), "degraded", "clients no channels")
            # back to 3 clients
            await fourth.close()
            s, b = await wait_health(node, "healthy")
            assert_health(s, b, "good", "healthy")
    run(body())


def test_health_ignores_non_client_connections(node):
    # /health and /metrics requests are not clients
    for _ in range(5):
        assert_health(*health(node), "good", "healthy")
        assert metrics(node).get("wsrelay_clients") == 0


# ---------------------------------------------------------------------------
# /metrics
# ---------------------------------------------------------------------------

GAUGES = ["wsrelay_build_info", "wsrelay_clients", "wsrelay_channels_active",
          "wsrelay_channels_reserved", "wsrelay_subscriptions", "wsrelay_peers_up"]
COUNTERS = ["wsrelay_client_messages_in_total", "wsrelay_client_messages_out_total",
            "wsrelay_client_bytes_in_total", "wsrelay_client_bytes_out_total",
            "wsrelay_slow_consumer_disconnects_total",
            "wsrelay_password_verifications_total"]
PW_RESULTS = ["ok", "failed", "cached", "rate_limited"]


def version_of_binary():
    out = subprocess.run([BIN, "--version"], capture_output=True, text=True, timeout=10)
    m = re.search(r"\d+\.\d+\.\d+\S*", out.stdout)
    assert m, out
    return m.group(0)


def test_metrics_exposition_format(node):
    status, hdrs, body = http_get(node, "/metrics")
    assert status == 200
    assert hdrs.get("content-type", "").startswith("text/plain"), hdrs
    m = metrics(node)
    for name in GAUGES:
        assert name in m.help, f"no # HELP for {name}"
        assert m.types.get(name) == "gauge", f"# TYPE {name} is {m.types.get(name)!r}"
    for name in COUNTERS:
        assert name.endswith("_total")
        assert name in m.help, f"no # HELP for {name}"
        assert m.types.get(name) == "counter", f"# TYPE {name} is {m.types.get(name)!r}"
    # every sample of ours belongs to a family with HELP and TYPE, and every
    # counter is named *_total
    for name in m.names():
        if name.startswith("wsrelay_"):
            assert name in m.types, f"sample {name} has no # TYPE line"
            assert name in m.help, f"sample {name} has no # HELP line"
            if m.types[name] == "counter":
                assert name.endswith("_total"), name


def test_metrics_initial_values(node):
    m = metrics(node)
    build = [(labels, v) for (n, labels), v in m.samples.items() if n == "wsrelay_build_info"]
    assert len(build) == 1, build
    labels, v = build[0]
    assert v == 1
    assert dict(labels).get("version") == version_of_binary(), labels
    for name in ["wsrelay_clients", "wsrelay_channels_active", "wsrelay_channels_reserved",
                 "wsrelay_subscriptions", "wsrelay_peers_up",
                 "wsrelay_client_messages_in_total", "wsrelay_client_messages_out_total",
                 "wsrelay_client_bytes_in_total", "wsrelay_client_bytes_out_total",
                 "wsrelay_slow_consumer_disconnects_total"]:
        assert m.get(name) == 0, f"{name} = {m.get(name)}"
    for r in PW_RESULTS:
        assert m.get("wsrelay_password_verifications_total", result=r) == 0, \
            f'wsrelay_password_verifications_total{{result="{r}"}} missing or non-zero'


def test_metrics_follow_traffic(node):
    MSG = "hello-metrics"

    async def body():
        async with Pool() as pool:
            a, b = await pool.connect_many(node, 2)
            assert await a.subscribe("mm") == ok()
            assert await b.subscribe("mm") == ok()
            for i in range(3):
                assert await a.publish("mm", MSG, str(i)) == ok(str(i))
            for i in range(3):
                await b.recv()
            await wait_metric(node, "wsrelay_client_messages_out_total", lambda v: v >= 3)
            m = await ametrics(node)
            assert m.get("wsrelay_clients") == 2
            assert m.get("wsrelay_channels_active") == 1
            assert m.get("wsrelay_channels_reserved") == 0
            assert m.get("wsrelay_subscriptions") == 2
            assert m.get("wsrelay_peers_up") == 0
            assert m.get("wsrelay_client_messages_in_total") == 3
            assert m.get("wsrelay_client_messages_out_total") == 3
            assert m.get("wsrelay_client_bytes_in_total") >= 3 * len(MSG)
            assert m.get("wsrelay_client_bytes_out_total") >= 3 * len(MSG)

            # a third subscriber doubles the fan-out; a second channel
            c = await pool.connect(node)
            assert await c.subscribe("mm") == ok()
            assert await c.subscribe("other") == ok()
            assert await a.publish("mm", MSG, "x") == ok("x")
            await b.recv()
            await c.recv()
            await wait_metric(node, "wsrelay_client_messages_out_total", lambda v: v >= 5)
            m = await ametrics(node)
            assert m.get("wsrelay_clients") == 3
            assert m.get("wsrelay_channels_active") == 2
            assert m.get("wsrelay_subscriptions") == 4
            assert m.get("wsrelay_client_messages_in_total") == 4
            assert m.get("wsrelay_client_messages_out_total") == 5

            # leaving
            assert await c.unsubscribe("other") == ok()
            assert await c.unsubscribe("mm") == ok()
            m = await ametrics(node)
            assert m.get("wsrelay_channels_active") == 1
            assert m.get("wsrelay_subscriptions") == 2
            await a.close()
            await b.close()
            await wait_metric(node, "wsrelay_clients", lambda v: v == 1)
            await wait_metric(node, "wsrelay_channels_active", lambda v: v == 0)
            m = await ametrics(node)
            assert m.get("wsrelay_subscriptions") == 0
            # counters never go down
            assert m.get("wsrelay_client_messages_in_total") == 4
            assert m.get("wsrelay_client_messages_out_total") == 5
    run(body())


def test_password_verification_metrics(node):
    def pw(m, r):
        return m.get("wsrelay_password_verifications_total", result=r)

    async def body():
        async with Pool() as pool:
            owner, good, bad = await pool.connect_many(node, 3)
            assert await owner.subscribe("pv", password="right") == ok()
            m0 = await ametrics(node)
            assert await good.subscribe("pv", password="right") == ok()
            m1 = await ametrics(node)
            assert (pw(m1, "ok") + pw(m1, "cached")) - (pw(m0, "ok") + pw(m0, "cached")) == 1
            assert pw(m1, "failed") == pw(m0, "failed")
            for i in range(5):
                assert await bad.subscribe("pv", password=f"nope{i}") == fail("invalid password")
            m2 = await ametrics(node)
            assert pw(m2, "failed") - pw(m1, "failed") == 5
            assert pw(m2, "rate_limited") == pw(m0, "rate_limited")
            for _ in range(2):
                assert await bad.subscribe("pv", password="right") == fail("rate limited")
            m3 = await ametrics(node)
            assert pw(m3, "rate_limited") - pw(m2, "rate_limited") == 2
            assert pw(m3, "failed") == pw(m2, "failed")
            assert pw(m3, "ok") + pw(m3, "cached") == pw(m2, "ok") + pw(m2, "cached")
    run(body())
