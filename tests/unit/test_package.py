"""``bin/lockstep package DIR --version V``: a reproducible artifact and manifest for any directory, with lockstep's
own tree hash, checked by unpacking it as a host does (the real command, the real deploy module)."""

import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest

from ansible_collections.lockstep.release.plugins.module_utils.tree_hash import tree_hash

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOCKSTEP = os.path.join(REPO, "bin", "lockstep")


def package(*args):
    return subprocess.run([sys.executable, LOCKSTEP, "package", *map(str, args)], capture_output=True, text=True,
                          timeout=60)


@pytest.fixture
def site(tmp_path):
    """A release directory of some service: a program, data, a link, byte-code debris."""
    d = tmp_path / "site"
    (d / "bin").mkdir(parents=True)
    (d / "bin" / "serve").write_text("#!/bin/sh\nexec true\n")
    os.chmod(d / "bin" / "serve", 0o775)
    (d / "version").write_text("3.1.4\n")
    (d / "static").mkdir()
    (d / "static" / "index.html").write_text("<p>hi</p>\n")
    os.symlink("static/index.html", d / "index.html")
    (d / "__pycache__").mkdir()
    (d / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (d / "features.json").write_text(json.dumps({"flags": {"fast": {"meaning": "fast path", "since": "3.1.4"}},
                                                 "retired_flags": ["slow"]}))
    return d


def test_package_any_directory_reproducibly(site, tmp_path):
    a = package(site, "--version", "3.1.4", "--name", "site", "--out", tmp_path / "a", "--flags-file",
                "features.json")
    assert a.returncode == 0, a.stderr
    assert "left out 1 byte-code path(s): __pycache__" in a.stderr
    os.utime(site / "version", (1, 1))  # times are not content
    b = package(site, "--version", "3.1.4", "--name", "site", "--out", tmp_path / "b", "--flags-file",
                "features.json")
    assert b.returncode == 0, b.stderr
    for name in ("site-3.1.4.tar.gz", "site-3.1.4.manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    manifest = json.loads((tmp_path / "a" / "site-3.1.4.manifest.json").read_text())
    assert manifest["name"] == "site" and manifest["version"] == "3.1.4"
    assert manifest["artifact"] == "site-3.1.4.tar.gz"
    assert manifest["flags"] == [{"name": "fast", "meaning": "fast path", "since": "3.1.4"}]
    assert manifest["retired_flags"] == ["slow"]
    with tarfile.open(tmp_path / "a" / "site-3.1.4.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["bin", "bin/serve", "features.json", "index.html", "static",
                                          "static/index.html", "version"]
        assert tar.getmember("bin/serve").mode == 0o755
        assert tar.getmember("version").mode == 0o644
        assert {(m.uid, m.gid, m.mtime) for m in tar.getmembers()} == {(0, 0, 0)}
        tar.extractall(tmp_path / "x", filter="data")
    assert manifest["content_sha256"] == tree_hash(str(tmp_path / "x"))


def test_without_name_or_flags_file(site, tmp_path):
    r = package(site, "--version", "3.1.4", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    # lockstep's default lockstep_artifact_name / lockstep_manifest_name: "{version}.tar.gz", "{version}.manifest.json"
    manifest = json.loads((tmp_path / "3.1.4.manifest.json").read_text())
    assert manifest["artifact"] == "3.1.4.tar.gz" and manifest["name"] == "site"
    assert "flags" not in manifest and "retired_flags" not in manifest  # declares no flags: not judged on them


def test_the_package_stages_and_verifies_on_a_host(site, tmp_path, run_module):
    assert package(site, "--version", "3.1.4", "--name", "site", "--out", tmp_path).returncode == 0
    manifest = json.loads((tmp_path / "site-3.1.4.manifest.json").read_text())
    base = tmp_path / "srv" / "site"
    rc, res = run_module("deploy", dict(base=str(base), state="staged", version="3.1.4", manifest=manifest,
                                        artifact_path=str(tmp_path / "site-3.1.4.tar.gz")))
    assert rc == 0, res
    assert res["lockstep_state"]["releases"][0]["valid"] is True


@pytest.mark.parametrize("change, why", [
    (lambda d: os.symlink("/etc/passwd", d / "pw"), "leaves the release"),
    (lambda d: os.symlink("../../outside", d / "static" / "out"), "leaves the release"),
    (lambda d: (d / "MANIFEST.json").write_text("{}"), "top-level MANIFEST.json"),
    (lambda d: os.chmod(d / "bin" / "serve", 0o4755), "setuid/setgid"),
    (lambda d: os.mkfifo(d / "pipe"), "not a file, directory or link"),
])
def test_refuses_what_a_host_would_refuse(site, tmp_path, change, why):
    change(site)
    r = package(site, "--version", "3.1.4", "--out", tmp_path / "out")
    assert r.returncode == 1 and why in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, why", [
    (["--version", "../1"], "not a plain version"),
    (["--version", "1.0", "--name", "a/b"], "not a plain name"),
    (["--version", "1.0", "--flags-file", "missing.json"], "flags file"),
])
def test_bad_input(site, tmp_path, args, why):
    r = package(site, *args, "--out", tmp_path)
    assert r.returncode == 1 and why in r.stderr, r.stderr


def test_flags_file_with_a_flag_both_live_and_retired_is_refused(site, tmp_path):
    (site / "features.json").write_text(json.dumps({"flags": {"x": {"meaning": "m", "since": "1"}},
                                                    "retired_flags": ["x"]}))
    r = package(site, "--version", "1.0", "--flags-file", "features.json", "--out", tmp_path)
    assert r.returncode == 1 and "flags both live and retired: x" in r.stderr, r.stderr


# --exclude: paths left out of the release, so out of the tarball and of both checksums of its manifest.

@pytest.fixture
def built_site(site):
    """``site`` as it stands on a build machine: a cache directory (with a socket-like fifo and a link out of the
    tree, which a release could not hold), build scripts, and a log next to the code."""
    (site / ".cache" / "pip").mkdir(parents=True)
    (site / ".cache" / "pip" / "wheel.whl").write_bytes(b"PK\0")
    os.mkfifo(site / ".cache" / "lock")
    os.symlink("/etc/passwd", site / ".cache" / "pw")
    (site / "scripts").mkdir()
    (site / "scripts" / "build-assets.sh").write_text("#!/bin/sh\nnpm run build\n")
    (site / "scripts" / "migrate.sh").write_text("#!/bin/sh\nexit 0\n")  # kept: not a build script
    (site / "static" / "debug.log").write_text("build output\n")
    return site


EXCLUDES = ["--exclude", ".cache/", "--exclude", "scripts/build-*", "--exclude", "*.log", "--exclude",
            "__pycache__", "--exclude", "*.pyc"]


def test_excluded_paths_are_in_neither_the_tarball_nor_its_checksums(built_site, tmp_path):
    r = package(built_site, "--version", "3.1.4", "--name", "site", "--out", tmp_path / "out", *EXCLUDES)
    assert r.returncode == 0, r.stderr
    assert "excluded 4 path(s): .cache, __pycache__, scripts/build-assets.sh, static/debug.log" in r.stderr
    with tarfile.open(tmp_path / "out" / "site-3.1.4.tar.gz") as tar:
        names = sorted(tar.getnames())
        tar.extractall(tmp_path / "unpacked", filter="data")
    assert names == ["bin", "bin/serve", "features.json", "index.html", "scripts", "scripts/migrate.sh", "static",
                     "static/index.html", "version"]
    manifest = json.loads((tmp_path / "out" / "site-3.1.4.manifest.json").read_text())
    text = json.dumps(manifest)
    assert not any(word in text for word in (".cache", "build-assets", "debug.log", "wheel", "pycache"))
    # The content hash is the hash of what remains, as a host computes it on the unpacked release ...
    assert manifest["content_sha256"] == tree_hash(str(tmp_path / "unpacked"))
    # ... and the same artifact, to the byte, as the directory without those paths.
    clean = tmp_path / "clean" / "site"
    shutil.copytree(built_site, clean, symlinks=True, ignore=shutil.ignore_patterns(
        ".cache", "build-*", "*.log", "__pycache__"))
    r = package(clean, "--version", "3.1.4", "--name", "site", "--out", tmp_path / "clean-out")
    assert r.returncode == 0, r.stderr
    assert "excluded" not in r.stderr
    for name in ("site-3.1.4.tar.gz", "site-3.1.4.manifest.json"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "clean-out" / name).read_bytes(), name


def test_without_exclude_the_build_machine_debris_is_refused_or_shipped(built_site, tmp_path):
    r = package(built_site, "--version", "3.1.4", "--out", tmp_path / "out")
    assert r.returncode == 1 and "/.cache/" in r.stderr, r.stderr  # the cache's fifo or its link out
    os.unlink(built_site / ".cache" / "pw")
    os.unlink(built_site / ".cache" / "lock")
    r = package(built_site, "--version", "3.1.4", "--out", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    with tarfile.open(tmp_path / "out" / "3.1.4.tar.gz") as tar:
        assert {".cache/pip/wheel.whl", "scripts/build-assets.sh", "static/debug.log"} <= set(tar.getnames())


def test_an_excluded_release_stages_and_verifies_on_a_host(built_site, tmp_path, run_module):
    assert package(built_site, "--version", "3.1.4", "--name", "site", "--out", tmp_path, *EXCLUDES).returncode == 0
    manifest = json.loads((tmp_path / "site-3.1.4.manifest.json").read_text())
    base = tmp_path / "srv" / "site"
    rc, res = run_module("deploy", dict(base=str(base), state="staged", version="3.1.4", manifest=manifest,
                                        artifact_path=str(tmp_path / "site-3.1.4.tar.gz")))
    assert rc == 0, res
    assert res["lockstep_state"]["releases"][0]["valid"] is True
    assert not (base / "releases" / "3.1.4" / "scripts" / "build-assets.sh").exists()
    assert (base / "releases" / "3.1.4" / "scripts" / "migrate.sh").exists()


@pytest.mark.parametrize("pattern, rel, is_dir, excluded", [
    ("__pycache__", "a/b/__pycache__", True, True),        # no slash: a name at any depth
    ("*.pyc", "a/b.pyc", False, True),
    ("*.pyc", "a/b.pyc.txt", False, False),
    ("scripts/build-*", "scripts/build-assets.sh", False, True),   # a slash: anchored at DIR
    ("scripts/build-*", "app/scripts/build-assets.sh", False, False),
    ("scripts/*.sh", "scripts/x.sh", False, True),
    ("scripts/*.sh", "scripts/sub/x.sh", False, False),            # '*' stays within a directory
    ("a?b", "a/b", False, False),                                   # and so does '?'
    ("/Makefile", "Makefile", False, True),
    ("/Makefile", "sub/Makefile", False, False),
    ("cache/", "cache", True, True),                                # trailing slash: directories only
    ("cache/", "cache", False, False),
    ("cache/", "a/cache", True, True),
    ("**/tmp", "tmp", True, True),
    ("**/tmp", "a/b/tmp", True, True),
    ("docs/**/*.png", "docs/a.png", False, True),
    ("docs/**/*.png", "docs/x/y/a.png", False, True),
    ("docs/**/*.png", "src/docs/a.png", False, False),
    ("logs/**", "logs/a/b.txt", False, True),
    ("build-?.sh", "build-1.sh", False, True),
    ("build-?.sh", "build-10.sh", False, False),
    ("[!a]x", "bx", False, True),
    ("[!a]x", "ax", False, False),
    ("a.b", "aXb", False, False),                                   # a dot is a dot
])
def test_exclude_patterns_are_gitignore_like(pattern, rel, is_dir, excluded):
    from ansible_collections.lockstep.release.plugins.plugin_utils.package import Exclude

    assert bool(Exclude([pattern]).match(rel, is_dir)) is excluded


@pytest.mark.parametrize("args, why", [
    (["--exclude", "!keep.txt"], "negation is not supported"),
    (["--exclude", ""], "matches nothing or everything"),
    (["--exclude", "/"], "matches nothing or everything"),
    (["--exclude", "../site/version"], "are not path parts"),
    (["--exclude", "*"], "holds no files once excluded paths are left out"),
    (["--flags-file", "features.json", "--exclude", "features.json"], "flags file features.json is excluded"),
    (["--flags-file", "conf/features.json", "--exclude", "conf"], "flags file conf/features.json is excluded"),
])
def test_bad_excludes_are_refused(site, tmp_path, args, why):
    (site / "conf").mkdir()
    shutil.copy(site / "features.json", site / "conf" / "features.json")
    r = package(site, "--version", "1.0", *args, "--out", tmp_path / "out")
    assert r.returncode == 1 and why in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()
