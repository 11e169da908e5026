"""Tree hash of a release directory: content, executability and links count; names of places and times do not."""

import os
import shutil
import tarfile
import time

import pytest

from ansible_collections.lockstep.release.plugins.module_utils.tree_hash import tree_entries, tree_hash


def make_release(root):
    """A small release tree with every kind of entry the hash knows: files, an executable, links, subdirectories."""
    (root / "bin").mkdir(parents=True)
    (root / "lib" / "deep").mkdir(parents=True)
    (root / "router.py").write_text("print('route')\n")
    (root / "flags.json").write_text('{"rli": true}\n')
    (root / "bin" / "ctl").write_text("#!/bin/sh\nexit 0\n")
    os.chmod(root / "bin" / "ctl", 0o755)
    (root / "lib" / "deep" / "data.bin").write_bytes(bytes(range(256)) * 8)
    os.symlink("router.py", root / "main.py")
    os.symlink("lib/deep", root / "deep")  # a link to a directory is an entry, not a place to descend
    (root / "MANIFEST.json").write_text('{"version": "1.0.0"}\n')
    return root


@pytest.fixture
def release(tmp_path):
    return make_release(tmp_path / "a")


def test_same_content_same_hash_regardless_of_place_and_mtimes(release, tmp_path):
    other = make_release(tmp_path / "elsewhere" / "b")
    old = time.time() - 86400 * 365
    for dirpath, dirnames, filenames in os.walk(other):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (old, old), follow_symlinks=False)
    os.chmod(other / "router.py", 0o600)  # permission bits other than "executable" are not content
    assert tree_hash(str(release)) == tree_hash(str(other))


def test_hash_is_stable_and_hex(release):
    h = tree_hash(str(release))
    assert h == tree_hash(str(release))
    assert len(h) == 64 and int(h, 16) >= 0


def test_entries_cover_files_executables_and_links(release):
    kinds = {rel: kind for rel, kind, _ in tree_entries(str(release))}
    assert kinds == {"router.py": "f", "flags.json": "f", "bin/ctl": "fx", "lib/deep/data.bin": "f",
                     "main.py": "l", "deep": "l"}


def _flip_byte(root):
    path = root / "lib" / "deep" / "data.bin"
    data = bytearray(path.read_bytes())
    data[1000] ^= 0x01
    path.write_bytes(bytes(data))


def _retarget_link(root):
    os.unlink(root / "main.py")
    os.symlink("flags.json", root / "main.py")


def _link_becomes_file(root):
    content = (root / "router.py").read_bytes()
    os.unlink(root / "main.py")
    (root / "main.py").write_bytes(content)


CHANGES = {
    "one flipped bit": _flip_byte,
    "appended byte": lambda r: (r / "router.py").write_text("print('route')\n\n"),
    "empty file added": lambda r: (r / "lib" / "empty").write_text(""),
    "file removed": lambda r: os.unlink(r / "flags.json"),
    "file renamed": lambda r: os.rename(r / "flags.json", r / "flags.json.bak"),
    "file moved to a subdirectory": lambda r: os.rename(r / "flags.json", r / "bin" / "flags.json"),
    "executable bit dropped": lambda r: os.chmod(r / "bin" / "ctl", 0o644),
    "executable bit added": lambda r: os.chmod(r / "router.py", 0o755),
    "link retargeted": _retarget_link,
    "link replaced by a copy of its target": _link_becomes_file,
    "directory link retargeted": lambda r: (os.unlink(r / "deep"), os.symlink("lib", r / "deep")),
    "dangling link added": lambda r: os.symlink("nowhere", r / "dangling"),
    "nested MANIFEST.json added": lambda r: (r / "lib" / "MANIFEST.json").write_text("{}"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_any_content_change_changes_the_hash(release, change):
    before = tree_hash(str(release))
    CHANGES[change](release)
    assert tree_hash(str(release)) != before


def test_top_level_manifest_is_not_content(release):
    before = tree_hash(str(release))
    (release / "MANIFEST.json").write_text('{"version": "9.9.9", "content_sha256": "%s"}\n' % before)
    assert tree_hash(str(release)) == before
    os.unlink(release / "MANIFEST.json")
    assert tree_hash(str(release)) == before


@pytest.mark.parametrize("where", [".", "lib/deep"])
def test_pycache_directories_are_content(release, where):
    """Python runs a cached .pyc in place of its source: code can hide there, so no directory is skipped."""
    before = tree_hash(str(release))
    (release / where / "__pycache__").mkdir()
    (release / where / "__pycache__" / "router.cpython-311.pyc").write_bytes(b"\x00compiled")
    assert tree_hash(str(release)) != before
    shutil.rmtree(release / where / "__pycache__")
    assert tree_hash(str(release)) == before


def test_entries_that_are_neither_files_nor_links_count(release):
    before = tree_hash(str(release))
    os.mkfifo(release / "lib" / "pipe")
    assert tree_hash(str(release)) != before


def test_empty_directories_are_implied_not_content(release):
    before = tree_hash(str(release))
    (release / "empty").mkdir()
    assert tree_hash(str(release)) == before


def test_matches_the_manifest_of_a_real_artifact(artifacts, tmp_path):
    tarball, manifest = artifacts["2.1.0"]
    with tarfile.open(tarball) as tar:
        tar.extractall(tmp_path / "x", filter="data")
    assert tree_hash(str(tmp_path / "x")) == manifest["content_sha256"]
