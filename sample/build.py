#!/usr/bin/env python3
"""Build the order-router release artifacts, reproducibly.

Each release's content = ``sample/common/`` (shared code and bin/ctl) overlaid with ``sample/versions/<v>/``
(that version's routing.py and flags.json), plus a generated ``VERSION`` file. Per version this writes

    <out>/order-router-<v>.tar.gz         content at the archive root, byte-for-byte reproducible
    <out>/order-router-<v>.manifest.json  name, version, artifact, sha256, content_sha256, flags, retired_flags

The manifest's flags come from the release's own flags.json (the file the code reads), and content_sha256 is the
tree hash (plugins/module_utils/tree_hash.py) of the tarball extracted to a temporary directory: exactly what a
host will see. Stdlib only.

    python3 sample/build.py [--out artifacts] [--version 2.1.0 ...]
"""

import argparse
import gzip
import hashlib
import importlib.util
import io
import json
import os
import sys
import tarfile
import tempfile

SAMPLE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(SAMPLE)
NAME = "order-router"
VERSIONS = ("1.0.0", "2.0.0", "2.1.0", "2.2.0")
EXECUTABLE_DIRS = ("bin/",)
_SKIP = ("__pycache__",)


def _load_tree_hash():
    path = os.path.join(REPO, "plugins", "module_utils", "tree_hash.py")
    spec = importlib.util.spec_from_file_location("lockstep_tree_hash", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tree_hash


tree_hash = _load_tree_hash()


def _collect(src_dir, files):
    for dirpath, dirnames, filenames in os.walk(src_dir):
        dirnames[:] = [d for d in dirnames if d not in _SKIP]
        for name in filenames:
            if name.endswith((".pyc", ".pyo")) or name.startswith("."):
                continue
            full = os.path.join(dirpath, name)
            with open(full, "rb") as f:
                files[os.path.relpath(full, src_dir).replace(os.sep, "/")] = f.read()


def release_files(version):
    """Return ``{relpath: bytes}``: the content of release ``version``."""
    overlay = os.path.join(SAMPLE, "versions", version)
    if not os.path.isdir(overlay):
        raise SystemExit(f"build: no such version: {version}")
    files = {}
    _collect(os.path.join(SAMPLE, "common"), files)
    _collect(overlay, files)
    files["VERSION"] = (version + "\n").encode()
    return files


def _mode(relpath):
    return 0o755 if relpath.startswith(EXECUTABLE_DIRS) else 0o644


def _tarinfo(name, kind, size=0, mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.size = size
    ti.mode = mode
    ti.mtime = 0
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


def make_tarball(files):
    """Return the gzipped tar bytes of ``files``: sorted entries, fixed metadata, gzip mtime 0, no file name."""
    dirs = set()
    for rel in files:
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    entries = sorted([(d, None) for d in dirs] + list(files.items()))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for rel, data in entries:
            if data is None:
                tar.addfile(_tarinfo(rel, tarfile.DIRTYPE, mode=0o755))
            else:
                tar.addfile(_tarinfo(rel, tarfile.REGTYPE, len(data), _mode(rel)), io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def content_hash(tarball):
    """Tree hash of the tarball's content, extracted the way a host extracts it."""
    with tempfile.TemporaryDirectory(prefix="order-router-build-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:  # pragma: no cover - Python < 3.11.4
                tar.extractall(tmp)
        return tree_hash(tmp)


def manifest_for(version, files, tarball):
    flags_cfg = json.loads(files["flags.json"])
    flags = [
        {"name": name, "meaning": spec["meaning"], "since": spec["since"]}
        for name, spec in sorted(flags_cfg.get("flags", {}).items())
    ]
    retired = sorted(flags_cfg.get("retired_flags", []))
    reused = set(retired) & {f["name"] for f in flags}
    if reused:
        raise SystemExit("build: {}: flags both live and retired: {}".format(version, ", ".join(sorted(reused))))
    return {
        "name": NAME,
        "version": version,
        "artifact": f"{NAME}-{version}.tar.gz",
        "sha256": hashlib.sha256(tarball).hexdigest(),
        "content_sha256": content_hash(tarball),
        "flags": flags,
        "retired_flags": retired,
    }


def _write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def build(version, out_dir):
    """Build one version into ``out_dir``; return its manifest."""
    files = release_files(version)
    tarball = make_tarball(files)
    manifest = manifest_for(version, files, tarball)
    os.makedirs(out_dir, exist_ok=True)
    _write(os.path.join(out_dir, manifest["artifact"]), tarball)
    _write(
        os.path.join(out_dir, f"{NAME}-{version}.manifest.json"),
        (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode(),
    )
    return manifest


def build_all(out_dir, versions=VERSIONS):
    return [build(v, out_dir) for v in versions]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Build the order-router release artifacts (reproducible).")
    parser.add_argument("--out", default=os.path.join(REPO, "artifacts"), help="output directory")
    parser.add_argument("--version", action="append", choices=VERSIONS, help="build only this version")
    args = parser.parse_args(argv)
    for m in build_all(args.out, args.version or VERSIONS):
        print("{}  {}  content {}".format(m["sha256"], os.path.join(args.out, m["artifact"]), m["content_sha256"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
