"""
Client authentication on real nodes (PROTOCOL.md 7.1, 7.5 points 1-5):
HS256 and EdDSA tokens minted here (hmac; cryptography for Ed25519), the
auth command's answers, "not authenticated" behind the input checks with
[auth] required, the 4401 "unauthorized" deadline, the 4401 "token
expired" close at exp + 30 s, refresh, "permission denied" in the 7.5.4
order, iss/aud, config errors, and a 3-node mesh where each node verifies
tokens with its own keys. Deadlines are events (a close frame, a marker
response), never sleeps.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import subprocess
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conftest import (BIN, Client, Pool, command, delivery, fail, metrics, ok,
                      run, render_config)
from meshutil import mesh_config, wait_peers_sync

SECRET = b"integration-secret\n"  # the file's bytes; the key has no newline


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def claims(sub="alice", ttl=3600, **extra):
    c = {"sub": sub, "exp": int(time.time()) + ttl}
    c.update(extra)
    return c


def hs256(payload, key=SECRET.rstrip(b"\n"), header=None):
    h = b64u(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    p = b64u(json.dumps(payload).encode())
    sig = hmac.new(key, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64u(sig)}"


def eddsa(payload, sk):
    h = b64u(json.dumps({"alg": "EdDSA", "typ": "JWT"}).encode())
    p = b64u(json.dumps(payload).encode())
    return f"{h}.{p}.{b64u(sk.sign(f'{h}.{p}'.encode()))}"


def pub_b64(sk):
    raw = sk.public_key().public_bytes(serialization.Encoding.Raw,
                                       serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


ED_KEY = Ed25519PrivateKey.generate()


def auth_node(node_factory, tmp_path, secret=SECRET, ed=None, name="t1",
              **auth):
    sect = {}
    if secret is not None:
        f = tmp_path / f"{name}.key"
        f.write_bytes(secret)
        sect["hs256_secret_file"] = str(f)
    sect.update(auth)
    text = render_config(node_factory.config(name, auth=sect))
    if ed:
        keys = ", ".join(json.dumps(pub_b64(k)) for k in ed)
        text += f"\n[auth]\n" if "[auth]" not in text else ""
        text = text.replace("[auth]\n", f"[auth]\ned25519_public_keys = [{keys}]\n", 1)
    return node_factory.start(config_text=text)


async def login(cl, token, nonce="login"):
    return await cl.request(command("auth", {"token": token}, nonce))


def logged_in(user, exp, nonce="login"):
    return ok(nonce, user=user, expires=exp)


# ---- the auth command ------------------------------------------------------

def test_auth_hs256_and_eddsa(node_factory, tmp_path):
    n = auth_node(node_factory, tmp_path, ed=[Ed25519PrivateKey.generate(), ED_KEY])

    async def body():
        async with Pool() as pool:
            a, b, c = [await pool.connect(n) for _ in range(3)]
            ca = claims("alice")
            assert await login(a, hs256(ca)) == logged_in("alice", ca["exp"])
            cb = claims("bob")
            # the second configured key signs it: every key is tried
            assert await login(b, eddsa(cb, ED_KEY)) == logged_in("bob", cb["exp"])
            # no nonce, no nonce key
            r = await c.request(command("auth", {"token": hs256(claims("carol"))}))
            assert r["data"]["user"] == "carol" and "nonce" not in r, r
    run(body())


@pytest.mark.parametrize("make,reason", [
    (lambda: hs256(claims(), header={"alg": "none"}).rsplit(".", 1)[0] + ".", "invalid token"),
    (lambda: hs256(claims(), header={"alg": "HS512"}), "invalid token"),
    (lambda: hs256(claims(), key=b"wrong key"), "invalid token"),
    (lambda: hs256(claims()) + "=", "invalid token"),
    (lambda: hs256(claims())[:-1], "invalid token"),
    (lambda: eddsa(claims(), Ed25519PrivateKey.generate()), "invalid token"),
    (lambda: hs256({"exp": int(time.time()) + 60}), "invalid token"),
    (lambda: hs256({"sub": "a"}), "invalid token"),
    (lambda: hs256(claims(channels="chat.*")), "invalid token"),
    (lambda: hs256(claims(nbf=int(time.time()) + 120)), "invalid token"),
    (lambda: hs256(claims(ttl=-100)), "token expired"),
    (lambda: "x" * 9000, "invalid token"),
    (lambda: "", "invalid token"),
])
def test_bad_tokens(node_factory, tmp_path, make, reason):
    n = auth_node(node_factory, tmp_path, ed=[ED_KEY])

    async def body():
        async with Pool() as pool:
            cl = await pool.connect(n)
            assert await login(cl, make(), "n1") == fail(reason, "n1")
            await cl.alive()  # not required: still usable, anonymously
    run(body())


def test_auth_input_checks(node_factory, tmp_path):
    n = auth_node(node_factory, tmp_path)

    async def body():
        async with Pool() as pool:
            cl = await pool.connect(n)
            assert await cl.request(command("auth", nonce="a")) == \
                fail("missing field: data", "a")
            assert await cl.request(command("auth", {"token": 5}, "b")) == \
                fail("missing field: token", "b")
    run(body())


def test_no_keys_configured_every_token_invalid(node):
    async def body():
        async with Pool() as pool:
            cl = await pool.connect(node)
            assert await login(cl, hs256(claims())) == fail("invalid token", "login")
            # and the anonymous protocol is untouched
            assert await cl.subscribe("open") == ok()
    run(body())


# ---- required ----------------------------------------------------------------

def test_required_not_authenticated_after_input_checks(node_factory, tmp_path):
    n = auth_node(node_factory, tmp_path, required=True)

    async def body():
        async with Pool() as pool:
            cl = await pool.connect(n)
            # 7.5.5: the section 2 input checks answer first
            assert await cl.request("not json") == fail("invalid json")
            assert await cl.request({"nonce": "a"}) == fail("missing field: command", "a")
            assert await cl.request(command("nope", {}, "b")) == fail("unknown command", "b")
            assert await cl.request(command("subscribe", {}, "c")) == \
                fail("missing field: topic", "c")
            # then every command but auth
            assert await cl.list(nonce="d") == fail("not authenticated", "d")
            assert await cl.subscribe("x", nonce="e") == fail("not authenticated", "e")
            assert await cl.publish("x", "m", nonce="f") == fail("not authenticated", "f")
            assert await cl.unsubscribe("x", nonce="g") == fail("not authenticated", "g")
            # a failed auth changes nothing
            assert await login(cl, hs256(claims(), key=b"bad")) == \
                fail("invalid token", "login")
            assert await cl.list(nonce="h") == fail("not authenticated", "h")
            c = claims("dave")
            assert await login(cl, hs256(c)) == logged_in("dave", c["exp"])
            assert await cl.subscribe("x") == ok()
            assert await cl.channels() == ["x"]
    run(body())


def test_required_unauthenticated_closed_4401_after_timeout(node_factory, tmp_path):
    n = auth_node(node_factory, tmp_path, required=True, timeout_ms=600)

    async def body():
        async with Pool() as pool:
            t0 = time.monotonic()
            idle = await pool.connect(n)
            failed = await pool.connect(n)
            good = await pool.connect(n)
            assert await login(failed, "a.b.c") == fail("invalid token", "login")
            c = claims()
            assert await login(good, hs256(c)) == logged_in("alice", c["exp"])
            code, reason = await idle.wait_closed()
            elapsed = time.monotonic() - t0
            assert (code, reason) == (4401, "unauthorized")
            assert elapsed >= 0.5, elapsed
            assert await failed.wait_closed() == (4401, "unauthorized")
            # the one that authenticated in time stays
            await good.alive()
    run(body())


def test_not_required_anonymous_never_closed(node_factory, tmp_path):
    n = auth_node(node_factory, tmp_path, timeout_ms=200)

    async def body():
        async with Pool() as pool:
            anon = await pool.connect(n)
            marker = await pool.connect(n)
            # a marker with a token 29.5 s past exp: closed ~0.5 s later
            c = claims("m", ttl=-29)
            assert (await login(marker, hs256(c)))["data"]["ok"] is True
            assert await marker.wait_closed() == (4401, "token expired")
            # well past timeout_ms: the anonymous client is untouched
            assert await anon.subscribe("a") == ok()
    run(body())


# ---- expiry and refresh --------------------------------------------------------

def test_expiry_closes_4401_token_expired(node_factory, tmp_path):
    n = auth_node(node_factory, tmp_path)

    async def body():
        async with Pool() as pool:
            cl = await pool.connect(n)
            now = time.time()
            c = {"sub": "eve", "exp": int(now) - 28}  # accepted: 30 s of skew
            assert await login(cl, hs256(c)) == logged_in("eve", c["exp"])
            code, reason = await cl.wait_closed(timeout=10)
            closed = time.time()
            assert (code, reason) == (4401, "token expired")
            # not before exp + 30 s
            assert closed >= c["exp"] + 30, (closed, c["exp"])
    run(body())


def test_refresh_extends_keeps_user_and_failed_refresh_keeps_login(node_factory, tmp_path):
    n = auth_node(node_factory, tmp_path)

    async def body():
        async with Pool() as pool:
            cl = await pool.connect(n)
            marker = await pool.connect(n)
            short = {"sub": "fay", "exp": int(time.time()) - 28,
                     "channels": ["a"]}
            assert (await login(cl, hs256(short)))["data"]["ok"] is True
            assert (await login(marker, hs256(short)))["data"]["ok"] is True
            # a refresh for another user: refused, the login stays
            assert await login(cl, hs256(claims("mallory")), "r1") == \
                fail("invalid token", "r1")
            assert await login(cl, "garbage", "r2") == fail("invalid token", "r2")
            assert await cl.subscribe("a") == ok()
            assert await cl.subscribe("b") == fail("permission denied")
            # the same user, new token: replaces the patterns and the expiry
            long = claims("fay", channels=["b"])
            assert await login(cl, hs256(long), "r3") == logged_in("fay", long["exp"], "r3")
            assert await cl.subscribe("b") == ok()
            assert await cl.subscribe("c") == fail("permission denied")
            # the marker with the old expiry closes; the refreshed one not
            assert await marker.wait_closed() == (4401, "token expired")
            await cl.alive()
    run(body())


# ---- patterns ------------------------------------------------------------------

def test_permission_denied_in_order(node_factory, tmp_path):
    n = auth_node(node_factory, tmp_path)

    async def body():
        async with Pool() as pool:
            cl = await pool.connect(n)
            other = await pool.connect(n)
            c = claims("gus", channels=["chat.*", "news"], publish=["chat.general"])
            assert (await login(cl, hs256(c)))["data"]["ok"] is True
            # input checks first
            assert await cl.subscribe("") == fail("invalid channel name")
            assert await cl.publish("", "m") == fail("invalid channel name")
            assert await cl.request(command("send", {"channel": "x"}, "n")) == \
                fail("missing field: message", "n")
            # then permission denied, before any state check
            assert await cl.subscribe("news2", nonce="s") == fail("permission denied", "s")
            assert await cl.subscribe("chat") == fail("permission denied")
            assert await cl.publish("news", "m") == fail("permission denied")  # not subscribed either
            # then the state checks
            assert await cl.publish("chat.general", "m") == fail("not subscribed")
            assert await cl.subscribe("chat.") == ok()
            assert await cl.subscribe("chat.general") == ok()
            assert await cl.subscribe("news") == ok()
            assert await cl.publish("news", "m") == fail("permission denied")
            assert await other.subscribe("chat.general") == ok()
            assert await cl.publish("chat.general", "hi", nonce="p") == ok("p")
            assert await other.recv() == delivery("hi", "chat.general", "p")
            # an empty list allows nothing
            e = await pool.connect(n)
            assert (await login(e, hs256(claims("h", channels=[]))))["data"]["ok"]
            assert await e.subscribe("anything") == fail("permission denied")
            # absent lists allow everything
            f = await pool.connect(n)
            assert (await login(f, hs256(claims("i"))))["data"]["ok"]
            assert await f.subscribe("whatever") == ok()
            assert await f.publish("whatever", "m") == ok()
    run(body())


def test_issuer_and_audience(node_factory, tmp_path):
    n = auth_node(node_factory, tmp_path, issuer="https://idp", audience="relay")

    async def body():
        async with Pool() as pool:
            cl = await pool.connect(n)
            for bad in (claims(), claims(iss="https://idp"),
                        claims(iss="https://other", aud="relay"),
                        claims(iss="https://idp", aud=["x", "y"])):
                assert await login(cl, hs256(bad)) == fail("invalid token", "login")
            good = claims(iss="https://idp", aud=["x", "relay"])
            assert await login(cl, hs256(good)) == logged_in("alice", good["exp"])
            good2 = claims(iss="https://idp", aud="relay")
            assert await login(cl, hs256(good2)) == logged_in("alice", good2["exp"])
    run(body())


# ---- configuration -------------------------------------------------------------

def check(tmp_path, text):
    p = tmp_path / "node.toml"
    p.write_text(text)
    return subprocess.run([BIN, "--check", "-c", str(p)], capture_output=True,
                          text=True, timeout=10), p


def test_config_errors(tmp_path):
    r, p = check(tmp_path, "[auth]\nrequired = true\n")
    assert r.returncode == 2
    assert r.stderr.strip() == f"{p}:2: key 'auth.required': needs " \
        "auth.hs256_secret_file or auth.ed25519_public_keys"
    (tmp_path / "empty.key").write_bytes(b"\n")
    r, p = check(tmp_path, '[auth]\n\nhs256_secret_file = "empty.key"\n')
    assert r.returncode == 2
    assert r.stderr.strip() == \
        f"{p}:3: key 'auth.hs256_secret_file': the secret file is empty"
    r, p = check(tmp_path, '[auth]\nhs256_secret_file = "missing.key"\n')
    assert r.returncode == 2 and f"{p}:2: key 'auth.hs256_secret_file': cannot read" in r.stderr
    r, p = check(tmp_path, f'[auth]\ned25519_public_keys = [\n "{pub_b64(ED_KEY)}",\n "AAAA",\n]\n')
    assert r.returncode == 2
    assert r.stderr.strip() == f"{p}:4: key 'auth.ed25519_public_keys': " \
        "not a base64 Ed25519 public key (32 bytes)"
    (tmp_path / "good.key").write_bytes(b"k\n")
    r, p = check(tmp_path, f'[auth]\nhs256_secret_file = "good.key"\nrequired = true\n'
                 f'ed25519_public_keys = ["{pub_b64(ED_KEY)}"]\n')
    assert r.returncode == 0, r.stderr


def test_secret_never_logged(node_factory, tmp_path):
    n = auth_node(node_factory, tmp_path, secret=b"very-secret-bytes\n",
                  required=True, timeout_ms=300)

    async def body():
        async with Pool() as pool:
            cl = await pool.connect(n)
            tok = hs256(claims(), key=b"very-secret-bytes")
            assert (await login(cl, tok))["data"]["ok"] is True
            late = await pool.connect(n)
            assert await late.wait_closed() == (4401, "unauthorized")
            return tok
    tok = run(body())
    n.stop()
    log = n.log_text()
    assert "very-secret-bytes" not in log and tok not in log


# ---- mesh: each node its own keys -------------------------------------------

def test_mesh_each_node_verifies_with_its_own_keys(node_factory, tmp_path):
    secrets = {name: f"secret-of-{name}".encode() for name in "ABC"}
    nodes = {}
    for name, peers in (("A", ()), ("B", ("A",)), ("C", ("A", "B"))):
        f = tmp_path / f"{name}.key"
        f.write_bytes(secrets[name])
        text = mesh_config(name, peers=[(p, nodes[p].port) for p in peers])
        text += f'\n[auth]\nrequired = true\nhs256_secret_file = "{f}"\n'
        nodes[name] = node_factory.start(config_text=text)
        nodes[name].name = name
    wait_peers_sync(list(nodes.values()),
                    {"A": {"B", "C"}, "B": {"A", "C"}, "C": {"A", "B"}})

    async def body():
        async with Pool() as pool:
            cl = {k: await pool.connect(v) for k, v in nodes.items()}
            for k in "ABC":
                for other in "ABC":
                    if other != k:
                        tok = hs256(claims(k), key=secrets[other])
                        assert await login(cl[k], tok) == fail("invalid token", "login")
                c = claims(f"user-{k}")
                assert await login(cl[k], hs256(c, key=secrets[k])) == \
                    logged_in(f"user-{k}", c["exp"])
                assert await cl[k].subscribe("mesh") == ok()
            # a message crosses the mesh between clients authenticated by
            # different nodes with different keys
            async def delivered():
                assert await cl["A"].publish("mesh", "hello", nonce="m") == ok("m")
                return [await cl[k].recv() for k in "BC"]
            got = await delivered()
            assert got == [delivery("hello", "mesh", "m")] * 2
    run(body())


# ---- the command-line client -----------------------------------------------

def cli(*args, env=None, timeout=20):
    import os
    e = dict(os.environ)
    e.pop("WSRELAY_TOKEN", None)
    e.update(env or {})
    return subprocess.run([BIN, *args], capture_output=True, text=True,
                          timeout=timeout, env=e)


def test_cli_token_and_token_option(node_factory, tmp_path):
    n = auth_node(node_factory, tmp_path, required=True)
    keyf = tmp_path / "t1.key"  # written by auth_node
    url = n.ws_url()
    r = cli("token", "--secret-file", str(keyf), "--sub", "zed",
            "--channels", "chat.*", "--publish", "", "--ttl", "2h")
    assert r.returncode == 0, r.stderr
    tok = r.stdout.strip()
    h, p, s = tok.split(".")
    pay = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    assert pay["sub"] == "zed" and pay["channels"] == ["chat.*"] and pay["publish"] == []
    assert abs(pay["exp"] - pay["iat"] - 7200) == 0
    assert abs(pay["iat"] - time.time()) < 60
    assert s == b64u(hmac.new(
        SECRET.rstrip(b"\n"), f"{h}.{p}".encode(), hashlib.sha256).digest())

    # the node takes it; list/pub/sub authenticate first
    r = cli("list", url, "--token", tok)
    assert r.returncode == 0, r.stderr
    r = cli("list", url)
    assert r.returncode == 1 and "not authenticated" in r.stderr, r
    r = cli("list", url, env={"WSRELAY_TOKEN": tok})
    assert r.returncode == 0, r.stderr
    r = cli("list", url, "--token", hs256(claims(), key=b"nope"))
    assert r.returncode == 1
    assert "authentication refused: invalid token" in r.stderr, r.stderr
    r = cli("pub", url, "news", "m", "--token", tok)
    assert r.returncode == 1 and "permission denied" in r.stderr, r
    r = cli("pub", url, "chat.x", "m", "--token", tok)
    assert r.returncode == 1 and "permission denied" in r.stderr, r  # publish []
    full = cli("token", "--secret-file", str(keyf), "--sub", "zed").stdout.strip()
    r = cli("pub", url, "chat.x", "m", "--token", full)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("args,msg", [
    (["--sub", "a"], "--secret-file and --sub are required"),
    (["--secret-file", "/nonexistent"], "--secret-file and --sub are required"),
    (["--secret-file", "/nonexistent", "--sub", "a"], "cannot read --secret-file"),
    (["--secret-file", "K", "--sub", "a", "--ttl", "0"], "--ttl wants"),
    (["--secret-file", "K", "--sub", "a", "--ttl", "5w"], "--ttl wants"),
    (["--secret-file", "K", "--sub", "a", "--ttl", "1hh"], "--ttl wants"),
    (["--secret-file", "K", "--sub", ""], "--sub must be"),
    (["--secret-file", "K", "--sub", "a", "--bogus"], "unknown option"),
])
def test_cli_token_usage_errors(tmp_path, args, msg):
    k = tmp_path / "k"
    k.write_bytes(b"key")
    r = cli("token", *[str(k) if a == "K" else a for a in args])
    assert r.returncode == 2 and msg in r.stderr, r


def test_cli_token_ttl_suffixes(tmp_path):
    k = tmp_path / "k"
    k.write_bytes(b"key\n")
    for ttl, secs in (("90", 90), ("90s", 90), ("15m", 900), ("1h", 3600), ("7d", 604800)):
        r = cli("token", "--secret-file", str(k), "--sub", "a", "--ttl", ttl)
        assert r.returncode == 0, r.stderr
        p = r.stdout.strip().split(".")[1]
        pay = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
        assert pay["exp"] - pay["iat"] == secs, ttl
        assert "channels" not in pay and "publish" not in pay


# ---- SIGHUP reload swaps the keys -------------------------------------------

def reload_outcome(node, nth):
    import re
    import signal
    from conftest import wait_until_sync
    node.send_signal(signal.SIGHUP)
    rx = r"reload: config applied|reload failed"
    wait_until_sync(lambda: len(re.findall(rx, node.log_text())) >= nth,
                    what=f"reload #{nth} outcome")
    return node.log_text()


def test_reload_swaps_keys_logins_stay(node_factory, tmp_path):
    n = auth_node(node_factory, tmp_path, required=True)
    keyf = tmp_path / "t1.key"

    async def body():
        async with Pool() as pool:
            old = await pool.connect(n)
            c = claims("olga", channels=["r.*"])
            assert await login(old, hs256(c)) == logged_in("olga", c["exp"])
            keyf.write_bytes(b"the new key\n")
            assert "reload: config applied" in reload_outcome(n, 1)
            new = await pool.connect(n)
            assert await login(new, hs256(claims())) == fail("invalid token", "login")
            c2 = claims("pete")
            assert await login(new, hs256(c2, key=b"the new key")) == \
                logged_in("pete", c2["exp"])
            # the login made with the old key is untouched
            assert await old.subscribe("r.1") == ok()
            assert await old.subscribe("x") == fail("permission denied")
            # a broken key file fails the reload; the running keys stay
            keyf.write_bytes(b"")
            log = reload_outcome(n, 2)
            assert "key 'auth.hs256_secret_file': the secret file is empty" in log
            late = await pool.connect(n)
            assert (await login(late, hs256(claims(), key=b"the new key")))["data"]["ok"]
    run(body())


def test_metrics_count_auth(node_factory, tmp_path):
    n = auth_node(node_factory, tmp_path, required=True, timeout_ms=300)

    async def body():
        async with Pool() as pool:
            cl = await pool.connect(n)
            assert (await login(cl, hs256(claims(channels=["a"]))))["data"]["ok"]
            assert (await login(cl, "x.y.z"))["data"]["reason"] == "invalid token"
            assert (await login(cl, hs256(claims(ttl=-100))))["data"]["reason"] == \
                "token expired"
            assert await cl.subscribe("b") == fail("permission denied")
            idle = await pool.connect(n)
            assert await idle.wait_closed() == (4401, "unauthorized")
    run(body())
    m = metrics(n)
    assert m.get("wsrelay_auth_total", result="ok") == 1
    assert m.get("wsrelay_auth_total", result="invalid") == 1
    assert m.get("wsrelay_auth_total", result="expired") == 1
    assert m.get("wsrelay_permission_denied_total") == 1
    assert m.get("wsrelay_auth_closes_total", reason="unauthorized") == 1
    assert m.get("wsrelay_auth_closes_total", reason="token_expired") == 0
