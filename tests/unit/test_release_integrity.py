"""Integrity covers everything a service can execute: hidden compiled code is content, and unpacking an artifact
keeps no link that leaves the release, no setuid/setgid program and no owner from the archive.

The unpacking is tested both ways a host may do it: ``extract_checked`` (Pythons without tarfile filters) directly,
and the deploy module run by a real ``ansible-playbook`` under Debian 12's own ``/usr/bin/python3`` (3.11.2, no
filters), as a fleet host runs it.
"""

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile

import pytest

from ansible_collections.lockstep.release.plugins.module_utils.tree_hash import tree_hash
from ansible_collections.lockstep.release.plugins.modules.deploy import extract_checked, safe_extract

DEBIAN_PYTHON = "/usr/bin/python3"


def tarball(*members):
    """Gzipped tar bytes from ``(name, kind, extra)`` tuples: kind ``f`` (extra: bytes), ``d``, ``l`` (extra: the
    link target), ``h`` (hard link; extra: target); keyword-ish overrides in a dict as a 4th element."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, kind, extra, *over in members:
            ti = tarfile.TarInfo(name)
            ti.mode = 0o755 if kind == "d" else 0o644
            data = None
            if kind == "f":
                data = extra
                ti.size = len(data)
            elif kind == "d":
                ti.type = tarfile.DIRTYPE
            elif kind == "l":
                ti.type, ti.linkname = tarfile.SYMTYPE, extra
            elif kind == "h":
                ti.type, ti.linkname = tarfile.LNKTYPE, extra
            for key, value in (over[0] if over else {}).items():
                setattr(ti, key, value)
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return raw.getvalue()


def unpack(data, dest, how=extract_checked):
    dest.mkdir()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        how(tar, str(dest))


CLEAN = tarball(("bin", "d", None), ("bin/run", "f", b"#!/bin/sh\n", {"mode": 0o775, "uid": 4321, "gid": 4321}),
                ("lib", "d", None), ("lib/data.txt", "f", b"data\n", {"mode": 0o666}),
                ("current-data", "l", "lib/data.txt"), ("lib/here", "l", "."), ("lib/up", "l", ".."))

# Each link on its own stays inside when read lexically ("d/up/.." is "d"), but d/up IS the release directory on
# disk, so d/up/.. is its parent: only resolving the links as they lie on disk sees it.
CHAIN = tarball(("d", "d", None), ("d/up", "l", ".."), ("esc", "l", "d/up/.."))

REFUSED = {
    "symlink chain that leaves": (CHAIN, "resolves to"),
    "longer chain through a link to a link": (
        tarball(("a", "d", None), ("a/b", "d", None), ("a/b/up", "l", "../.."), ("hop", "l", "a/b/up"),
                ("esc", "l", "hop/../etc")), "resolves to"),
    "absolute symlink": (tarball(("etc", "l", "/etc")), "absolute path"),
    "dot-dot member": (tarball(("../evil", "f", b"x")), "unsafe archive member name"),
    "absolute member": (tarball(("/tmp/evil", "f", b"x")), "unsafe archive member name"),
    "file written through a link": (tarball(("lnk", "l", "."), ("lnk/f", "f", b"x")), "lies under a symlink"),
    "setuid program": (tarball(("bin", "d", None), ("bin/su", "f", b"x", {"mode": 0o4755})), "setuid/setgid"),
    "setgid program": (tarball(("tool", "f", b"x", {"mode": 0o2755})), "setuid/setgid"),
    "hard link": (tarball(("a", "f", b"x"), ("b", "h", "a")), "not a plain file"),
    "device": (tarball(("null", "f", b"", {"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3})),
               "not a plain file"),
    "duplicate member": (tarball(("a", "f", b"x"), ("a", "f", b"y")), "appears twice"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_fallback_refuses(tmp_path, case):
    data, why = REFUSED[case]
    with pytest.raises(ValueError, match=why):
        unpack(data, tmp_path / "rel", how=lambda tar, dest: safe_extract_without_filter(tar, dest))


def safe_extract_without_filter(tar, dest):
    """``safe_extract`` as it runs on a Python without tarfile filters (the member checks, the fallback, the link
    check), without changing the tarfile module of this process."""
    from ansible_collections.lockstep.release.plugins.modules.deploy import check_members, links_inside

    check_members(tar)
    extract_checked(tar, dest)
    links_inside(dest)


def test_safe_extract_refuses_the_chain_on_this_python_too(tmp_path):
    with pytest.raises((ValueError, tarfile.TarError)):
        unpack(CHAIN, tmp_path / "rel", how=safe_extract)


def test_fallback_keeps_no_owner_no_setid_no_group_write(tmp_path):
    unpack(CLEAN, tmp_path / "rel")
    rel = tmp_path / "rel"
    run = os.lstat(rel / "bin" / "run")
    assert (run.st_uid, run.st_gid) == (os.getuid(), os.getgid())  # not 4321: the archive's owners are not kept
    assert stat.S_IMODE(run.st_mode) == 0o755  # executable kept, group write dropped
    assert stat.S_IMODE(os.lstat(rel / "lib" / "data.txt").st_mode) == 0o644
    assert os.readlink(rel / "current-data") == "lib/data.txt"
    assert (rel / "lib" / "up").resolve() == rel.resolve()


def test_fallback_and_data_filter_unpack_the_same_content(tmp_path, artifacts):
    for version, (path, manifest) in artifacts.items():
        with open(path, "rb") as f:
            data = f.read()
        unpack(data, tmp_path / ("fallback-" + version))
        assert tree_hash(str(tmp_path / ("fallback-" + version))) == manifest["content_sha256"]
    unpack(CLEAN, tmp_path / "fallback")
    unpack(CLEAN, tmp_path / "filter", how=lambda tar, dest: tar.extractall(dest, filter="data"))
    assert tree_hash(str(tmp_path / "fallback")) == tree_hash(str(tmp_path / "filter"))


def _deploy_on_debian_python(tmp_path, data):
    """Stage ``data`` with the deploy module under Debian's python3 (a real ansible-playbook on localhost)."""
    from conftest import _clean_env

    artifact = tmp_path / "evil.tar.gz"
    artifact.write_bytes(data)
    manifest = {"version": "6.6.6", "sha256": hashlib.sha256(data).hexdigest(), "content_sha256": "0" * 64}
    base = tmp_path / "srv" / "svc"
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "stage", "lockstep.release.deploy": {"base": str(base), "state": "staged", "version": "6.6.6",
                                                      "artifact": str(artifact), "manifest": manifest},
         "register": "out"},
    ]}]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", "ansible_python_interpreter=%s" % DEBIAN_PYTHON, "-v", str(tmp_path / "play.yml")],
        capture_output=True, text=True, timeout=120, cwd=str(tmp_path), env=_clean_env(str(tmp_path)))
    return proc, base


@pytest.mark.parametrize("case", ["symlink chain that leaves", "setuid program"])
def test_deploy_refuses_on_debian_python(tmp_path, case):
    data, why = REFUSED[case]
    proc, base = _deploy_on_debian_python(tmp_path, data)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "artifact refused" in out and why in out, out
    assert '"lockstep_check": "artifact-integrity"' in out, out
    assert os.listdir(base / "releases") == []  # nothing of it left on the host


def test_pyc_dropped_into_a_release_is_caught(run_module, staged_base):
    rel = staged_base / "releases" / "2.1.0"
    (rel / "__pycache__").mkdir()
    (rel / "__pycache__" / "routing.cpython-311.pyc").write_bytes(b"\x00not what routing.py says")
    rc, res = run_module("state", dict(base=str(staged_base)))
    assert rc == 0, res
    info = {r["version"]: r for r in res["lockstep_state"]["releases"]}
    assert info["2.1.0"]["valid"] is False
    assert "does not match the manifest" in info["2.1.0"]["problem"]
    assert info["2.0.0"]["valid"] is True
    rc, res = run_module("deploy", dict(base=str(staged_base), state="active", version="2.1.0"))
    assert rc != 0 and res["lockstep_check"] == "release-integrity", res
