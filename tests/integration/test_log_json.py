"""
[log] format = "json": every stderr line of a running node, from the banner
to "stopped", is one JSON object with time, level, node and msg; and at
level debug, through a node link, a one-time token and clients on a
password-protected channel, no token or password text reaches the log.
"""

import json
import re

from conftest import Pool, ok, run
from meshutil import FakeNode, mesh_config, wait_peers_sync

SECRET = "static-SECRET-token-4d1f"
PASSWORD = "hunter2-SECRET-pw"
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
# structured fields a line may carry besides time, level, node and msg
FIELDS = {"addr", "code", "status", "peer", "channel", "clients",
          "queued_bytes"}
JSON_LOG = '\n[log]\nformat = "json"\nlevel = "debug"\n'


def start(node_factory, name, peers=()):
    text = mesh_config(name, peers=peers, token=SECRET,
                       node_extra={"max_peers": 2}) + JSON_LOG
    n = node_factory.start(config_text=text)
    n.name = name
    return n


def test_json_lines_and_no_secrets(node_factory):
    n = start(node_factory, "N")
    m = start(node_factory, "M",
              peers=[("N", f"ws://127.0.0.1:{n.port}/node", SECRET)])
    wait_peers_sync([n, m], {"N": ["M"], "M": ["N"]}, exact=True)
    tokens = [SECRET]

    async def body():
        f = await FakeNode.connect(n, SECRET, "F")
        tokens.append((await f.command("N", "get-connection-token", node="G"))["token"])
        await f.close()
        async with Pool() as pool:
            a, b, c = [await pool.connect(n) for _ in range(3)]
            assert await a.subscribe("vault", password=PASSWORD) == ok()
            assert await b.subscribe("vault", password=PASSWORD) == ok()
            assert (await c.subscribe("vault", password="wrong-" + PASSWORD))["data"]["ok"] is False
            assert await a.subscribe("open") == ok()
    run(body())

    for node in (m, n):
        assert node.stop() == []
        lines = node.log_text().splitlines()
        assert any("listening on" in ln for ln in lines), lines
        assert any("client" in ln for ln in lines) or node is m, lines
        for ln in lines:
            obj = json.loads(ln)
            assert isinstance(obj, dict), ln
            assert {"time", "level", "node", "msg"} <= set(obj), ln
            assert set(obj) <= {"time", "level", "node", "msg"} | FIELDS, ln
            assert TIME_RE.match(obj["time"]), ln
            assert obj["level"] in ("debug", "info", "warn", "error"), ln
            assert obj["node"] == node.name, ln
            assert isinstance(obj["msg"], str) and obj["msg"], ln
        text = node.log_text()
        assert json.loads(lines[-1])["msg"] == "stopped", lines[-1]
        for secret in tokens + [PASSWORD]:
            assert secret not in text, f"{secret!r} in the log of {node.name}"
        objs = [json.loads(ln) for ln in lines]
        # the fields an operator filters on: the client's address, the
        # peer of a link, the channel
        link = [o for o in objs if re.match(r"node link '.*' up \(", o["msg"])]
        assert link and all(f"'{o['peer']}'" in o["msg"] and o["addr"]
                            for o in link), link
        if node is n:
            conn = [o for o in objs if o["msg"] == "client connected"]
            assert len(conn) == 3, objs
            assert all(o["addr"] == "127.0.0.1" and o["clients"] >= 1
                       for o in conn), conn
            closed = [o for o in objs if o["msg"] == "client closed"]
            assert len(closed) == 3 and all("code" in o for o in closed)
            made = [o.get("channel") for o in objs
                    if o["msg"].startswith("channel created")]
            assert sorted(made) == ["open", "vault"], made
