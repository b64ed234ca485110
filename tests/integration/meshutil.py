"""
Shared helpers for the multi-node integration tests (test_mesh_flows.py,
test_mesh_faults.py, test_node_auth.py).

* `mesh_config` / `start_mesh`: real nodes linked by [[peers]] entries,
  short mesh timings (MESH_TIMINGS) so that faults heal in seconds.
* `api_node` / `chan_view` / `wait_converged` / `wait_peers`: read and wait
  on each node's GET /api/node view (peers, known nodes, channels with
  password hash and holders).
* `kill9`, `paused` (SIGSTOP / SIGCONT), `restart`: process faults.
* `FakeNode`: a hand-driven node over WS /node (python websockets) that
  handshakes, answers the node's commands, announces itself, and sends
  commands whose responses it matches by nonce.

Every wait has a deadline and reports the last state seen on timeout; no
wait is a sleep.
"""

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import signal
import time

import websockets
import websockets.exceptions

from conftest import DEADLINE, http_get, raw_handshake_status

TOKEN = "mesh-static-token"

MESH_TIMINGS = {
    "announce_interval_ms": 300,
    "ping_interval_ms": 200,
    "peer_timeout_ms": 1500,
    "command_timeout_ms": 1000,
    "reconnect_min_ms": 50,
    "reconnect_max_ms": 500,
}

ANNOUNCE_S = MESH_TIMINGS["announce_interval_ms"] / 1000
PEER_TIMEOUT_S = MESH_TIMINGS["peer_timeout_ms"] / 1000
RECONNECT_MAX_S = MESH_TIMINGS["reconnect_max_ms"] / 1000
# PROTOCOL.md 4.5: every connected node converges within 3 announce
# periods after a change; a link loss is only noticed after peer_timeout
# and a redial may wait reconnect_max. The slack absorbs a loaded 2-core
# machine and sanitizer builds.
CONVERGE_S = 3 * ANNOUNCE_S + PEER_TIMEOUT_S + RECONNECT_MAX_S + 4.0
# A gone holder leaves every holder set within 3 x peer_timeout.
GONE_S = 3 * PEER_TIMEOUT_S + 1.5


def pbkdf2_hex(channel, password):
    """The channel password hash itself (PROTOCOL.md 2), as nodes send it
    to each other in reserve-channel and list answers."""
    return hashlib.pbkdf2_hmac("sha256", password.encode(), channel.encode(),
                               32768, 32).hex()


def pw_hash(channel, password, token=TOKEN):
    """What GET /api/node shows for a channel's password on a node whose
    [node] token is @token: None for none, else the first 16 hex digits of
    HMAC-SHA256(token, PBKDF2 hash of PROTOCOL.md 2) - the hash itself
    never leaves the mesh."""
    if password is None:
        return None
    h = bytes.fromhex(pbkdf2_hex(channel, password))
    return hmac.new(token.encode(), h, hashlib.sha256).hexdigest()[:16]


def nonce():
    return os.urandom(16).hex()


# --------------------------------------------------------------------------
# waiting with a deadline and a useful failure message
# --------------------------------------------------------------------------

async def eventually(check, timeout=DEADLINE, what="condition", interval=0.05):
    """Polls check() (sync or async) returning (done, detail) until done;
    returns the detail. On timeout raises AssertionError with the last
    detail, so a failure shows what the nodes believed."""
    deadline = time.monotonic() + timeout
    while True:
        res = check()
        if asyncio.iscoroutine(res):
            res = await res
        done, detail = res
        if done:
            return detail
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.1f}s waiting for {what}; last state:\n"
                + (json.dumps(detail, indent=1, sort_keys=True, default=str)
                   if not isinstance(detail, str) else detail))
        await asyncio.sleep(interval)


def eventually_sync(check, timeout=DEADLINE, what="condition", interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        done, detail = check()
        if done:
            return detail
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.1f}s waiting for {what}; last state:\n"
                + json.dumps(detail, indent=1, sort_keys=True, default=str))
        time.sleep(interval)


# --------------------------------------------------------------------------
# configs and node processes
# --------------------------------------------------------------------------

def _toml(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return json.dumps(v)


def mesh_config(name, port=0, peers=(), token=TOKEN, node_extra=None,
                mesh=None, sections=None):
    """TOML text for one mesh node. peers: [(name, port)] or
    [(name, url, token)]; node_extra: more [node] keys (max_peers, url...);
    mesh: [mesh] overrides on top of MESH_TIMINGS; sections: more tables,
    {"history": {"size": 100}}."""
    lines = ["[node]", f"name = {_toml(name)}",
             f'listen = "127.0.0.1:{port}"']
    if token is not None:
        lines.append(f"token = {_toml(token)}")
    for k, v in (node_extra or {}).items():
        if v is not None:
            lines.append(f"{k} = {_toml(v)}")
    # mesh tests send as fast as round trips allow: the 7.2 send bucket
    # (1000 msg/s by default) is test_edge_limits.py's business
    lines += ["", "[limits]", "messages_per_second = 1000000",
              "messages_burst = 1000000"]
    lines += ["", "[mesh]"]
    timings = dict(MESH_TIMINGS)
    timings.update(mesh or {})
    for k, v in timings.items():
        lines.append(f"{k} = {_toml(v)}")
    for sect, keys in (sections or {}).items():
        lines += ["", f"[{sect}]"]
        lines += [f"{k} = {_toml(v)}" for k, v in keys.items()]
    for p in peers:
        if len(p) == 2:
            pname, pport = p
            url, ptok = f"ws://127.0.0.1:{pport}/node", TOKEN
        else:
            pname, url, ptok = p
        lines += ["", "[[peers]]", f"name = {_toml(pname)}",
                  f"url = {_toml(url)}", f"token = {_toml(ptok)}"]
    return "\n".join(lines) + "\n"


def start_node(node_factory, name, port=0, peers=(), node_extra=None,
               mesh=None, token=TOKEN, sections=None):
    """Starts one mesh node; remembers how, for restart()."""
    spec = dict(name=name, peers=list(peers), node_extra=dict(node_extra or {}),
                mesh=dict(mesh or {}), token=token,
                sections=dict(sections or {}))
    n = node_factory.start(config_text=mesh_config(port=port, **spec))
    n.name = name
    n.mesh_spec = spec
    return n


def start_mesh(node_factory, names, edges=(), max_peers=None, per_node=None,
               wait=True, sections=None, **mesh_overrides):
    """Starts one node per name, every one with the static TOKEN.
    edges: (dialler, target) pairs: target goes into dialler's [[peers]];
    they must form a DAG (targets start first, their ports are ephemeral).
    sections: more config tables for every node ({"history": {...}}).
    max_peers: [node] max_peers for every node; per_node: {name: {[node]
    keys}} on top. With wait, returns once every edge is a link in both
    nodes' /api/node views. Returns the nodes in the order of names, each
    with .name set."""
    names = list(names)
    targets = {n: [t for d, t in edges if d == n] for n in names}
    for d, t in edges:
        assert d in names and t in names and d != t, (d, t)
    started = {}
    while len(started) < len(names):
        progress = False
        for n in names:
            if n in started or any(t not in started for t in targets[n]):
                continue
            extra = {}
            if max_peers is not None:
                extra["max_peers"] = max_peers
            extra.update((per_node or {}).get(n, {}))
            started[n] = start_node(
                node_factory, n,
                peers=[(t, started[t].port) for t in targets[n]],
                node_extra=extra, mesh=mesh_overrides, sections=sections)
            progress = True
        assert progress, f"edges are not a DAG: {edges}"
    nodes = [started[n] for n in names]
    if wait and edges:
        want = {n: set() for n in names}
        for d, t in edges:
            want[d].add(t)
            want[t].add(d)
        wait_peers_sync(nodes, want)
    return nodes


def restart(node_factory, node):
    """Starts the node again with the same name, config and port (it must
    be stopped). Returns the new Node."""
    assert node.proc.poll() is not None, "stop the node first"
    return start_node(node_factory, port=node.port, **node.mesh_spec)


def kill9(node):
    node.expect_clean_exit = False
    node.proc.kill()
    node.proc.wait(5)


@contextlib.contextmanager
def paused(node):
    """SIGSTOP for the body, SIGCONT after it, whatever happens."""
    node.proc.send_signal(signal.SIGSTOP)
    try:
        yield node
    finally:
        node.proc.send_signal(signal.SIGCONT)


# --------------------------------------------------------------------------
# GET /api/node
# --------------------------------------------------------------------------

def api_node(node):
    try:
        status, hdrs, body = http_get(node, "/api/node")
    except OSError as e:
        # say which node and in what state, not just "refused"
        raise AssertionError(
            f"GET /api/node on {getattr(node, 'name', '?')} (port {node.port}, "
            f"exit status {node.proc.poll()}) failed: {e!r}; log {node.log_path}, "
            f"last lines:\n" + "\n".join(node.log_text().splitlines()[-15:])) from e
    assert status == 200, (status, body[:300])
    assert hdrs.get("content-type", "").startswith("application/json"), hdrs
    return json.loads(body)


async def aapi_node(node):
    return await asyncio.to_thread(api_node, node)


def chan_of(view, channel):
    """The channel entry named channel in an /api/node document, or None."""
    found = [c for c in view["channels"] if c["name"] == channel]
    assert len(found) <= 1, f"channel {channel!r} listed twice: {found}"
    return found[0] if found else None


def peer_names(view):
    return {p["name"] for p in view["peers"]}


def views(nodes):
    return {n.name: api_node(n) for n in nodes}


async def aviews(nodes):
    got = await asyncio.gather(*(aapi_node(n) for n in nodes))
    return {n.name: v for n, v in zip(nodes, got)}


def _peers_check(nodes, want, exact):
    vs = {n.name: api_node(n) for n in nodes}
    have = {k: sorted(peer_names(v)) for k, v in vs.items()}
    done = all((set(have[k]) == set(w)) if exact else set(w) <= set(have[k])
               for k, w in want.items())
    return done, have


def wait_peers_sync(nodes, want, exact=False, timeout=CONVERGE_S):
    """want: {node name: peer names}; waits until each node's /api/node
    peers include (exact: equal) them."""
    return eventually_sync(lambda: _peers_check(nodes, want, exact), timeout,
                           what=f"links {want}")


async def wait_peers(nodes, want, exact=False, timeout=CONVERGE_S):
    async def check():
        return await asyncio.to_thread(_peers_check, nodes, want, exact)
    return await eventually(check, timeout, what=f"links {want}")


ANY = object()


async def wait_converged(nodes, channel, password=ANY, holders=ANY,
                         absent=False, timeout=CONVERGE_S):
    """Waits until every node's /api/node view of channel agrees: same
    password hash and same holders (and, when given, equal to password --
    a hash or None -- and to the holder names), or, with absent, until no
    node has the channel at all. Returns {node name: channel entry}."""
    async def check():
        vs = await aviews(nodes)
        entries = {k: chan_of(v, channel) for k, v in vs.items()}
        if absent:
            return all(e is None for e in entries.values()), entries
        if any(e is None for e in entries.values()):
            return False, entries
        pws = {e["password"] for e in entries.values()}
        hs = {tuple(sorted(e["holders"])) for e in entries.values()}
        if len(pws) != 1 or len(hs) != 1:
            return False, entries
        if password is not ANY and pws != {password}:
            return False, entries
        if holders is not ANY and hs != {tuple(sorted(holders))}:
            return False, entries
        return True, entries
    what = (f"channel {channel!r} gone on every node" if absent else
            f"every node to agree on channel {channel!r}"
            + ("" if holders is ANY else f" with holders {sorted(holders)}")
            + ("" if password is ANY else f" and password {password}"))
    return await eventually(check, timeout, what=what)


async def wait_client_lists(clients, channel, present=True, timeout=CONVERGE_S):
    """Waits until `list` on every client includes (or lacks) channel."""
    async def check():
        lists = [await c.channels() for c in clients]
        return all((channel in l) == present for l in lists), lists
    return await eventually(check, timeout,
                            what=f"client lists {'with' if present else 'without'} {channel!r}")


# --------------------------------------------------------------------------
# A fake node over WS /node
# --------------------------------------------------------------------------

class Refused(Exception):
    """The /node upgrade was refused with an HTTP status."""

    def __init__(self, status):
        super().__init__(f"HTTP {status}")
        self.status = status


async def node_upgrade_status(node, token):
    """Tries the /node upgrade with token (a standard client) and closes;
    returns the HTTP status (101 when it was accepted -- which uses up a
    one-time token)."""
    headers = {} if token is None else {"Authentication": token}
    return await asyncio.to_thread(raw_handshake_status, node, "/node", headers)


class FakeNode:
    """A node driven by hand. open() upgrades, handshake() sends the first
    frame; connect() does both and starts the reader, which routes
    responses to command() by nonce, auto-answers the node's commands
    (empty lists, ok) when auto_reply, keeps everything else in .inbox,
    and announces the fake every announce_s seconds (PROTOCOL.md 3.6) so
    that it stays a live member with the channels in .held."""

    def __init__(self, ws, node):
        self.ws = ws
        self.node = node
        self.name = None
        self.inbox = []
        self.pending = {}
        self.held = {}               # channel -> {"password", "created"}
        self.auto_reply = True
        self.reader = None
        self.announcer = None
        self._arrived = asyncio.Event()
        self.closed = None

    # connection --------------------------------------------------------
    @classmethod
    async def open(cls, node, token, path="/node"):
        headers = {} if token is None else {"Authentication": token}
        try:
            ws = await asyncio.wait_for(websockets.connect(
                node.ws_url(path), extra_headers=headers, ping_interval=None,
                max_size=None, open_timeout=DEADLINE, close_timeout=2),
                DEADLINE + 5)
        except websockets.exceptions.InvalidStatusCode as e:
            raise Refused(e.status_code) from None
        return cls(ws, node)

    async def handshake(self, name, url=""):
        """Sends the handshake; returns the reply frame (a dict), or
        ("closed", code, reason) when the node closed instead."""
        self.name = name
        await self.ws.send(json.dumps({"command": "handshake",
                                       "data": {"name": name, "url": url}}))
        try:
            raw = await asyncio.wait_for(self.ws.recv(), DEADLINE)
        except websockets.exceptions.ConnectionClosed:
            code, reason = await self.wait_closed()
            return ("closed", code, reason)
        return json.loads(raw)

    @classmethod
    async def connect(cls, node, token, name, url="", announce_s=ANNOUNCE_S,
                      auto_reply=True):
        f = await cls.open(node, token)
        reply = await f.handshake(name, url)
        assert isinstance(reply, dict) and reply.get("type") == "response" \
            and reply["data"].get("ok") is True, reply
        f.reply = reply
        f.auto_reply = auto_reply
        f.start(announce_s)
        return f

    def start(self, announce_s=ANNOUNCE_S):
        self.reader = asyncio.ensure_future(self._read())
        if announce_s:
            self.announcer = asyncio.ensure_future(self._announce(announce_s))

    async def wait_closed(self, timeout=DEADLINE):
        await asyncio.wait_for(self.ws.wait_closed(), timeout)
        return self.ws.close_code, self.ws.close_reason

    async def close(self):
        for t in (self.announcer, self.reader):
            if t:
                t.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 5)

    # background --------------------------------------------------------
    async def _read(self):
        try:
            async for raw in self.ws:
                try:
                    pkt = json.loads(raw)
                except ValueError:
                    pkt = {"unparsed": raw}
                if isinstance(pkt, dict) and pkt.get("type") == "response" \
                        and pkt.get("nonce") in self.pending:
                    fut = self.pending.pop(pkt["nonce"])
                    if not fut.done():
                        fut.set_result(pkt)
                    continue
                if self.auto_reply and isinstance(pkt, dict) \
                        and pkt.get("type") == "command" \
                        and pkt.get("destination") in (self.name, "*"):
                    await self._answer(pkt)
                self.inbox.append(pkt)
                self._arrived.set()
        except websockets.exceptions.ConnectionClosed:
            pass
        finally:
            self.closed = (self.ws.close_code, self.ws.close_reason)
            self._arrived.set()
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError(
                        f"link closed {self.closed}"))

    async def _answer(self, pkt):
        data = pkt.get("data") or {}
        cmd = data.get("command")
        if cmd == "list-channels":
            resp = {"ok": True, "channels": [
                {"name": k, **v} for k, v in sorted(self.held.items())]}
        elif cmd == "list-reserved-channels":
            resp = {"ok": True, "channels": []}
        elif cmd == "list-nodes":
            resp = {"ok": True, "nodes": [self.node.name]
                    if getattr(self.node, "name", None) else []}
        elif cmd in ("reserve-channel", "unreserve-channel"):
            resp = {"ok": True}
        else:
            resp = {"ok": False, "reason": "unknown command"}
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            await self.send_packet({"source": self.name,
                                    "destination": pkt.get("source"),
                                    "type": "response",
                                    "nonce": pkt.get("nonce"), "ttl": 16,
                                    "data": resp})

    async def _announce(self, every):
        while True:
            with contextlib.suppress(websockets.exceptions.ConnectionClosed):
                await self.send_packet(self.packet("*", "event", {
                    "event": "announce", "name": self.name, "url": "",
                    "peers": [self.node.name] if getattr(self.node, "name", None) else [],
                    "channels": [{"name": k, **v}
                                 for k, v in sorted(self.held.items())],
                    "master": False}))
            await asyncio.sleep(every)  # a period, not a synchronisation

    # packets -----------------------------------------------------------
    def packet(self, dest, ptype, data, pnonce=None):
        return {"source": self.name, "destination": dest, "type": ptype,
                "nonce": pnonce or nonce(), "ttl": 16, "data": data}

    async def send_packet(self, pkt):
        await self.ws.send(pkt if isinstance(pkt, str) else json.dumps(pkt))

    async def command_packet(self, dest, cmd, timeout=DEADLINE, **data):
        """Sends a command; returns the whole response packet."""
        pkt = self.packet(dest, "command", {"command": cmd, **data})
        fut = asyncio.get_running_loop().create_future()
        self.pending[pkt["nonce"]] = fut
        await self.send_packet(pkt)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self.pending.pop(pkt["nonce"], None)

    async def command(self, dest, cmd, timeout=DEADLINE, **data):
        """Sends a command to dest; returns the response's data."""
        resp = await self.command_packet(dest, cmd, timeout, **data)
        assert resp["source"] == dest and resp["destination"] == self.name, resp
        assert isinstance(resp["data"].get("ok"), bool), resp
        return resp["data"]

    async def next_packet(self, pred, timeout=DEADLINE, what="packet"):
        """Removes and returns the first packet in the inbox (now or later)
        for which pred(pkt) is true."""
        deadline = time.monotonic() + timeout
        while True:
            for i, p in enumerate(self.inbox):
                if isinstance(p, dict) and pred(p):
                    return self.inbox.pop(i)
            if self.closed is not None:
                raise AssertionError(f"link closed {self.closed} waiting for {what}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {what}; inbox: "
                                     f"{self.inbox[-10:]!r}")
            self._arrived.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)
