"""What the browser tests need: Node.js, Debian's Chromium and
playwright-core installed by `npm ci` in tests/browser (scripts/deps.sh
test installs all three, so CI never skips)."""
import os
import shutil

import pytest

from conftest import SOURCE_DIR

BROWSER_DIR = SOURCE_DIR / "tests" / "browser"
CHROMIUM = "/usr/bin/chromium"


def browser_tools():
    """The node binary; skips without Node.js or Chromium, fails without
    playwright-core (an install step was missed)."""
    node = shutil.which("node")
    if not node:
        pytest.skip("Node.js is not installed (scripts/deps.sh test installs nodejs)")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is not installed (scripts/deps.sh test installs chromium)")
    assert (BROWSER_DIR / "node_modules" / "playwright-core").is_dir(), \
        "playwright-core is missing: run `npm ci` in tests/browser (scripts/deps.sh test does)"
    return node
