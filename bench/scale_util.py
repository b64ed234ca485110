#!/usr/bin/env python3
"""Helpers for bench/scale.sh: reads every node's GET /api/node and
GET /metrics on 127.0.0.1 (and /proc/PID/stat), and drives the channel
traffic (websockets, asyncio). Every wait has a deadline and says why it
gave up. A NODE argument is NAME:PORT or NAME:PORT:PID.

Lines starting with "SET KEY VALUE" are values for scale.sh; lines
starting with "SUMMARY " go to its summary block; the rest is the report.

  scale_util.py parents N SEED               node i's [[peers]] parent
  scale_util.py formed SECS SETTLE T0 TLAST NODE...
  scale_util.py idle SECS HZ ANNOUNCE_MS NODE:PID...
  scale_util.py plan SEED NSTOP NODE...      hub, publisher, holders, ideal
  scale_util.py snap FILE [SETTLE] NODE...   INM counters, summed
  scale_util.py frames BEFORE AFTER MESSAGES IDEAL IDLE_PPS SPREAD
  scale_util.py converge SECS T0 CHANNEL HOLDER,... NODE...
  scale_util.py stopped STOPPED,... NODE...  running nodes' views of them
  scale_util.py clients SIZE PUB_PORT CHANNEL NAME:PORT...  (stdin: probe
                SECS | send TAG COUNT RATE DRAIN | quit)
"""
import asyncio
import itertools
import json
import os
import random
import sys
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mesh_util import get  # noqa: E402

POOL = ThreadPoolExecutor(max_workers=16)
BY_TYPE = "wsrelay_inm_packets_out_by_type_total"


class Node:
    def __init__(self, spec):
        parts = spec.split(":")
        self.name, self.port = parts[0], int(parts[1])
        self.pid = int(parts[2]) if len(parts) > 2 else None


def nodes_of(args):
    return [Node(a) for a in args]


def out(*a):
    print(*a, flush=True)


# ---- reading the nodes ----

def view_of(n):
    try:
        return json.loads(get(n.port, "/api/node"))
    except Exception:       # down, stopped, or not answering in 2 s
        return None


def views(nodes):
    """{name: GET /api/node as a dict, or None}, fetched concurrently."""
    return dict(zip((n.name for n in nodes), POOL.map(view_of, nodes)))


def scrape(port):
    """Every sample of GET /metrics: {'name{labels}': value}."""
    vals = {}
    for line in get(port, "/metrics").splitlines():
        if line and not line.startswith("#"):
            key, _, val = line.rpartition(" ")
            try:
                vals[key] = float(val)
            except ValueError:
                pass
    return vals


def cpu_ticks(pid):
    """utime + stime of @pid in clock ticks (/proc/PID/stat 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def peer_names(v):
    return [p.get("name") if isinstance(p, dict) else str(p)
            for p in (v or {}).get("peers", [])]


def graph(vs, names):
    """Links both ends report as up, among @names: {name: set(names)}."""
    adj = {a: set() for a in names}
    for a in names:
        for b in peer_names(vs.get(a)):
            if b in adj and a in peer_names(vs.get(b)):
                adj[a].add(b)
    return adj


def bfs(adj, src):
    dist, q = {src: 0}, deque([src])
    while q:
        a = q.popleft()
        for b in sorted(adj[a]):
            if b not in dist:
                dist[b] = dist[a] + 1
                q.append(b)
    return dist


def components(adj):
    left, comps = set(adj), []
    while left:
        c = set(bfs(adj, min(left)))
        comps.append(c)
        left -= c
    return sorted(comps, key=len, reverse=True)


def chan_view(v):
    """A node's channels without its local-only fields, comparable."""
    res = []
    for ch in (v or {}).get("channels", []):
        if isinstance(ch, dict):
            res.append((ch.get("name"), ch.get("password"), ch.get("created"),
                        tuple(sorted(ch.get("holders") or []))))
    return tuple(sorted(res, key=repr))


def eg(items, k=3):
    items = list(items)
    s = ", ".join(items[:k])
    return s + (f" ... ({len(items)})" if len(items) > k else "")


def problems(vs, names, channel=None, holders=None, who=None):
    """Why the views of @names do not agree yet ([] when they do), adding
    the nodes at fault to the set @who when given: each
    node answers; knows exactly @names (itself included); links only to
    @names; the links form one connected mesh; every node has the same
    channels (name, password hash, created, holders); and, given
    @channel, its holders are exactly @holders."""
    probs = []
    who = set() if who is None else who
    alive = set(names)
    mute = [a for a in names if vs.get(a) is None]
    who.update(mute)
    if mute:
        probs.append(f"no GET /api/node from {eg(mute)}")
    missing, extra, stale = [], [], []
    for a in names:
        v = vs.get(a)
        if v is None:
            continue
        known = set(v.get("nodes", [])) | {a}
        if known != alive or set(peer_names(v)) - alive:
            who.add(a)
        if alive - known:
            missing.append(f"{a} misses {eg(sorted(alive - known), 2)}")
        if known - alive:
            extra.append(f"{a} lists {eg(sorted(known - alive), 2)}")
        gone = [b for b in peer_names(v) if b not in alive]
        if gone:
            stale.append(f"{a}-{eg(gone, 2)}")
    if missing:
        probs.append(f"{len(missing)} nodes do not know every node "
                     f"({eg(missing)})")
    if extra:
        probs.append(f"{len(extra)} nodes list gone nodes ({eg(extra)})")
    if stale:
        probs.append(f"{len(stale)} nodes still linked to gone nodes "
                     f"({eg(stale)})")
    comps = components(graph(vs, names))
    for c in comps[1:]:
        who.update(c)
    if len(comps) > 1:
        probs.append(f"the links form {len(comps)} meshes (sizes "
                     f"{', '.join(str(len(c)) for c in comps[:6])}; smallest "
                     f"{eg(sorted(comps[-1]), 4)})")
    groups = Counter(chan_view(vs.get(a)) for a in names
                     if vs.get(a) is not None)
    if len(groups) > 1:
        most = groups.most_common(1)[0][0]
        who.update(a for a in names if vs.get(a) is not None and
                   chan_view(vs[a]) != most)
        probs.append(f"channel views differ: {len(groups)} versions held by "
                     f"{', '.join(str(c) for _, c in groups.most_common())} "
                     "nodes")
    if channel is not None:
        want = tuple(sorted(holders))
        wrong = []
        for a in names:
            if vs.get(a) is None:
                continue
            got = [c[3] for c in chan_view(vs[a]) if c[0] == channel]
            if got != [want]:
                who.add(a)
                wrong.append(f"{a} has {list(got[0]) if got else 'none'}")
        if wrong:
            probs.append(f"{len(wrong)} nodes do not list exactly "
                         f"{' '.join(want)} as the holders of {channel} "
                         f"({eg(wrong, 2)})")
    return probs


def wait_agree(nodes, secs, t0, channel=None, holders=None, interval=0.25):
    """Polls until problems() is empty on two reads in a row; returns
    (seconds since @t0 of the first of the two, views, None), or (None,
    last problems, the nodes at fault) after @secs."""
    names = [n.name for n in nodes]
    deadline = time.monotonic() + secs
    first = None
    while True:
        at = time.time() - t0
        vs = views(nodes)
        who = set()
        probs = problems(vs, names, channel, holders, who)
        if not probs:
            if first is not None:
                return first, vs, None
            first = at
        else:
            first = None
        if time.monotonic() >= deadline:
            return None, probs, who
        time.sleep(interval)


def link_stats(adj):
    deg = sorted(len(b) for b in adj.values())
    hist = Counter(deg)
    return (deg[0], sum(deg) / len(deg), deg[-1], sum(deg) // 2,
            " ".join(f"{d}:{hist[d]}" for d in sorted(hist)))


# ---- commands ----

def cmd_parents(args):
    n, rng = int(args[0]), random.Random(int(args[1]))
    out(" ".join(str(rng.randrange(i)) for i in range(1, n)))
    return 0


def cmd_formed(args):
    secs, settle, t0 = float(args[0]), float(args[1]), float(args[2])
    late = float(args[3]) - t0      # the last node started this late
    nodes = nodes_of(args[4:])
    names = [n.name for n in nodes]
    start = time.monotonic()
    at, vs, who = wait_agree(nodes, secs, t0)
    if at is None:
        out(f"SET culprits {' '.join(sorted(who, key=names.index))}")
        out(f"scale: the mesh did not form within {secs:g} s: "
            f"{'; '.join(vs)}")
        out(f"SUMMARY formation: did not form within {secs:g} s "
            f"({'; '.join(vs)})")
        return 1
    out(f"scale: formed {at:.2f} s after the first node started "
        f"({at - late:.2f} s after the last): every node knows all "
        f"{len(names)}, one connected mesh")
    # links keep coming (remote connection, 5.3) until each node has
    # max_peers: wait until the link set has not changed for @settle s
    edges = lambda a: frozenset(frozenset((x, y)) for x in a for y in a[x])
    adj = graph(vs, names)
    last, changed = edges(adj), at
    settled = None
    while time.monotonic() - start < secs:
        time.sleep(0.5)
        now = time.time() - t0
        vs = views(nodes)
        adj = graph(vs, names)
        e = edges(adj)
        if e != last or problems(vs, names):
            last, changed = e, now
        elif now - changed >= settle:
            settled = changed
            break
    lo, avg, hi, nlinks, hist = link_stats(adj)
    if settled is None:
        out(f"scale: links still changing {secs:g} s after the start "
            f"(last change at {changed:.2f} s)")
        ssum = f"links still changing after {secs:g} s"
    else:
        out(f"scale: links settled: unchanged from {settled:.2f} s for "
            f"{settle:g} s")
        ssum = f"links settled at {settled:.2f} s (unchanged {settle:g} s)"
    out(f"scale: {nlinks} links; links per node min {lo} avg {avg:.2f} max "
        f"{hi} (links:nodes {hist})")
    out(f"SUMMARY formation: every node knows all {len(names)} and one mesh "
        f"{at:.2f} s after the first node started ({at - late:.2f} s after "
        f"the last); {ssum}")
    out(f"SUMMARY links per node: min {lo} avg {avg:.2f} max {hi} "
        f"({nlinks} links; links:nodes {hist})")
    out(f"SET links_avg {avg:.3f}")
    return 0


def snapshot(nodes):
    """Per node: (time, INM counters, CPU ticks)."""
    def one(n):
        m = scrape(n.port)
        ticks = cpu_ticks(n.pid)
        return time.monotonic(), m, ticks
    return list(POOL.map(one, nodes))


def cmd_idle(args):
    secs, hz, announce = float(args[0]), int(args[1]), float(args[2]) / 1000
    nodes = nodes_of(args[3:])
    names = [n.name for n in nodes]
    adj0 = graph(views(nodes), names)
    s0 = snapshot(nodes)
    time.sleep(secs / 2)
    s1 = snapshot(nodes)
    time.sleep(secs / 2)
    s2 = snapshot(nodes)
    adj1 = graph(views(nodes), names)
    po, bo = "wsrelay_inm_packets_out_total", "wsrelay_inm_bytes_out_total"

    def rate(a, b, key):
        return (b[1].get(key, 0) - a[1].get(key, 0)) / (b[0] - a[0])
    out(f"scale: idle for {secs:g} s (announce period {announce:g} s); "
        "per node: links, INM packets/s sent, goal <= 2 x links per "
        "period, INM bytes/s sent, CPU share of one core")
    rows, ok, worst, cpu, pps, bps = [], 0, None, 0.0, 0.0, 0.0
    for i, n in enumerate(nodes):
        links = len(adj1[n.name])
        p = rate(s0[i], s2[i], po)
        b = rate(s0[i], s2[i], bo)
        c = (s2[i][2] - s0[i][2]) / hz / (s2[i][0] - s0[i][0])
        goal = 2 * links / announce
        ok += p <= goal
        ratio = p / goal if goal else float("inf")
        if worst is None or ratio > worst[0]:
            worst = (ratio, n.name, p, links)
        cpu, pps, bps = cpu + c, pps + p, bps + b
        rows.append(f"  {n.name:>6} {links:3d} links {p:9.1f} pkt/s "
                    f"(goal <= {goal:5.1f}) {b:11.0f} B/s {100 * c:6.2f}%")
    out("\n".join(rows))
    b1 = sum(rate(s0[i], s1[i], bo) for i in range(len(nodes)))
    b2 = sum(rate(s1[i], s2[i], bo) for i in range(len(nodes)))
    p1 = sum(rate(s0[i], s1[i], po) for i in range(len(nodes)))
    p2 = sum(rate(s1[i], s2[i], po) for i in range(len(nodes)))
    moved = adj0 != adj1
    links = sum(len(v) for v in adj1.values()) / len(nodes)
    nl = sum(len(v) for v in adj1.values()) // 2
    per = pps / len(nodes)
    out(f"scale: whole mesh: {pps:.0f} INM packets/s (first half {p1:.0f}, "
        f"second half {p2:.0f}), {bps:.0f} B/s, CPU {cpu:.3f} of a core" + ("; the links changed during the idle "
                                   "window" if moved else ""))
    out(f"SUMMARY idle ({secs:g} s): INM packets/s per node avg {per:.1f} "
        f"(links avg {links:.2f}); goal per node <= 2 x links / "
        f"{announce:g} s: {ok}/{len(nodes)} nodes meet it, worst "
        f"{worst[1]} {worst[2]:.1f} pkt/s with {worst[3]} links "
        f"({worst[0]:.1f} x its goal)")
    out(f"SUMMARY idle CPU, whole mesh: {cpu:.3f} of a core (goal <= 0.05) "
        f"{'MET' if cpu <= 0.05 else 'NOT MET'}; per node avg "
        f"{100 * cpu / len(nodes):.2f}%")
    out(f"SUMMARY idle INM bytes/s, whole mesh: {bps:.0f} ({bps / len(nodes):.0f}"
        f" per node, {bps / max(nl, 1):.0f} per link, {nl} links); first "
        f"half {b1:.0f}, second half {b2:.0f}")
    if ok < len(nodes):
        out(f"SUMMARY idle packets goal NOT MET on {len(nodes) - ok} nodes")
    else:
        out("SUMMARY idle packets goal MET on every node")
    if moved:
        out("SUMMARY   (the links changed during the idle window)")
    out(f"SET idle_pps {pps:.3f}")
    out(f"SET idle_pps_spread {abs(p1 - p2):.3f}")
    return 0


def shortest_paths(adj, dist, src, dst):
    """Every shortest path from @src to @dst, as a frozenset of edges."""
    if dst == src:
        return [frozenset()]
    res = []
    for prev in sorted(adj[dst]):
        if dist.get(prev) == dist[dst] - 1:
            for p in shortest_paths(adj, dist, src, prev):
                res.append(p | {frozenset((prev, dst))})
    return res


def ideal_tree(adj, src, holders):
    """The fewest links in a tree made of shortest paths from @src to
    every holder: the frames one message needs."""
    dist = bfs(adj, src)
    paths = [shortest_paths(adj, dist, src, h) for h in holders]
    combos = 1
    for p in paths:
        combos *= len(p)
    if combos <= 200000:
        return min(len(frozenset().union(*c))
                   for c in itertools.product(*paths))
    tree = frozenset()   # greedy: each next holder's path sharing the most
    for p in paths:
        tree |= min(p, key=lambda e: len(e - tree))
    return len(tree)


def cmd_plan(args):
    rng, nstop = random.Random(int(args[0])), int(args[1])
    nodes = nodes_of(args[2:])
    names = [n.name for n in nodes]
    adj = graph(views(nodes), names)
    hub = max(names, key=lambda a: (len(adj[a]), -names.index(a)))
    out(f"scale: hub (most links): {hub} with {len(adj[hub])} links "
        f"({' '.join(sorted(adj[hub]))})")
    rest = [a for a in names if a != hub]
    rng.shuffle(rest)
    best = None
    for pub in rest:
        dist = bfs(adj, pub)
        far = [a for a in rest if dist.get(a) in (2, 3)]
        if len(far) >= 3:
            best = (pub, rng.sample(sorted(far), 3), dist)
            break
        if best is None or len(far) > len(best[3]):
            others = sorted((a for a in rest if a != pub and a in dist),
                            key=lambda a: -dist[a])
            best = (pub, (far + [a for a in others if a not in far])[:3],
                    dist, far)
    pub, holders, dist = best[:3]
    hops = " ".join(f"{h}:{dist.get(h)}" for h in holders)
    note = "" if len(best) == 3 else \
        "; no node has 3 others 2-3 hops away: the farthest taken"
    ideal = ideal_tree(adj, pub, holders)
    victims = [a for a in rest if a != pub and a not in holders]
    victims = rng.sample(sorted(victims), min(nstop, len(victims)))
    out(f"scale: publisher on {pub}, subscribers on {' '.join(holders)} "
        f"(hops {hops}){note}; shortest-path tree from {pub} to them: "
        f"{ideal} links")
    out(f"SET hub {hub}")
    out(f"SET hub_links {len(adj[hub])}")
    out(f"SET pub {pub}")
    out(f"SET holders {' '.join(holders)}")
    out(f"SET hops {hops}{note}")
    out(f"SET ideal {ideal}")
    out(f"SET victims {' '.join(sorted(victims, key=names.index))}")
    return 0


SNAP_KEYS = {
    "out": "wsrelay_inm_packets_out_total",
    "message": BY_TYPE,         # the series with type="message"
    "dup": "wsrelay_inm_packets_duplicate_total",
    "unroutable": "wsrelay_inm_unroutable_total",
}


def sample(m, name):
    """@name's value in scrape() @m (summed over its series; for BY_TYPE
    those with type="message"), or None when the node has no such
    metric."""
    res = None
    for key, v in m.items():
        base, _, labels = key.partition("{")
        if base != name:
            continue
        if name == BY_TYPE and 'type="message"' not in labels:
            continue
        res = (res or 0) + v
    return res


def cmd_snap(args):
    """Sums of SNAP_KEYS over the nodes into FILE (JSON, with the time);
    with SETTLE, first waits up to SETTLE s for the message-type sum to
    stop moving (when the node has it)."""
    path, args = args[0], args[1:]
    settle = None
    if args and ":" not in args[0]:
        settle, args = float(args[0]), args[1:]
    nodes = nodes_of(args)

    def total():
        res, per = {}, []
        for m in POOL.map(lambda n: scrape(n.port), nodes):
            per.append(m)
            for k, name in SNAP_KEYS.items():
                v = sample(m, name)
                if v is not None:
                    res[k] = res.get(k, 0) + v
        res["t"] = time.monotonic()
        res["by_node"] = {n.name: sample(p, BY_TYPE) or 0
                          for n, p in zip(nodes, per)}
        return res
    cur = total()
    if settle is not None and "message" in cur:
        deadline, same = time.monotonic() + settle, 0
        while same < 2 and time.monotonic() < deadline:
            time.sleep(0.15)
            nxt = total()
            same = same + 1 if nxt["message"] == cur["message"] else 0
            cur = nxt
    with open(path, "w") as f:
        json.dump(cur, f)
    return 0


def cmd_frames(args):
    with open(args[0]) as f:
        a = json.load(f)
    with open(args[1]) as f:
        b = json.load(f)
    msgs, ideal, idle_pps = int(args[2]), int(args[3]), float(args[4])
    spread = float(args[5])     # idle packets/s, first half - second half
    dur = b["t"] - a["t"]
    err = ""
    if "message" in a and "message" in b:
        frames = b["message"] - a["message"]
        how = (f"{BY_TYPE}{{type=\"message\"}} delta, summed over the "
               "nodes")
    else:
        total = b["out"] - a["out"]
        frames = total - idle_pps * dur
        how = (f"fallback, no {BY_TYPE}: wsrelay_inm_packets_out_total delta "
               f"{total:.0f} - idle {idle_pps:.0f} pkt/s x {dur:.2f} s = "
               f"{frames:.0f}")
        err = f" +- {spread * dur / msgs:.1f}" if msgs else ""
    per = frames / msgs if msgs else float("nan")
    goal = 1.2 * ideal + 1e-9     # 1.2 x 3 is 3.5999...96
    busy = sorted(((b["by_node"][k] - a["by_node"].get(k, 0), k)
                   for k in b["by_node"]), reverse=True)
    out(f"scale: INM frames for {msgs} messages: {frames:.0f} = {per:.3f}"
        f"{err} per message; ideal {ideal} ({how})")
    if err:
        out(f"scale: +-: the idle rate's change between the two halves of "
            f"the idle window ({spread:.0f} pkt/s) over the {dur:.2f} s")
    if "message" in a:
        out("scale: nodes that sent the most message frames: " +
            ", ".join(f"{k} +{d:.0f}" for d, k in busy[:8]))
    extra = []
    for k, name in (("dup", "INM duplicates"),
                    ("unroutable", "INM unroutable")):
        if k in a and k in b:
            extra.append(f"{name} +{b[k] - a[k]:.0f}")
    out(f"SUMMARY INM frames/message: {per:.3f}{err} vs shortest-path tree "
        f"{ideal} (goal <= 1.2 x = {goal:.2f}) "
        f"{'MET' if per <= goal else 'NOT MET'}; "
        + ("by-type counter" if "message" in a else
           "fallback: packets_out - idle rate x duration")
        + ("; " + ", ".join(extra) if extra else ""))
    return 0


def cmd_converge(args):
    secs, t0, channel = float(args[0]), float(args[1]), args[2]
    holders = args[3].split(",")
    nodes = nodes_of(args[4:])
    names = [n.name for n in nodes]
    at, res, who = wait_agree(nodes, secs, t0, channel, holders)
    if at is None:
        out(f"SET culprits {' '.join(sorted(who, key=names.index))}")
        out(f"scale: did not converge within {secs:g} s: {'; '.join(res)}")
        out(f"SET converged did not converge within {secs:g} s "
            f"({'; '.join(res[:2])})")
        return 0
    adj = graph(res, [n.name for n in nodes])
    lo, avg, hi, nlinks, _ = link_stats(adj)
    out(f"scale: the {len(nodes)} nodes agree and form one mesh {at:.2f} s "
        f"after; links per node min {lo} avg {avg:.2f} max {hi}")
    out(f"SET converged {at:.2f} s (links per node min {lo} avg {avg:.2f} "
        f"max {hi})")
    return 0


def cmd_stopped(args):
    stopped = set(args[0].split(","))
    nodes = [n for n in nodes_of(args[1:]) if n.name not in stopped]
    vs = views(nodes)
    linked = [a for a in vs if set(peer_names(vs[a])) & stopped]
    known = [a for a in vs if set((vs[a] or {}).get("nodes", [])) & stopped]
    mute = [a for a in vs if vs[a] is None]
    comps = components(graph(vs, [n.name for n in nodes]))
    out(f"SET stopped_view of the {len(nodes)} running nodes, "
        f"{len(linked)} still link to a stopped node, {len(known)} still "
        f"list one; they form {len(comps)} mesh(es)"
        + (f"; {len(mute)} did not answer" if mute else ""))
    return 0


# ---- traffic ----

class Sub:
    def __init__(self, name, port):
        self.name, self.port = name, port
        self.ws = None
        self.seen = {}          # tag -> Counter(seq)
        self.last = {}          # tag -> last seq
        self.reordered = Counter()
        self.closed = None


async def clients_main(size, pub_port, channel, specs):
    import websockets

    async def connect(port):
        return await asyncio.wait_for(websockets.connect(
            f"ws://127.0.0.1:{port}/connect", compression=None,
            max_size=None, max_queue=None, ping_interval=None), 10)

    async def subscribe(ws):
        await ws.send(json.dumps({"command": "subscribe", "nonce": "s",
                                  "data": {"topic": channel}}))
        while True:
            m = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if m.get("type") == "response":
                if not m.get("data", {}).get("ok"):
                    raise RuntimeError(f"subscribe: {m}")
                return

    subs = [Sub(*s.split(":")) for s in specs]
    for s in subs:
        s.ws = await connect(s.port)
        await subscribe(s.ws)
    pub = await connect(pub_port)
    await subscribe(pub)
    resp = Counter()
    bad = Counter()

    async def sub_reader(s):
        try:
            async for raw in s.ws:
                m = json.loads(raw)
                if m.get("type") != "message":
                    continue
                tag, _, rest = m["data"]["message"].partition(":")
                seq = int(rest.partition(":")[0])
                s.seen.setdefault(tag, Counter())[seq] += 1
                if seq < s.last.get(tag, -1):
                    s.reordered[tag] += 1
                s.last[tag] = seq
        except Exception as e:
            s.closed = repr(e)
        if s.closed is None:
            s.closed = f"closed {s.ws.close_code}"

    async def pub_reader():
        try:
            async for raw in pub:
                m = json.loads(raw)
                if m.get("type") == "response":
                    d = m.get("data", {})
                    if d.get("ok"):
                        resp["ok"] += 1
                    else:
                        bad[d.get("reason", "?")] += 1
                        resp["failed"] += 1
        except Exception:
            pass

    tasks = [asyncio.create_task(sub_reader(s)) for s in subs]
    tasks.append(asyncio.create_task(pub_reader()))
    pad = "x" * size

    def msg(tag, i):
        head = f"{tag}:{i}:"
        return head + pad[len(head):]

    async def send(tag, i):
        await pub.send(json.dumps({"command": "send", "data": {
            "channel": channel, "message": msg(tag, i)}}))

    out(f"ready channel={channel}")
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        words = line.split()
        if not words or words[0] == "quit":
            break
        if words[0] == "probe":
            secs, t0, i = float(words[1]), loop.time(), 0
            while loop.time() - t0 < secs:
                if all(s.seen.get("probe") for s in subs):
                    break
                await send("probe", i)
                i += 1
                await asyncio.sleep(0.02)
            missing = [s.name for s in subs if not s.seen.get("probe")]
            if missing:
                out(f"probe FAILED: after {secs:g} s no probe at "
                    f"{' '.join(missing)}")
            else:
                out(f"probed: every subscriber got a message after "
                    f"{loop.time() - t0:.2f} s ({i} probes)")
            continue
        if words[0] != "send":
            out(f"clients: unknown command {line.strip()}")
            continue
        tag, count, rate, drain = words[1], int(words[2]), float(words[3]), \
            float(words[4])
        before = resp["ok"] + resp["failed"]
        t0 = loop.time()
        for i in range(count):
            delay = t0 + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await send(tag, i)
        t1 = loop.time()
        last, prog = -1, loop.time()
        while loop.time() - prog < drain:
            got = sum(len(s.seen.get(tag, ())) for s in subs) + resp["ok"] + \
                resp["failed"]
            if got == count * (len(subs) + 1) + before:
                break
            if got != last:
                last, prog = got, loop.time()
            await asyncio.sleep(0.02)
        t2 = loop.time()
        lost = dup = 0
        out(f"drained {tag}: {count} sent in {t1 - t0:.2f} s "
            f"({count / max(t1 - t0, 1e-9):.0f}/s), {resp['ok'] + resp['failed'] - before} "
            f"answered ({dict(bad) or 'none'} failed), last delivery "
            f"{t2 - t1:.2f} s after the last send")
        for s in subs:
            seen = s.seen.get(tag, Counter())
            miss = sum(1 for i in range(count) if i not in seen)
            d = sum(c - 1 for c in seen.values())
            lost, dup = lost + miss, dup + d
            out(f"  subscriber on {s.name}: {len(seen)}/{count} received, "
                f"{miss} lost, {d} duplicates, {s.reordered[tag]} out of "
                f"order" + (f"; connection {s.closed}" if s.closed else ""))
        out(f"SET lost_{tag} {lost}")
        out(f"SET dup_{tag} {dup}")
        out(f"result {tag} lost={lost} dup={dup}")
    for t in tasks:
        t.cancel()
    for ws in [pub] + [s.ws for s in subs]:
        await ws.close()
    return 0


def cmd_clients(args):
    try:
        return asyncio.run(clients_main(int(args[0]), int(args[1]), args[2],
                                        args[3:]))
    except Exception as e:
        out(f"clients FAILED: {e!r}")
        return 1


def main(argv):
    cmds = {"parents": cmd_parents, "formed": cmd_formed, "idle": cmd_idle,
            "plan": cmd_plan, "snap": cmd_snap, "frames": cmd_frames,
            "converge": cmd_converge, "stopped": cmd_stopped,
            "clients": cmd_clients}
    if len(argv) < 2 or argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        return 2
    return cmds[argv[1]](argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
