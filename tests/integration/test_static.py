"""
Static files (node/static.c): the [web] root served at / for GET and HEAD,
the client library embedded at build time at /lib/, and what must never
be served: anything outside the root (.., %2e%2e, symlinks), dotfiles,
directory listings, special files, files over the 4 MiB cap. The node's
own endpoints keep priority over files of the same name. [web] root
errors are config errors; root = "" serves no files.

Requests that must reach the node byte for byte (traversal attempts) go
over a raw socket: no client library normalises them first.
"""

import http.client
import os
import re
import socket
import ssl
import subprocess

import pytest

from conftest import BIN, DEADLINE, SOURCE_DIR, Pool, http_get, ok, run

SECRET = b"secret-outside-the-root-7f3a"
FILES = {
    # name: (bytes, expected Content-Type)
    "index.html": (b"<!doctype html><title>t</title><p>index", "text/html; charset=utf-8"),
    "page.htm": (b"<p>htm", "text/html; charset=utf-8"),
    "app.js": (b"export const x = 1;\n", "text/javascript; charset=utf-8"),
    "mod.mjs": (b"export default 2;\n", "text/javascript; charset=utf-8"),
    "style.css": (b"body { color: red }\n", "text/css; charset=utf-8"),
    "data.json": (b'{"a": 1}\n', "application/json"),
    "app.js.map": (b'{"version": 3}\n', "application/json"),
    "logo.svg": (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),
    "pic.png": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "image/png"),
    "favicon.ico": (b"\x00\x00\x01\x00" + bytes(60), "image/x-icon"),
    "notes.txt": (b"plain text\n", "text/plain; charset=utf-8"),
    "font.woff2": (b"wOF2" + bytes(100), "font/woff2"),
    "UPPER.HTML": (b"<p>upper", "text/html; charset=utf-8"),
    "blob.bin": (b"\x00\x01\x02", "application/octet-stream"),
    "noext": (b"no extension", "application/octet-stream"),
    "empty.txt": (b"", "text/plain; charset=utf-8"),
    "a b.txt": (b"with a space", "text/plain; charset=utf-8"),
    "x%41.txt": (b"a literal percent", "text/plain; charset=utf-8"),
    "sub/index.html": (b"<p>sub index", "text/html; charset=utf-8"),
    "sub/deep/file.txt": (b"deep", "text/plain; charset=utf-8"),
}


def make_root(base):
    """A web root under base/site, with SECRET beside it (outside)."""
    root = base / "site"
    for name, (data, _) in FILES.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    (root / "emptydir").mkdir()
    (root / ".hidden").write_bytes(b"dotfile")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_bytes(b"dotdir")
    (base / "secret.txt").write_bytes(SECRET)
    os.symlink(base / "secret.txt", root / "escape.txt")
    os.symlink(base, root / "up")
    os.symlink(root / "notes.txt", root / "alias.txt")
    return root


@pytest.fixture
def site(tmp_path):
    return make_root(tmp_path)


@pytest.fixture
def web(node_factory, site):
    return node_factory.start(web={"root": str(site)})


def raw(node, path, method="GET", headers=None):
    """One request, byte for byte, on its own connection: (status,
    {lowercase header: value}, body); status 0 when the node hung up
    without an answer."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{node.port}",
             "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", node.port), timeout=DEADLINE) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data:
        return 0, {}, b""  # lws hung up without an answer
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *hdrs = head.decode("latin-1").split("\r\n")
    hmap = {}
    for h in hdrs:
        k, _, v = h.partition(":")
        hmap[k.strip().lower()] = v.strip()
    return int(status_line.split()[1]), hmap, body


def head(node, path):
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=DEADLINE)
    try:
        conn.request("HEAD", path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def assert_not_found(status, body):
    assert status == 404, (status, body[:200])
    assert SECRET not in body and b"root:" not in body, body[:200]


# --------------------------------------------------------------------------
# serving
# --------------------------------------------------------------------------

def test_content_types_and_bodies(web):
    for name, (data, ctype) in FILES.items():
        path = "/" + name.replace(" ", "%20").replace("%41", "%2541")
        status, hdrs, body = raw(web, path)
        assert status == 200, (name, status, body[:200])
        assert hdrs["content-type"] == ctype, (name, hdrs)
        assert body == data, name
        assert int(hdrs["content-length"]) == len(data), (name, hdrs)
        assert hdrs["cache-control"] == "no-cache", (name, hdrs)
        assert hdrs["x-content-type-options"] == "nosniff", (name, hdrs)


def test_index_and_directories(web):
    status, hdrs, body = http_get(web, "/")
    assert status == 200 and body == FILES["index.html"][0], (status, body)
    assert hdrs["content-type"] == "text/html; charset=utf-8"
    status, _, body = http_get(web, "/sub/")
    assert status == 200 and body == FILES["sub/index.html"][0], (status, body)
    # no listings: a directory is its index.html or nothing
    for path in ("/sub", "/sub/deep/", "/sub/deep", "/emptydir/", "/emptydir"):
        status, _, body = http_get(web, path)
        assert status == 404, (path, status, body[:200])
        assert b"file.txt" not in body, path


def test_missing_files_are_404(web):
    for path in ("/nope.html", "/sub/nope", "/nope/", "/index.html/x",
                 "/lib/other.js", "/lib/"):
        status, hdrs, body = http_get(web, path)
        assert status == 404, (path, status)
        assert body == b"not found\n", (path, body)


def test_percent_decoding_is_done_once(web):
    # %61 is "a": decoded; %2541 is a literal "%41", not "A"
    assert raw(web, "/%6eotes.txt")[2] == FILES["notes.txt"][0]
    assert raw(web, "/x%2541.txt")[2] == FILES["x%41.txt"][0]
    assert raw(web, "/a%20b.txt")[2] == FILES["a b.txt"][0]
    status, _, body = raw(web, "/notes.txt?v=1&x=../../etc/passwd")
    assert status == 200 and body == FILES["notes.txt"][0]


TRAVERSALS = [
    "/../../etc/passwd",
    "/../secret.txt",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/..%2fsecret.txt",
    "/..%2f..%2f..%2fetc%2fpasswd",
    "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/%2e%2e%2fsecret.txt",
    "/sub/../../secret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "/sub/..%2f..%2fsecret.txt",
    "/%252e%252e/secret.txt",
    "/%252e%252e%252fsecret.txt",
    "/..%5csecret.txt",
    "/..\\secret.txt",
    "/.%2e/secret.txt",
    "//etc/passwd",
    "/./../secret.txt",
    "/escape.txt",
    "/up/secret.txt",
    "/.hidden",
    "/.git/config",
    "/sub/.%2e/.hidden",
    "/%2ehidden",
    "/%00notes.txt",
    "/notes.txt%00.png",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_nothing_outside_the_root(web, path):
    status, _, body = raw(web, path)
    # 404 from the node; lws itself may refuse a malformed path (400) or
    # hang up (0); never a file
    assert status in (0, 400, 404), (status, body[:200])
    assert SECRET not in body and b"root:" not in body and b"dot" not in body
    # and the node is fine
    assert http_get(web, "/notes.txt")[0] == 200


def test_dot_segments_fold_inside_the_root(web):
    """lws folds "." and ".." segments (decoded or not) before the node
    sees the path; what stays inside the root is served."""
    for path in ("/sub/../notes.txt", "/sub/%2e%2e/notes.txt",
                 "/./notes.txt", "/sub/./deep/../../notes.txt",
                 "//notes.txt"):
        status, _, body = raw(web, path)
        assert status == 200 and body == FILES["notes.txt"][0], (path, status)


def test_symlinks_resolving_inside_the_root_are_served(web):
    # alias.txt -> notes.txt; up -> the root's parent, so up/site/ is the root
    for path in ("/alias.txt", "/up/site/notes.txt"):
        status, _, body = raw(web, path)
        assert status == 200 and body == FILES["notes.txt"][0], (path, status)


def test_special_files_are_not_served_big_ones_are(node_factory, site):
    os.mkfifo(site / "pipe.txt")
    with open(site / "huge.txt", "wb") as f:
        f.truncate(6 * 1024 * 1024 + 1)       # sparse: streamed, not read whole
    with open(site / "big.bin", "wb") as f:
        f.write(os.urandom(1024 * 1024))
    n = node_factory.start(web={"root": str(site)})
    # a FIFO with no writer must not stall the loop: 404, and the node answers
    assert_not_found(*raw(n, "/pipe.txt")[::2])
    status, hdrs, body = raw(n, "/huge.txt")
    assert status == 200 and len(body) == 6 * 1024 * 1024 + 1 \
        and body.count(0) == len(body)
    status, hdrs, body = raw(n, "/big.bin")
    assert status == 200 and body == (site / "big.bin").read_bytes()
    assert http_get(n, "/health")[0] == 200


def rss_kib(node):
    with open(f"/proc/{node.proc.pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def request_bytes(path):
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def test_a_slow_reader_gets_the_whole_file(node_factory, site):
    """Issue 10: a 4 MB file read at 64 KiB/s arrived truncated (2.7 of
    4.2 MB, then EOF). Here the first 512 KiB are read at 64 KiB/s (8 s,
    the reader's pace is the test's subject, not a synchronisation), the
    rest as fast as it comes; every byte must arrive."""
    import time
    data = os.urandom(4 * 1024 * 1024 + 123)
    (site / "four.bin").write_bytes(data)
    n = node_factory.start(web={"root": str(site)})
    s = socket.create_connection(("127.0.0.1", n.port), timeout=DEADLINE)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(request_bytes("/four.bin"))
    got = bytearray()
    t0 = time.monotonic()
    while len(got) < 512 * 1024:
        chunk = s.recv(8192)
        assert chunk, f"EOF after {len(got)} bytes"
        got += chunk
        ahead = len(got) / 65536 - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)
    head_end = got.find(b"\r\n\r\n")
    assert got.startswith(b"HTTP/1.1 200"), bytes(got[:100])
    want = int(re.search(rb"content-length: (\d+)",
                         bytes(got[:head_end]).lower()).group(1))
    assert want == len(data)
    while len(got) - head_end - 4 < want:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        got += chunk
    s.close()
    body = bytes(got[head_end + 4:])
    assert len(body) == len(data), (len(body), len(data))
    assert body == data


def test_unread_requests_cost_no_copy_each(node_factory, site):
    """Issue 10: 400 unread requests for a 4 MB file took RSS to 1.05 GB.
    Streamed from disk, each costs its socket buffers only."""
    (site / "four.bin").write_bytes(os.urandom(4 * 1024 * 1024))
    n = node_factory.start(web={"root": str(site)},
                           limits={"max_pending_per_ip": 1000})
    before = rss_kib(n)
    socks = []
    try:
        for _ in range(400):
            s = socket.create_connection(("127.0.0.1", n.port),
                                         timeout=DEADLINE)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(request_bytes("/four.bin"))
            socks.append(s)
        # every request is being answered: the first bytes came back
        for s in socks:
            assert s.recv(16).startswith(b"HTTP/1.1 200")
        assert http_get(n, "/health")[0] == 200
        grown = rss_kib(n) - before
        # 400 copies were 1.6 GB; what is left is per-connection state
        assert grown < 32 * 1024, f"RSS grew {grown} KiB"
    finally:
        for s in socks:
            s.close()
    assert http_get(n, "/health")[0] == 200


def test_head(web):
    status, hdrs, body = head(web, "/app.js")
    assert status == 200 and body == b"", (status, body)
    assert int(hdrs["content-length"]) == len(FILES["app.js"][0])
    assert hdrs["content-type"] == "text/javascript; charset=utf-8"
    assert hdrs["cache-control"] == "no-cache"
    assert head(web, "/")[0] == 200
    assert head(web, "/nope.txt")[0] == 404
    assert head(web, "/../secret.txt")[0] in (400, 404)
    status, hdrs, body = head(web, "/lib/wsrelay.js")
    assert status == 200 and body == b"" and int(hdrs["content-length"]) > 0
    # /health answers HEAD too (a load balancer's check); the node's
    # other endpoints are GET only
    status, hdrs, body = head(web, "/health")
    assert status == 200 and body == b"" and int(hdrs["content-length"]) > 0
    assert head(web, "/metrics")[0] == 405


def test_head_then_get_on_one_connection(web):
    conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=DEADLINE)
    try:
        for method in ("HEAD", "GET", "HEAD", "GET"):
            conn.request(method, "/notes.txt")
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200
            assert body == (FILES["notes.txt"][0] if method == "GET" else b"")
    finally:
        conn.close()


# --------------------------------------------------------------------------
# the embedded client library
# --------------------------------------------------------------------------

LIB = {
    "/lib/wsrelay.js": ("wsrelay.js", "text/javascript; charset=utf-8"),
    "/lib/wsrelay.d.ts": ("wsrelay.d.ts", "text/plain; charset=utf-8"),
}


def check_lib(node):
    for path, (fname, ctype) in LIB.items():
        status, hdrs, body = http_get(node, path)
        assert status == 200, (path, status)
        assert hdrs["content-type"] == ctype, (path, hdrs)
        assert hdrs["cache-control"] == "no-cache", (path, hdrs)
        # pages of another origin may import the node's library
        assert hdrs["access-control-allow-origin"] == "*", (path, hdrs)
        src = SOURCE_DIR / "clients" / "js" / fname
        if src.exists():
            # embedded at build time: the build this test runs is current
            assert body == src.read_bytes(), f"{path} differs from {src}: rebuild?"
        else:
            assert body.startswith(b"/*") and b"missing at build time" in body, body


def test_library_is_served(web):
    check_lib(web)
    body = http_get(web, "/lib/wsrelay.js")[2]
    if (SOURCE_DIR / "clients" / "js" / "wsrelay.js").exists():
        assert b"export class WsRelay" in body


def test_library_wins_over_a_file_of_its_name(node_factory, site):
    (site / "lib").mkdir()
    (site / "lib" / "wsrelay.js").write_bytes(b"// an impostor")
    (site / "lib" / "other.js").write_bytes(b"// other")
    n = node_factory.start(web={"root": str(site)})
    check_lib(n)
    assert http_get(n, "/lib/other.js")[2] == b"// other"


# --------------------------------------------------------------------------
# the node's endpoints come first
# --------------------------------------------------------------------------

def test_endpoints_keep_priority(node_factory, site):
    for name in ("health", "metrics", "connect", "node"):
        (site / name).write_bytes(b"IMPOSTOR " + name.encode())
    (site / "api").mkdir()
    (site / "api" / "node").write_bytes(b"IMPOSTOR api/node")
    n = node_factory.start(web={"root": str(site)})

    status, hdrs, body = http_get(n, "/health")
    assert status == 200 and hdrs["content-type"] == "application/json"
    assert b"IMPOSTOR" not in body and b'"node":"t1"' in body
    status, hdrs, body = http_get(n, "/metrics")
    assert status == 200 and hdrs["content-type"].startswith("text/plain; version=0.0.4")
    assert b"IMPOSTOR" not in body
    status, hdrs, body = http_get(n, "/api/node")
    assert status == 200 and hdrs["content-type"] == "application/json"
    assert b"IMPOSTOR" not in body
    # the WebSocket paths are never files, upgraded or not
    for path in ("/connect", "/node"):
        status, _, body = http_get(n, path)
        assert status == 404 and b"IMPOSTOR" not in body, (path, status, body)

    async def body_():
        async with Pool() as pool:
            c = await pool.connect(n)
            assert await c.list(nonce="n1") == ok("n1", channels=[])
    run(body_())


# --------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------

def wsrelay_check(path):
    return subprocess.run([BIN, "--check", "-c", str(path)], capture_output=True,
                          text=True, timeout=10)


@pytest.mark.parametrize("value, what", [
    ('"missing-dir"', "cannot use '{dir}/missing-dir': No such file or directory"),
    ('"site/notes.txt"', "'{dir}/site/notes.txt' is not a directory"),
    ("5", "expected a string, got an integer"),
    ("true", "expected a string, got a boolean"),
])
def test_root_errors(tmp_path, site, value, what):
    p = tmp_path / "node.toml"
    p.write_text(f'[node]\nname = "t1"\n\n[web]\nroot = {value}\n')
    r = wsrelay_check(p)
    assert r.returncode == 2, r
    want = f"{p}:5: key 'web.root': " + what.format(dir=tmp_path)
    assert r.stderr.strip() == want, (r.stderr, want)


def test_unknown_web_key(tmp_path):
    p = tmp_path / "node.toml"
    p.write_text('[web]\nroot = ""\nlisting = true\n')
    r = wsrelay_check(p)
    assert r.returncode == 2, r
    assert r.stderr.strip() == f"{p}:3: key 'web.listing': unknown key", r.stderr


def test_relative_root_is_taken_from_the_config_folder(node_factory, site, tmp_path):
    # the node runs elsewhere; "site" is beside the config file
    n = node_factory.start(web={"root": "site"})
    assert n.config_path.parent == tmp_path
    assert http_get(n, "/notes.txt")[2] == FILES["notes.txt"][0]
    deeper = tmp_path / "conf"
    deeper.mkdir()
    cfg = deeper / "n.toml"
    cfg.write_text('[web]\nroot = "../site/sub"\n')
    assert wsrelay_check(cfg).returncode == 0


def test_empty_root_disables_static_files(node_factory, site):
    n = node_factory.start(web={"root": ""})
    for path in ("/", "/index.html", "/app.js", "/sub/"):
        status, _, body = http_get(n, path)
        assert status == 404 and body == b"not found\n", (path, status)
    assert head(n, "/")[0] == 404
    # the library and the endpoints stay
    check_lib(n)
    assert http_get(n, "/health")[0] == 200


def test_default_root_is_the_demo(node):
    """Without [web], the node serves the source tree's web/ (the demo)."""
    web = SOURCE_DIR / "web"
    status, hdrs, body = http_get(node, "/")
    assert status == 200, status
    assert hdrs["content-type"] == "text/html; charset=utf-8"
    assert body == (web / "index.html").read_bytes()
    assert b'"/lib/wsrelay.js"' in (web / "app.js").read_bytes()
    for name, ctype in (("app.js", "text/javascript; charset=utf-8"),
                        ("style.css", "text/css; charset=utf-8")):
        status, hdrs, body = http_get(node, "/" + name)
        assert status == 200 and hdrs["content-type"] == ctype, (name, status, hdrs)
        assert body == (web / name).read_bytes()
    # every local resource the page names is served
    html = (web / "index.html").read_text()
    for ref in re.findall(r'(?:src|href)="([^"#:]+)"', html):
        path = ref if ref.startswith("/") else "/" + ref
        assert http_get(node, path)[0] == 200, ref


# --------------------------------------------------------------------------
# over TLS: HTTP/2 (ALPN) and HTTP/1.1, with curl
# --------------------------------------------------------------------------


def curl(node, certf, proto, path, out, *extra):
    """(HTTP version, status) of one request; the body goes to out."""
    r = subprocess.run(
        ["curl", "-sS", proto, "--cacert", str(certf), "-o", str(out),
         "-w", "%{http_version} %{http_code}", *extra,
         f"https://127.0.0.1:{node.port}{path}"],
        capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    version, status = r.stdout.split()
    return version, int(status)


def test_https_over_http2_and_http1(node_factory, site, tls_cert, tmp_path):
    """HTTP/2 caps a DATA frame at 16 KiB: bodies over it go as frames."""
    certf, keyf = tls_cert
    big = os.urandom(300_000)
    (site / "big.bin").write_bytes(big)
    lib = http_get(node_factory.start(name="plain"), "/lib/wsrelay.js")[2]
    assert len(lib) > 0
    n = node_factory.start(ssl_context=ssl.create_default_context(cafile=str(certf)),
                           tls={"cert": str(certf), "key": str(keyf)},
                           web={"root": str(site)})
    out = tmp_path / "out"
    for proto, version in (("--http2", "2"), ("--http1.1", "1.1")):
        for path, want in (("/big.bin", big), ("/lib/wsrelay.js", lib),
                           ("/notes.txt", FILES["notes.txt"][0]),
                           ("/", FILES["index.html"][0])):
            assert curl(n, certf, proto, path, out) == (version, 200), (proto, path)
            assert out.read_bytes() == want, (proto, path)
        assert curl(n, certf, proto, "/nope", out) == (version, 404)
        assert curl(n, certf, proto, "/big.bin", out, "-I") == (version, 200)
        assert f"content-length: {len(big)}" in out.read_text().lower()
