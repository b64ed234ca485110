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
            assert set(obj) == {"time", "level", "node", "msg"}, ln
            assert TIME_RE.match(obj["time"]), ln
            assert obj["level"] in ("debug", "info", "warn", "error"), ln
            assert obj["node"] == node.name, ln
            assert isinstance(obj["msg"], str) and obj["msg"], ln
        text = node.log_text()
        assert json.loads(lines[-1])["msg"] == "stopped", lines[-1]
        for secret in tokens + [PASSWORD]:
            assert secret not in text, f"{secret!r} in the log of {node.name}"
