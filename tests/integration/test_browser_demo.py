"""
The demo chat (web/) in a real browser, across a node restart.

A two-node mesh (B dials A); tests/browser/demo.mjs drives Debian's
Chromium through playwright-core: a page on each node joins a
password-protected channel (a wrong password first: the page shows
"invalid password"), they chat both ways, then node B is stopped and
started again on its port while its page stays open, and the chat goes on
without a reload. The script and this test talk in lines (demo.mjs
lists them): the script prints READY-FOR-RESTART, this test stops B and
says STOPPED, the script prints OUTAGE-SEEN once page B's reconnect
attempts have failed, this test starts B again on its port, waits for
the link and says RESTARTED, the script prints PASS. Screenshots land in
$WSRELAY_BUILD_DIR/screenshots/; the script's log beside the node logs.

Skips only when node or /usr/bin/chromium is missing (`scripts/deps.sh
test` installs both, and runs `npm ci` in tests/browser).
"""

import queue
import subprocess
import threading
import time

from conftest import BUILD_DIR, LOG_DIR
from browserutil import BROWSER_DIR, browser_tools
from meshutil import restart, start_mesh, wait_peers_sync

SHOT_DIR = BUILD_DIR / "screenshots"

# browser start, two pages, mesh convergence: generous for a loaded
# 2-core machine and a sanitizer build
READY_S = 120.0
PASS_S = 120.0




class Script:
    """demo.mjs as a child process: its stdout lines in a queue, its
    stderr in a log file."""

    def __init__(self, argv, log_path):
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=BROWSER_DIR, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            self.lines.put(raw.decode("utf-8", "replace").strip())
        self.lines.put(None)  # EOF

    def log_tail(self, n=40):
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-n:])

    def expect(self, want, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                line = "<timeout>"
            if line == want:
                return
            if line is None or line == "<timeout>":
                raise AssertionError(
                    f"demo.mjs: no {want!r} ({'exited ' + str(self.proc.poll()) if line is None else f'{timeout:.0f}s passed'}); "
                    f"stdout so far {self.seen}; log {self.log_path}, last lines:\n{self.log_tail()}")
            self.seen.append(line)

    def tell(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def finish(self, timeout):
        """Waits for the exit; returns the status (None if killed)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self):
        if self.proc.poll() is None:
            # SIGTERM first: the browser goes down with playwright's pipe
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        self._log.close()


def test_demo_chat_across_a_node_restart(node_factory):
    node = browser_tools()
    for old in SHOT_DIR.glob("demo-*.png"):
        old.unlink()  # what the checks below find is from this run
    a, b = start_mesh(node_factory, ["A", "B"], edges=[("B", "A")])
    script = Script([node, "demo.mjs", f"http://127.0.0.1:{a.port}/",
                     f"http://127.0.0.1:{b.port}/", str(SHOT_DIR)],
                    LOG_DIR / f"{node_factory.test_id}.demo.log")
    try:
        script.expect("READY-FOR-RESTART", READY_S)
        problems = b.stop()
        assert not problems, "\n".join(problems)
        # B stays down until page B has seen a reconnect attempt fail
        script.tell("STOPPED")
        script.expect("OUTAGE-SEEN", READY_S)
        b2 = restart(node_factory, b)
        assert b2.port == b.port
        wait_peers_sync([a, b2], {"A": {"B"}, "B": {"A"}})
        script.tell("RESTARTED")
        script.expect("PASS", PASS_S)
        rc = script.finish(30)
        assert rc == 0, f"demo.mjs exited {rc}; log {script.log_path}:\n{script.log_tail()}"
    finally:
        script.stop()
    for name in ("demo-A-chat", "demo-B-chat", "demo-B-invalid-password",
                 "demo-B-reconnecting", "demo-A-after-restart",
                 "demo-B-after-restart"):
        shot = SHOT_DIR / f"{name}.png"
        assert shot.is_file() and shot.stat().st_size > 1000, shot
