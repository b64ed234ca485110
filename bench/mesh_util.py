#!/usr/bin/env python3
"""Helpers for bench/mesh.sh (standard library only): free ports, and
deadline-bounded polls of nodes' GET /metrics and GET /api/node on
127.0.0.1. Every wait prints why it gave up and exits 1.

  mesh_util.py ports N
  mesh_util.py metric NAME PORT...            one line: sum, then each value
  mesh_util.py wait-metric SECS NAME VALUE PORT...
  mesh_util.py settle SECS NAME PORT...       waits until the sum stops moving
  mesh_util.py wait-holder SECS PORT CHANNEL NODE...
  mesh_util.py peers PORT                     names of the linked peers
  mesh_util.py wait-routes SECS COUNT MPORT...
                                  every nats-server (its -m monitoring port)
                                  lists COUNT routes in GET /routez
"""
import json
import socket
import sys
import time
import urllib.request


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                timeout=2) as r:
        return r.read().decode()


def metric(port, name):
    """Sum of every series of @name (all label sets) on one node."""
    total, seen = 0.0, False
    for line in get(port, "/metrics").splitlines():
        if line.startswith("#"):
            continue
        key, _, val = line.rpartition(" ")
        if key == name or key.startswith(name + "{"):
            total += float(val)
            seen = True
    if not seen:
        raise KeyError(f"no {name} in GET /metrics of port {port}")
    return total


def fmt(v):
    return str(int(v)) if v == int(v) else repr(v)


def holders(port, channel):
    """The holders of @channel in GET /api/node, as names, or None."""
    view = json.loads(get(port, "/api/node"))
    for ch in view.get("channels", []):
        if isinstance(ch, dict) and ch.get("name") == channel:
            hs = ch.get("holders") or []
            return [h.get("name") if isinstance(h, dict) else h for h in hs]
    return None


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "ports":
        socks = []
        for _ in range(int(args[0])):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        print(" ".join(str(s.getsockname()[1]) for s in socks))
        for s in socks:
            s.close()
        return 0
    if cmd == "metric":
        vals = [metric(p, args[0]) for p in args[1:]]
        print(" ".join(fmt(v) for v in [sum(vals)] + vals))
        return 0
    if cmd == "peers":
        view = json.loads(get(args[0], "/api/node"))
        print(" ".join(sorted(p.get("name", "?") if isinstance(p, dict)
                              else str(p) for p in view.get("peers", []))))
        return 0

    deadline = time.monotonic() + float(args[0])
    last = None
    if cmd == "wait-metric":
        name, want, ports = args[1], float(args[2]), args[3:]
        while True:
            try:
                last = [metric(p, name) for p in ports]
                if all(v == want for v in last):
                    return 0
            except Exception as e:  # not up yet
                last = e
            if time.monotonic() >= deadline:
                print(f"mesh: {name} is not {fmt(want)} on every node after "
                      f"{args[0]} s: {last} (ports {' '.join(ports)})",
                      file=sys.stderr)
                return 1
            time.sleep(0.05)
    if cmd == "settle":
        # the sum stopped moving: equal over 3 reads 150 ms apart
        name, ports, same = args[1], args[2:], 0
        while True:
            vals = [metric(p, name) for p in ports]
            same = same + 1 if vals == last else 0
            last = vals
            if same >= 2:
                print(" ".join(fmt(v) for v in [sum(vals)] + vals))
                return 0
            if time.monotonic() >= deadline:
                print(f"mesh: {name} still moving after {args[0]} s: {vals}",
                      file=sys.stderr)
                return 1
            time.sleep(0.15)
    if cmd == "wait-holder":
        port, channel, nodes = args[1], args[2], args[3:]
        while True:
            try:
                last = holders(port, channel)
                if last is not None and all(n in last for n in nodes):
                    return 0
            except Exception as e:  # e.g. no /api/node (yet)
                last = e
            if time.monotonic() >= deadline:
                try:
                    view = get(port, "/api/node")[:1500]
                except Exception as e:
                    view = repr(e)
                print(f"mesh: after {args[0]} s the node on port {port} "
                      f"does not list {' '.join(nodes)} among the holders "
                      f"of {channel} (holders: {last}); GET /api/node: "
                      f"{view}", file=sys.stderr)
                return 1
            time.sleep(0.02)
    if cmd == "wait-routes":
        want, ports = int(args[1]), args[2:]
        while True:
            try:
                last = [json.loads(get(p, "/routez")).get("num_routes")
                        for p in ports]
                if all(n == want for n in last):
                    return 0
            except Exception as e:  # not listening yet
                last = e
            if time.monotonic() >= deadline:
                print(f"mesh: after {args[0]} s the nats-servers (monitoring "
                      f"ports {' '.join(ports)}) have {last} routes, not "
                      f"{want} each", file=sys.stderr)
                return 1
            time.sleep(0.05)
    print(f"mesh_util: unknown command {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
