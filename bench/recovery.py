#!/usr/bin/python3
"""The recovery benchmark (PROTOCOL.md 7.3): SUBS subscribers of one
channel with `recover` drop their connections, MISSED messages are sent
meanwhile, then every one reconnects at once with `since`. Reported: the
time from the first reconnect until the last subscriber has received all
it missed (exact offsets checked: no gap, no duplicate), the node's CPU
time over that span, and its RSS (VmRSS) before the reconnects and after.

  recovery.py WSRELAY [--subs 1000] [--missed 100] [--size 64]

The clients are Python (asyncio, python3-websockets) in this one process:
the wall time includes their cost; the node's CPU time does not.
"""
import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

import websockets

READY = re.compile(r"listening on http://127\.0\.0\.1:(\d+)")


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_node(binary, tmp, size):
    cfg = os.path.join(tmp, "node.toml")
    with open(cfg, "w") as f:
        f.write('[node]\nname = "recovery"\nlisten = "127.0.0.1:0"\n'
                "[limits]\nmax_clients_per_ip = 200000\n"
                "max_pending_per_ip = 200000\n"
                "messages_per_second = 100000000\nmessages_burst = 100000000\n"
                f"[history]\nsize = {size}\n"
                '[log]\nlevel = "warn"\n')
    proc = subprocess.Popen([binary, "-c", cfg], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        m = READY.search(line)
        if m:
            return proc, int(m.group(1))
        if not line and proc.poll() is not None:
            break
    proc.kill()
    sys.exit("recovery: the node did not start")


async def request(ws, obj):
    await ws.send(json.dumps(obj))
    while True:
        f = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if f.get("type") == "response" and f.get("nonce") == obj["nonce"]:
            return f["data"]


async def connect(url):
    return await websockets.connect(url, ping_interval=None, max_size=None,
                                    max_queue=None, open_timeout=60)


async def bench(args, port, pid):
    url = f"ws://127.0.0.1:{port}/connect"
    pub = await connect(url)
    assert (await request(pub, {"command": "subscribe", "nonce": "p",
                                "data": {"topic": "rec"}}))["ok"]
    subs = []
    for i in range(0, args.subs, 100):
        subs += await asyncio.gather(*[connect(url) for _ in
                                       range(min(100, args.subs - i))])
    answers = await asyncio.gather(*[
        request(ws, {"command": "subscribe", "nonce": "s",
                     "data": {"topic": "rec", "recover": True}})
        for ws in subs])
    epoch = answers[0]["epoch"]
    since = answers[0]["offset"]
    assert all(a["epoch"] == epoch and a["offset"] == since for a in answers)
    await asyncio.gather(*[ws.close() for ws in subs])

    body = "x" * args.size
    for i in range(args.missed):
        await pub.send(json.dumps({"command": "send", "nonce": str(i),
                                   "data": {"channel": "rec", "message": body}}))
    for i in range(args.missed):
        f = json.loads(await asyncio.wait_for(pub.recv(), 30))
        assert f["data"]["ok"], f
    last = since + args.missed

    rss_before = vm_rss_kib(pid)
    cpu_before = cpu_seconds(pid)
    t0 = time.monotonic()

    async def recover():
        ws = await connect(url)
        r = await request(ws, {"command": "subscribe", "nonce": "r",
                               "data": {"topic": "rec",
                                        "since": {"epoch": epoch,
                                                  "offset": since}}})
        assert r["recovered"] is True and r["offset"] == last, r
        want = since + 1
        while want <= last:
            f = json.loads(await asyncio.wait_for(ws.recv(), 60))
            assert f["data"]["offset"] == want, (f, want)
            want += 1
        return ws

    done = await asyncio.gather(*[recover() for _ in range(args.subs)])
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(pid) - cpu_before
    rss_after = vm_rss_kib(pid)
    print(f"recovery: {args.subs} subscribers x {args.missed} missed "
          f"{args.size}-byte messages: all caught up in {elapsed * 1000:.0f} ms "
          f"(node CPU {cpu * 1000:.0f} ms); node RSS {rss_before / 1024:.1f} MiB "
          f"before, {rss_after / 1024:.1f} MiB after; "
          f"{args.subs * args.missed} replayed frames, no gap, no duplicate")
    await asyncio.gather(*[ws.close() for ws in done])
    await pub.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("wsrelay")
    ap.add_argument("--subs", type=int, default=1000)
    ap.add_argument("--missed", type=int, default=100)
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory(prefix="wsrelay-recovery.") as tmp:
        proc, port = start_node(args.wsrelay, tmp, max(args.missed, 100))
        try:
            asyncio.run(asyncio.wait_for(bench(args, port, proc.pid), 300))
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
