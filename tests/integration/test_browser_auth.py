"""
The demo chat on a node with [auth] required, in Chromium
(tests/browser/auth.mjs): joining without a token shows the dev-token
field, a bad token is refused with "invalid token", tokens minted with
`wsrelay token` sign two pages in and they chat. Skips only when node or
/usr/bin/chromium is missing (`scripts/deps.sh test` installs both).
"""

import subprocess

from conftest import BIN, BUILD_DIR, LOG_DIR
from browserutil import BROWSER_DIR, browser_tools

SHOT_DIR = BUILD_DIR / "screenshots"


def mint(keyf, sub):
    r = subprocess.run([BIN, "token", "--secret-file", str(keyf), "--sub",
                        sub, "--ttl", "1h"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_demo_chat_signs_in_with_a_dev_token(node_factory, tmp_path):
    node = browser_tools()
    keyf = tmp_path / "hs256.key"
    keyf.write_bytes(b"browser-test-secret-0123456789abcdef\n")
    n = node_factory.start(auth={"hs256_secret_file": str(keyf),
                                 "required": True, "timeout_ms": 60000})
    log = LOG_DIR / f"{node_factory.test_id}.auth.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as errf:
        r = subprocess.run([node, "auth.mjs", f"http://127.0.0.1:{n.port}/",
                            mint(keyf, "alice"), mint(keyf, "bob"),
                            str(SHOT_DIR)], cwd=BROWSER_DIR, stdout=subprocess.PIPE,
                           stderr=errf, timeout=180)
    assert r.returncode == 0 and r.stdout.decode().strip() == "PASS", \
        f"auth.mjs exited {r.returncode}; log {log}:\n" + \
        "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    for name in ("auth-A-token-form", "auth-A-token-refused", "auth-B-chat"):
        shot = SHOT_DIR / f"{name}.png"
        assert shot.is_file() and shot.stat().st_size > 1000, shot
