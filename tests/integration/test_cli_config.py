"""
Command line and configuration: --version, --help, --check with good and
malformed files (errors are one line "FILE:LINE: key 'KEY': WHAT"), unknown
options, and the refusal to listen on a non-loopback address without TLS.
"""

import re
import signal
import subprocess

import pytest

from conftest import BIN, SOURCE_DIR, http_get, ok, run, Pool


def wsrelay(*args, timeout=10):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout)


def project_version():
    text = (SOURCE_DIR / "CMakeLists.txt").read_text()
    m = re.search(r"project\(\s*wsrelay\s+VERSION\s+([0-9.]+)", text)
    assert m, "no project(wsrelay VERSION ...) in CMakeLists.txt"
    return m.group(1)


def test_version():
    r = wsrelay("--version")
    assert r.returncode == 0, r
    assert project_version() in r.stdout, r.stdout
    assert len(r.stdout.strip().splitlines()) >= 1


def test_help():
    r = wsrelay("--help")
    assert r.returncode == 0, r
    out = r.stdout
    assert "usage" in out.lower(), out
    assert "-c" in out and "--check" in out and "--version" in out, out


@pytest.mark.parametrize("args", [["--bogus"], ["-x"], ["--check", "-c"], ["-c"]])
def test_bad_command_line(args):
    r = wsrelay(*args)
    assert r.returncode != 0, r
    assert r.stderr.strip(), "no error message"


GOOD = """\
# a complete single-node configuration
[node]
name = "t1"
listen = "127.0.0.1:0"

[tls]
insecure = false

[limits]
max_message_bytes = 65536
max_queue_bytes = 1048576
max_subscriptions = 1024
max_clients = 100000
client_ping_interval_ms = 30000

[health]
max_latency_ms = 10

[log]
level = "info"
"""


@pytest.mark.parametrize("text", [
    GOOD,
    "",
    "[node]\nname = \"only-a-name\"\n",
    '[log]\nlevel = "debug"\n',
    '[log]\nlevel = "warn"\n',
    '[log]\nlevel = "error"\n',
    '[node]\nlisten = "0.0.0.0:8080"\n[tls]\ninsecure = true\n',
])
def test_check_good_config(tmp_path, text):
    p = tmp_path / "good.toml"
    p.write_text(text)
    r = wsrelay("--check", "-c", str(p))
    assert r.returncode == 0, (r.returncode, r.stderr)


# (file text, line of the error, key named in the error)
BAD = [
    pytest.param("[node]\nname = \"t1\"\n\n[limits]\nmax_clent = 5\n", 5, "limits.max_clent",
                 id="unknown-key"),
    pytest.param("bogus = 1\n[node]\nname = \"t1\"\n", 1, "bogus", id="unknown-top-level-key"),
    pytest.param("[node]\nname = \"t1\"\n[limits]\nmax_clients = \"many\"\n", 4,
                 "limits.max_clients", id="string-for-int"),
    pytest.param("[limits]\nmax_clients = 1.5\n", 2, "limits.max_clients", id="float-for-int"),
    pytest.param("[node]\nname = 5\n", 2, "node.name", id="int-for-string"),
    pytest.param("[tls]\ninsecure = \"yes\"\n", 2, "tls.insecure", id="string-for-bool"),
    pytest.param("[log]\nlevel = 3\n", 2, "log.level", id="int-for-level"),
    pytest.param("[log]\nlevel = \"loud\"\n", 2, "log.level", id="bad-level"),
    pytest.param("[node]\nname = \"t1\"\nlisten = \"127.0.0.1\"\n", 3, "node.listen",
                 id="listen-no-port"),
    pytest.param("[node]\nlisten = \"127.0.0.1:70000\"\n", 2, "node.listen",
                 id="listen-port-range"),
    pytest.param("[node]\nlisten = \"127.0.0.1:http\"\n", 2, "node.listen",
                 id="listen-port-not-number"),
    pytest.param("[node]\nlisten = \"\"\n", 2, "node.listen", id="listen-empty"),
    pytest.param("# comment\n\n[node]\n# another\nlisten = 8080\n", 5, "node.listen",
                 id="listen-int-after-comments"),
    pytest.param("[health]\nmax_latency_ms = \"10\"\n", 2, "health.max_latency_ms",
                 id="health-string"),
]


def check_error(stderr, path, line, key=None):
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected a one-line error, got:\n{stderr}"
    if key is None:
        rx = re.escape(str(path)) + rf":{line}: \S"
    else:
        rx = re.escape(str(path)) + rf":{line}: key '{re.escape(key)}': \S"
    assert re.search(rx, lines[0]), f"{lines[0]!r} does not match {rx!r}"


@pytest.mark.parametrize("text,line,key", BAD)
def test_check_bad_config(tmp_path, text, line, key):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    r = wsrelay("--check", "-c", str(p))
    assert r.returncode != 0, r
    check_error(r.stderr, p, line, key)


@pytest.mark.parametrize("text,lines", [
    pytest.param("[node]\nname = \"unterminated\n", "2", id="unterminated-string"),
    pytest.param("[node\nname = \"x\"\n", "1", id="bad-table-header"),
    pytest.param("[node]\nname = \"a\"\nname = \"b\"\n", "3", id="duplicate-key"),
    pytest.param("[node]\nname = \"a\"\n[node]\nlisten = \"127.0.0.1:0\"\n", "3",
                 id="duplicate-table"),
    pytest.param("[nope]\nx = 1\n", "(1|2)", id="unknown-table"),
    pytest.param("[node]\nname\n", "2", id="key-without-value"),
    pytest.param("[limits]\nmax_clients = \n", "2", id="missing-value"),
])
def test_check_syntax_errors(tmp_path, text, lines):
    p = tmp_path / "syntax.toml"
    p.write_text(text)
    r = wsrelay("--check", "-c", str(p))
    assert r.returncode != 0, r
    errs = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(errs) == 1, f"expected a one-line error, got:\n{r.stderr}"
    assert re.search(re.escape(str(p)) + rf":{lines}: \S", errs[0]), errs[0]


def test_check_missing_file(tmp_path):
    p = tmp_path / "does-not-exist.toml"
    r = wsrelay("--check", "-c", str(p))
    assert r.returncode != 0
    assert str(p) in r.stderr, r.stderr


def test_bad_config_refuses_to_start(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[node]\nname = \"t1\"\nlisten = \"127.0.0.1:0\"\n[limits]\nmax_clients = \"x\"\n")
    r = wsrelay("-c", str(p))
    assert r.returncode != 0, r
    assert "listening on" not in r.stderr
    assert re.search(re.escape(str(p)) + r":5: key 'limits\.max_clients': \S", r.stderr), r.stderr


# ---------------------------------------------------------------------------
# non-loopback listening
# ---------------------------------------------------------------------------

def test_non_loopback_without_tls_refuses_to_start(node_factory):
    n = node_factory.start(wait=False, node={"listen": "0.0.0.0:0"})
    n.expect_clean_exit = False
    rc = n.wait_exit(10)
    assert rc is not None, "node kept running on 0.0.0.0 without TLS"
    assert rc != 0
    assert n.port is None, "node logged 'listening on'"
    text = n.log_text().lower()
    assert "insecure" in text or "tls" in text, n.log_text()


def test_non_loopback_with_insecure_starts_and_warns(node_factory):
    n = node_factory.start(node={"listen": "0.0.0.0:0"}, tls={"insecure": True})
    assert n.scheme == "http"
    warn = [l for l in n.log_text().splitlines() if "insecure" in l.lower()]
    assert warn, "no warning about the insecure listener"
    assert any(re.search(r"\bwarn", l, re.I) for l in warn), warn
    assert http_get(n, "/health")[0] == 200

    async def body():
        async with Pool() as pool:
            c = await pool.connect(n)
            assert await c.list() == ok(channels=[])
    run(body())


def test_loopback_without_tls_does_not_warn(node):
    assert node.scheme == "http"
    assert node.host == "127.0.0.1"
    assert "insecure" not in node.log_text().lower()


def test_log_lines_format(node):
    """Every stderr line is "TIMESTAMP LEVEL message"."""
    async def body():
        async with Pool() as pool:
            c = await pool.connect(node)
            assert await c.subscribe("log-format") == ok()
    run(body())
    node.send_signal(signal.SIGTERM)
    assert node.wait_exit() == 0
    lines = node.log_text().splitlines()
    assert lines
    rx = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)? +"
                    r"(debug|info|warn|warning|error) +\S", re.I)
    bad = [l for l in lines if not rx.match(l)]
    assert not bad, bad
