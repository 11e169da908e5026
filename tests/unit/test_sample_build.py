"""sample/build.py: reproducible artifacts and correct manifests (real builds, real extraction)."""

import gzip
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tarfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(REPO, "sample", "build.py")
VERSIONS = ("1.0.0", "2.0.0", "2.1.0", "2.2.0")


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tree_hash = _load("tree_hash_for_test", os.path.join(REPO, "plugins", "module_utils", "tree_hash.py")).tree_hash


def _build(out):
    subprocess.run([sys.executable, BUILD, "--out", str(out)], check=True, capture_output=True, text=True)
    return {v: json.loads((out / f"order-router-{v}.manifest.json").read_text()) for v in VERSIONS}


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory):
    a, b = tmp_path_factory.mktemp("build-a"), tmp_path_factory.mktemp("build-b")
    return a, _build(a), b, _build(b)


def test_building_twice_gives_identical_bytes(two_builds):
    a, ma, b, mb = two_builds
    for v in VERSIONS:
        name = f"order-router-{v}.tar.gz"
        assert (a / name).read_bytes() == (b / name).read_bytes()
        assert ma[v] == mb[v]
        manifest = f"order-router-{v}.manifest.json"
        assert (a / manifest).read_bytes() == (b / manifest).read_bytes()


def test_build_does_not_depend_on_host_interpreter_or_umask(two_builds, tmp_path):
    a, ma, _, _ = two_builds
    out = tmp_path / "other"
    env = dict(os.environ)
    subprocess.run(
        ["/bin/sh", "-c", 'umask 077 && exec "$0" "$1" --out "$2"', "/usr/bin/python3", BUILD, str(out)],
        check=True,
        env=env,
        capture_output=True,
    )
    for v in VERSIONS:
        assert (out / f"order-router-{v}.tar.gz").read_bytes() == (a / f"order-router-{v}.tar.gz").read_bytes()


def test_tarball_is_normalized(two_builds):
    a, _, _, _ = two_builds
    for v in VERSIONS:
        data = (a / f"order-router-{v}.tar.gz").read_bytes()
        # gzip header: magic, CM, FLG (no FNAME bit), MTIME == 0
        assert data[:3] == b"\x1f\x8b\x08"
        assert data[3] & 0x08 == 0, "gzip header must not carry a file name"
        assert data[4:8] == b"\0\0\0\0", "gzip header mtime must be 0"
        with tarfile.open(a / f"order-router-{v}.tar.gz", "r:gz") as tar:
            members = tar.getmembers()
        names = [m.name for m in members]
        assert names == sorted(names)
        assert {"router.py", "routing.py", "flags.json", "VERSION", "bin/ctl"} <= set(names)
        for m in members:
            assert not m.name.startswith(("/", "./", "order-router")), "content must sit at the archive root"
            assert (m.mtime, m.uid, m.gid, m.uname, m.gname) == (0, 0, 0, "", "")
            assert m.isdir() or m.isfile()
            expected = 0o755 if m.isdir() or m.name.startswith("bin/") else 0o644
            assert m.mode == expected, (m.name, oct(m.mode))
        assert gzip.decompress(data)  # well-formed


def test_manifest_matches_tarball_and_extracted_content(two_builds, tmp_path):
    a, manifests, _, _ = two_builds
    for v in VERSIONS:
        m = manifests[v]
        assert set(m) == {"name", "version", "artifact", "sha256", "content_sha256", "flags", "retired_flags"}
        assert m["name"] == "order-router"
        assert m["version"] == v
        assert m["artifact"] == f"order-router-{v}.tar.gz"
        tarball = a / m["artifact"]
        assert m["sha256"] == hashlib.sha256(tarball.read_bytes()).hexdigest()
        dest = tmp_path / v
        with tarfile.open(tarball, "r:gz") as tar:
            tar.extractall(dest, filter="data")
        assert m["content_sha256"] == tree_hash(str(dest))
        # A staged release carries MANIFEST.json; the content hash ignores it.
        (dest / "MANIFEST.json").write_text(json.dumps(m))
        assert m["content_sha256"] == tree_hash(str(dest))
        assert os.access(dest / "bin" / "ctl", os.X_OK)
        assert (dest / "VERSION").read_text().strip() == v
        # The manifest's flags are exactly what the release's own flags.json (the file the code reads) declares.
        flags_cfg = json.loads((dest / "flags.json").read_text())
        assert [f["name"] for f in m["flags"]] == sorted(flags_cfg["flags"])
        assert m["retired_flags"] == sorted(flags_cfg["retired_flags"])
        for f in m["flags"]:
            assert set(f) == {"name", "meaning", "since"}
            assert f["meaning"] and f["since"]
    assert len({m["content_sha256"] for m in manifests.values()}) == len(VERSIONS)


def test_manifest_flags_tell_the_knight_story(two_builds):
    _, m, _, _ = two_builds
    flags = {v: {f["name"]: f for f in m[v]["flags"]} for v in VERSIONS}
    # 1.0.0: rlp is the legacy power peg.
    assert set(flags["1.0.0"]) == {"rlp"} and "power peg" in flags["1.0.0"]["rlp"]["meaning"]
    assert m["1.0.0"]["retired_flags"] == []
    # 2.0.0: the same name, a new meaning and a new `since`: flag reuse, nothing retired.
    assert set(flags["2.0.0"]) == {"rlp"} and "retail liquidity" in flags["2.0.0"]["rlp"]["meaning"]
    assert flags["2.0.0"]["rlp"]["since"] == "2.0.0"
    assert flags["2.0.0"]["rlp"]["meaning"] != flags["1.0.0"]["rlp"]["meaning"]
    assert m["2.0.0"]["retired_flags"] == []
    # 2.1.0 and 2.2.0: new name rli, rlp retired.
    for v in ("2.1.0", "2.2.0"):
        assert set(flags[v]) == {"rli"} and flags[v]["rli"]["since"] == "2.1.0"
        assert m[v]["retired_flags"] == ["rlp"]
