"""
The network overview page (web/overview.html) in a real browser.

A three-node mesh (B and C dial A, the master; the mesh links B and C
itself), clients on B and C in two channels, one of them protected, and a
few messages so that rates are not all zero. Once the master's
GET /api/overview is complete (every node with stats, host stats and
history, every link measured, both channels with their holders and
subscribers), tests/browser/overview.mjs drives Debian's Chromium through
playwright-core against http://127.0.0.1:PORT_OF_A/overview.html: every
node, link and channel is drawn, and the numbers on the page (counts,
latencies within rounding, holders, subscribers, rates, load, memory)
match the /api/overview answer the page drew, checked on three redraws in
a row; then the error state on failing fetches and the recovery, a node
without stats and slow / unmeasured links (a doctored answer), and the
page on a non-master node (HTTP 404 "not the master"). The script prints
what the page showed (RESULT) and this test checks it against the mesh it
built. Screenshots land in $WSRELAY_BUILD_DIR/screenshots/ (overview.png,
overview-error.png, overview-doctored.png); the script's log beside the
node logs.

Skips only when node, /usr/bin/chromium or tests/browser's playwright-core
(`npm ci` there) is missing; `scripts/deps.sh test` installs all three.
"""

import asyncio
import json
import subprocess

from conftest import BUILD_DIR, LOG_DIR, Pool, http_get, run
from browserutil import BROWSER_DIR, browser_tools
from meshutil import eventually, start_mesh

SHOT_DIR = BUILD_DIR / "screenshots"

# browser start and a dozen redraws (2 s apart) on a loaded 2-core
# machine or a sanitizer build
SCRIPT_S = 180.0
OVERVIEW_S = 30.0

# channel -> {node: subscribers}; "staff" is protected
SUBSCRIBERS = {"room": {"B": 2, "C": 1}, "staff": {"B": 1, "C": 2}}
PASSWORDS = {"staff": "s3cret"}




def overview(node):
    status, hdrs, body = http_get(node, "/api/overview")
    assert status == 200, (status, body[:300])
    assert hdrs.get("content-type", "").startswith("application/json"), hdrs
    return json.loads(body)


def _complete(d):
    """(done, detail): every node reported, every link measured, both
    channels with the holders and subscribers this test made."""
    nodes = {n["name"]: n for n in d["nodes"]}
    links = {tuple(sorted((l["a"], l["b"]))): l["latency_ms"] for l in d["links"]}
    chans = {c["name"]: c for c in d["channels"]}
    detail = {
        "nodes": {k: {"stats": n["stats"] is not None, "host": n["host"] is not None,
                      "history": len(n["history"])} for k, n in nodes.items()},
        "links": {"-".join(k): v for k, v in links.items()},
        "channels": {k: {"holders": c["holders"], "subscribers": c["subscribers"]}
                     for k, c in chans.items()},
    }
    done = (
        set(nodes) == {"A", "B", "C"}
        and all(n["stats"] and n["host"] and len(n["history"]) >= 2 for n in nodes.values())
        and set(links) == {("A", "B"), ("A", "C"), ("B", "C")}
        and all(v is not None for v in links.values())
        and all(name in chans and sorted(chans[name]["holders"]) == sorted(subs)
                and chans[name]["subscribers"] == subs
                for name, subs in SUBSCRIBERS.items())
        and nodes["B"]["stats"]["network"]["packets"]["15s"] > 0
    )
    return done, detail


def test_overview_page_draws_the_mesh(node_factory):
    node = browser_tools()
    for old in SHOT_DIR.glob("overview*.png"):
        old.unlink()  # what the checks below find is from this run
    a, b, c = start_mesh(node_factory, "ABC", [("B", "A"), ("C", "A")],
                         per_node={"A": {"master": True}}, stats_interval_ms=200)
    by_name = {"A": a, "B": b, "C": c}
    log_path = LOG_DIR / f"{node_factory.test_id}.overview.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)

    async def drain(cl):
        # deliveries are read and dropped: a client that never reads
        # would be cut off as a slow consumer
        try:
            async for _ in cl.ws:
                pass
        except Exception:
            pass

    async def traffic(pub):
        # a steady 10 messages/s on "room", so that packets/s and kb/s
        # are not all zero; the sleep paces, it synchronises nothing
        i = 0
        while True:
            r = await pub.publish("room", f"hello {i} " + "x" * 200)
            assert r["data"]["ok"] is True, r
            i += 1
            await asyncio.sleep(0.1)

    async def body():
        async with Pool() as pool:
            tasks = []
            pub = await pool.connect(b)
            r = await pub.subscribe("room")
            assert r["data"]["ok"] is True, r
            for chan, per in SUBSCRIBERS.items():
                for name, k in per.items():
                    k -= (chan, name) == ("room", "B")  # the publisher is one
                    for _ in range(k):
                        cl = await pool.connect(by_name[name])
                        r = await cl.subscribe(chan, *((PASSWORDS[chan],) if chan in PASSWORDS else ()))
                        assert r["data"]["ok"] is True, r
                        tasks.append(asyncio.ensure_future(drain(cl)))
            tasks.append(asyncio.ensure_future(traffic(pub)))
            try:
                last = {}

                async def check():
                    last["d"] = await asyncio.to_thread(overview, a)
                    return _complete(last["d"])
                await eventually(check, OVERVIEW_S, what="a complete /api/overview on A")
                d = last["d"]
                assert d["master"] == "A"
                assert [n["name"] for n in d["nodes"] if n["master"]] == ["A"]

                # B is not the master: its /api/overview is a 404 the page shows
                status, _, raw = await asyncio.to_thread(http_get, b, "/api/overview")
                assert status == 404 and b"not the master" in raw, (status, raw)

                with open(log_path, "wb") as log:
                    proc = await asyncio.create_subprocess_exec(
                        node, "overview.mjs", f"http://127.0.0.1:{a.port}/",
                        f"http://127.0.0.1:{b.port}/", str(SHOT_DIR),
                        cwd=BROWSER_DIR, stdout=subprocess.PIPE, stderr=log)
                    try:
                        out, _ = await asyncio.wait_for(proc.communicate(), SCRIPT_S)
                    except asyncio.TimeoutError:
                        proc.kill()
                        await proc.wait()
                        out = b"<timeout>"
                after = await asyncio.to_thread(overview, a)
                for t in tasks:
                    assert not t.done() or t.cancelled() or t.exception() is None, t
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            return proc.returncode, out.decode("utf-8", "replace"), after

    rc, out, after = run(body(), SCRIPT_S + OVERVIEW_S + 60)
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
    assert rc == 0 and out.rstrip().endswith("PASS"), \
        f"overview.mjs exited {rc}; stdout {out!r}; log {log_path}, last lines:\n{tail}"
    result = json.loads(next(l for l in out.splitlines() if l.startswith("RESULT "))[7:])

    # what the page showed is the mesh this test built
    assert result["master"] == "A"
    assert sorted((n["name"], n["master"], n["state"]) for n in result["nodes"]) == \
        [("A", True, "live"), ("B", False, "live"), ("C", False, "live")]
    assert sorted(l["id"] for l in result["links"]) == ["A-B", "A-C", "B-C"]
    for l in result["links"]:
        assert l["latency"] is not None and l["latency"] >= 0, l
        assert l["text"].endswith(" ms"), l
    shown = {ch["name"]: ch for ch in result["channels"]}
    assert set(shown) == set(SUBSCRIBERS), shown
    for chan, subs in SUBSCRIBERS.items():
        assert shown[chan]["holders"] == sorted(subs), shown[chan]
        assert shown[chan]["subscribers"] == subs, shown[chan]
        assert shown[chan]["total"] == sum(subs.values()), shown[chan]
        assert shown[chan]["protected"] is (chan in PASSWORDS), shown[chan]
    cards = {cd["name"]: cd for cd in result["cards"]}
    assert cards["A"]["clients"] == 0
    assert cards["B"]["clients"] == 3 and cards["C"]["clients"] == 3, cards
    assert all(cd["points"] and cd["points"] >= 2 for cd in cards.values()), cards
    # and the master still agrees after the run
    assert {ch["name"]: ch["subscribers"] for ch in after["channels"]} == SUBSCRIBERS

    for name in ("overview", "overview-error", "overview-doctored"):
        shot = SHOT_DIR / f"{name}.png"
        assert shot.is_file() and shot.stat().st_size > 1000, shot
