"""
Install and package: the .deb that `cpack -G DEB` (the `package` target)
builds from a build made to be installed (prefix /usr,
WSRELAY_INSTALL_LAYOUT=ON), unpacked with `dpkg -x` into a scratch root:
the file layout, the control data (Depends, conffiles, maintainer
scripts, whose postinst runs against logging stand-ins for adduser and
friends), the installed binary's --version and --check on the installed
node.toml, the unit through `systemd-analyze verify`, and `cmake
--install` keeping an existing node.toml.

The package is built here, in a temporary folder (a fresh configure and
build of the node alone, about 20 s on two cores): nothing is installed
on this machine.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import SOURCE_DIR

VERSION = re.search(r"project\(\s*wsrelay\s+VERSION\s+([0-9.]+)",
                    (SOURCE_DIR / "CMakeLists.txt").read_text()).group(1)
WEB_ROOT = "/usr/share/wsrelay/web"
UNIT = "lib/systemd/system/wsrelay.service"
CONF = "etc/wsrelay/node.toml"
NEEDED = ["cmake", "cpack", "dpkg-deb", "dpkg-shlibdeps", "systemd-analyze"]


def sh(*args, timeout=120, **kw):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout, **kw)
    assert r.returncode == 0, f"{args}: {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def pkg(tmp_path_factory):
    missing = [p for p in NEEDED if not shutil.which(p)]
    assert not missing, f"missing {missing}: run scripts/deps.sh test"
    top = tmp_path_factory.mktemp("pkg")
    build = top / "build"
    sh("cmake", "-S", SOURCE_DIR, "-B", build, "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
       "-DCMAKE_INSTALL_PREFIX=/usr", "-DWSRELAY_INSTALL_LAYOUT=ON",
       "-DWSRELAY_TESTS=OFF")
    sh("cmake", "--build", build, "-j", str(os.cpu_count() or 2),
       "--target", "package", timeout=300)
    debs = list(build.glob("wsrelay_*.deb"))
    assert len(debs) == 1, debs
    root = top / "root"
    sh("dpkg-deb", "-x", debs[0], root)
    control = top / "control"
    sh("dpkg-deb", "-e", debs[0], control)
    return {"deb": debs[0], "build": build, "root": root, "control": control,
            "top": top}


def test_layout(pkg):
    root = pkg["root"]
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                   if not p.is_dir())
    web = sorted(p.name for p in (SOURCE_DIR / "web").iterdir() if p.is_file())
    assert "index.html" in web and "overview.html" in web
    assert files == sorted(["usr/bin/wsrelay", CONF, UNIT] +
                           [f"usr/share/wsrelay/web/{n}" for n in web]), files
    assert os.access(root / "usr/bin/wsrelay", os.X_OK)
    for n in web:
        assert (root / "usr/share/wsrelay/web" / n).read_bytes() == \
            (SOURCE_DIR / "web" / n).read_bytes(), n
    # the example, [web] root left at the compiled-in default
    example = (SOURCE_DIR / "node.toml.example").read_text()
    conf = (root / CONF).read_text()
    assert '\nroot = "web"\n' in example
    assert conf == example.replace('\nroot = "web"\n', f'\n# root = "{WEB_ROOT}"\n')
    # which is the installed web/, not the source tree's
    binary = (root / "usr/bin/wsrelay").read_bytes()
    assert f"{WEB_ROOT}\0".encode() in binary
    assert str(SOURCE_DIR / "web").encode() not in binary


def test_control(pkg):
    info = sh("dpkg-deb", "-f", pkg["deb"], "Package", "Version", "Depends").stdout
    fields = dict(line.split(": ", 1) for line in info.splitlines())
    assert fields["Package"] == "wsrelay"
    assert fields["Version"] == VERSION
    deps = {d.strip().split(" ")[0] for d in fields["Depends"].split(",")}
    for want in ["libwebsockets17", "libwebsockets-evlib-uv", "libuv1",
                 "libcjson1", "libsodium23", "libssl3", "libc6", "adduser"]:
        assert want in deps, fields["Depends"]
    control = pkg["control"]
    assert (control / "conffiles").read_text().split() == ["/" + CONF]
    for script in ["postinst", "prerm", "postrm"]:
        path = control / script
        assert os.access(path, os.X_OK), script
        sh("sh", "-n", path)


def test_postinst_creates_user_once(pkg, tmp_path):
    """postinst configure against stand-ins that log their arguments:
    adduser only while getent does not know the user."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "log"
    for tool in ["adduser", "chown", "chmod", "systemctl"]:
        (bindir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\n')
    (bindir / "getent").write_text(
        f'#!/bin/sh\necho "getent $*" >> {log}\n'
        f'[ -e {tmp_path}/user ] && echo "wsrelay:x:999:999::/nonexistent:/usr/sbin/nologin"'
        f' || exit 2\n')
    for p in bindir.iterdir():
        p.chmod(0o755)
    env = dict(os.environ, PATH=f"{bindir}:/usr/bin:/bin")
    postinst = pkg["control"] / "postinst"
    sh(postinst, "configure", "", env=env)
    first = log.read_text()
    assert "adduser --system --group --quiet --no-create-home --home /nonexistent wsrelay\n" in first
    (tmp_path / "user").touch()
    log.write_text("")
    sh(postinst, "configure", VERSION, env=env)
    assert "adduser" not in log.read_text()
    assert "getent passwd wsrelay" in log.read_text()


def test_installed_binary(pkg):
    root = pkg["root"]
    binary = root / "usr/bin/wsrelay"
    r = sh(binary, "--version")
    assert r.stdout.strip() == f"wsrelay {VERSION}"
    r = sh(binary, "-c", root / CONF, "--check")
    assert r.stdout.strip() == f"{root / CONF}: ok"


def test_unit(pkg, tmp_path):
    unit = (pkg["root"] / UNIT).read_text()
    keys = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            keys.setdefault(k, []).append(v)
    assert keys["Type"] == ["simple"]
    assert keys["ExecStart"] == ["/usr/bin/wsrelay -c /etc/wsrelay/node.toml"]
    assert keys["ExecStartPre"] == ["/usr/bin/wsrelay -c /etc/wsrelay/node.toml --check"]
    assert keys["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert keys["ExecStop"] == ["/bin/kill -USR2 $MAINPID"]  # the drain
    assert keys["Restart"] == ["on-failure"]
    assert int(keys["LimitNOFILE"][0]) >= 100000
    assert keys["User"] == ["wsrelay"]
    for k, v in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                 ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                 ("CapabilityBoundingSet", ""), ("AmbientCapabilities", ""),
                 ("SystemCallFilter", "@system-service")]:
        assert keys[k] == [v], k
    # verify checks the commands exist: point them into the scratch root
    root = str(pkg["root"])
    copy = tmp_path / "wsrelay.service"
    copy.write_text(unit.replace("/usr/bin/wsrelay", root + "/usr/bin/wsrelay")
                    .replace("/etc/wsrelay/", root + "/etc/wsrelay/"))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)],
                       capture_output=True, text=True, timeout=60)
    # unknown keys and bad values are only warnings: none is accepted
    assert r.returncode == 0 and r.stderr.strip() == "" and r.stdout.strip() == "", r


def test_cmake_install_keeps_config(pkg, tmp_path):
    dest = tmp_path / "dest"
    env = dict(os.environ, DESTDIR=str(dest))
    sh("cmake", "--install", pkg["build"], env=env)
    conf = dest / CONF
    assert conf.read_text() == (pkg["root"] / CONF).read_text()
    assert (dest / UNIT).is_file() and (dest / "usr/share/wsrelay/web/index.html").is_file()
    conf.write_text("[node]\nname = \"edited\"\n")
    r = sh("cmake", "--install", pkg["build"], env=env)
    assert conf.read_text() == "[node]\nname = \"edited\"\n"
    assert "Keeping existing" in r.stdout
