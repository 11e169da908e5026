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
import json
import os
import sys

SAMPLE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(SAMPLE)
# The tarball, the tree hash and the manifest are lockstep's own (``bin/lockstep package`` builds any directory with
# the same code); the repository is the collection, reached through collections/.
sys.path.insert(0, os.path.join(REPO, "collections"))

from ansible_collections.lockstep.release.plugins.plugin_utils import package  # noqa: E402 (after sys.path, on purpose)

NAME = "order-router"
VERSIONS = ("1.0.0", "2.0.0", "2.1.0", "2.2.0", "2.3.0")
EXECUTABLE_DIRS = ("bin/",)
_SKIP = package.DEBRIS_DIRS


def _collect(src_dir, files):
    for dirpath, dirnames, filenames in os.walk(src_dir):
        dirnames[:] = [d for d in dirnames if d not in _SKIP]
        for name in filenames:
            if name.endswith(package.DEBRIS_SUFFIXES) or name.startswith("."):
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


def make_tarball(files):
    """The gzipped tar bytes of ``files`` (see ``package.make_tarball``), ``bin/*`` executable."""
    return package.make_tarball(files, {rel: _mode(rel) for rel in files})


def content_hash(tarball):
    return package.content_hash(tarball)


def manifest_for(version, files, tarball):
    try:
        return package.manifest_for(NAME, version, f"{NAME}-{version}.tar.gz", tarball,
                                    json.loads(files["flags.json"]), f"{version}: flags.json")
    except ValueError as e:
        raise SystemExit(f"build: {e}") from e


def build(version, out_dir):
    """Build one version into ``out_dir``; return its manifest."""
    files = release_files(version)
    tarball = make_tarball(files)
    manifest = manifest_for(version, files, tarball)
    package.write_artifact(out_dir, f"{NAME}-{version}", tarball, manifest)
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
