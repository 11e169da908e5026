# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reproducible release artifacts and their manifests, for any directory.

One implementation for ``bin/lockstep package DIR --version V`` (any service) and ``sample/build.py`` (the sample),
so that adopting lockstep never means re-implementing the tree hash: the manifest's ``content_sha256`` is the tree
hash (``module_utils/tree_hash.py``) of the tarball unpacked to a temporary directory, exactly what a host checks.
Stdlib only.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import stat
import sys
import tarfile
import tempfile

from ansible_collections.lockstep.release.plugins.module_utils.release_state import valid_version
from ansible_collections.lockstep.release.plugins.module_utils.tree_hash import MANIFEST_NAME, tree_hash

# Byte code Python writes next to the source it compiles: build debris, never release content (a host counts it as
# content, see the tree hash, so a release that carried it would pin one Python version's byte code).
DEBRIS_DIRS = ("__pycache__",)
DEBRIS_SUFFIXES = (".pyc", ".pyo")


class Exclude:
    """``--exclude`` patterns, gitignore-like, matched against a path relative to the release directory (``/``
    separators): a pattern without a slash matches a name at any depth (``__pycache__``, ``*.pyc``); one with a
    slash is anchored at the root (``scripts/build-*``, ``/Makefile``); a trailing slash matches directories only
    (``cache/``); ``*`` and ``?`` never cross a slash, ``**`` does (``**/tmp``, ``docs/**/*.png``, ``logs/**``);
    ``[...]`` is a character class. An excluded directory is left out whole. Negation (``!``) is refused: a
    release's content should not depend on the order of patterns."""

    def __init__(self, patterns=()):
        self.patterns = []
        for raw in patterns or ():
            pattern = raw.strip()
            if not pattern or pattern.strip("/") == "":
                raise ValueError("exclude pattern %r matches nothing or everything" % raw)
            if pattern.startswith("!"):
                raise ValueError("exclude pattern %r: negation is not supported" % raw)
            dir_only = pattern.endswith("/")
            pattern = pattern.rstrip("/")
            anchored = "/" in pattern
            pattern = pattern.lstrip("/")
            if any(part in (".", "..") for part in pattern.split("/")):
                raise ValueError("exclude pattern %r: '.' and '..' are not path parts of a release" % raw)
            body = _glob_regex(pattern)
            regex = re.compile(("" if anchored else "(?:.*/)?") + body + r"\Z", re.DOTALL)
            self.patterns.append((raw, regex, dir_only))

    def __bool__(self):
        return bool(self.patterns)

    def match(self, rel, is_dir):
        """The pattern that leaves out ``rel`` (relative, ``/`` separators), or None."""
        for raw, regex, dir_only in self.patterns:
            if (is_dir or not dir_only) and regex.match(rel):
                return raw
        return None


def _glob_regex(pattern):
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i) and (i == 0 or pattern[i - 1] == "/"):
            out.append("(?:[^/]*/)*")  # zero or more directories
            i += 3
        elif pattern.startswith("**", i) and i + 2 == n and (i == 0 or pattern[i - 1] == "/"):
            out.append(".*")  # everything inside
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and "]" in pattern[i + 2:]:
            end = pattern.index("]", i + 2)
            cls = pattern[i + 1:end].replace("\\", "\\\\")
            if cls.startswith("!"):
                cls = "^" + cls[1:]
            out.append("(?!/)[" + cls + "]")
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


class Link(str):
    """A symlink entry of a release: the string is its target."""


def _tarinfo(name, kind, size=0, mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.size = size
    ti.mode = mode
    ti.mtime = 0
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    return ti


def make_tarball(files, modes=None):
    """Gzipped tar bytes of ``files`` (``{relpath: bytes or Link}``): content at the archive root, sorted entries,
    directories implied and 0755, file modes from ``modes`` (default 0644), mtime 0, uid/gid 0, no user or group
    names, gzip header without file name and with mtime 0. The same files give the same bytes, every time."""
    modes = modes or {}
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
            elif isinstance(data, Link):
                ti = _tarinfo(rel, tarfile.SYMTYPE, mode=0o777)
                ti.linkname = str(data)
                tar.addfile(ti)
            else:
                tar.addfile(_tarinfo(rel, tarfile.REGTYPE, len(data), modes.get(rel, 0o644)), io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def content_hash(tarball):
    """Tree hash of the tarball's content, unpacked the way a host unpacks it."""
    with tempfile.TemporaryDirectory(prefix="lockstep-package-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:  # pragma: no cover - Python < 3.11.4; the archive is our own, built just above
                tar.extractall(tmp)
        return tree_hash(tmp)


def flags_from(cfg, where="flags file"):
    """``(flags, retired_flags)`` for a manifest from a flags file's content: ``{"flags": {name: {"meaning",
    "since"}}, "retired_flags": [names]}`` (the file the release's own code reads its switches from)."""
    if not isinstance(cfg, dict) or not isinstance(cfg.get("flags", {}), dict):
        raise ValueError("%s: expected {\"flags\": {name: {\"meaning\", \"since\"}}, \"retired_flags\": [...]}" % where)
    flags = []
    for name, spec in sorted(cfg.get("flags", {}).items()):
        if not isinstance(spec, dict) or "meaning" not in spec or "since" not in spec:
            raise ValueError("%s: flag %r needs \"meaning\" and \"since\"" % (where, name))
        flags.append({"name": name, "meaning": spec["meaning"], "since": spec["since"]})
    retired = sorted(cfg.get("retired_flags", []))
    reused = set(retired) & {f["name"] for f in flags}
    if reused:
        raise ValueError("%s: flags both live and retired: %s" % (where, ", ".join(sorted(reused))))
    return flags, retired


def manifest_for(name, version, artifact, tarball, flags_cfg=None, where="flags file"):
    """The manifest of ``tarball``; ``flags``/``retired_flags`` only when a flags file was given (a manifest that
    declares no flags is not judged by the flag-reuse gate)."""
    manifest = {
        "name": name,
        "version": version,
        "artifact": artifact,
        "sha256": hashlib.sha256(tarball).hexdigest(),
        "content_sha256": content_hash(tarball),
    }
    if flags_cfg is not None:
        manifest["flags"], manifest["retired_flags"] = flags_from(flags_cfg, where)
    return manifest


def _write(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_artifact(out_dir, stem, tarball, manifest):
    """Write ``<stem>.tar.gz`` and ``<stem>.manifest.json`` into ``out_dir``; return their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = os.path.join(out_dir, stem + ".tar.gz"), os.path.join(out_dir, stem + ".manifest.json")
    _write(paths[0], tarball)
    _write(paths[1], (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return paths


def read_tree(src, exclude=None, excluded=None):
    """``(files, modes, skipped)`` of a release directory, for ``make_tarball``.

    Files are 0755 when their owner may execute them, else 0644; links are kept as links. Refused (ValueError):
    a top-level MANIFEST.json (the host writes its own there), a link that is absolute or leaves the directory,
    a setuid/setgid file, anything that is not a file, directory or link: a host would refuse them too. What
    ``exclude`` (an ``Exclude``) leaves out is never read, nor refused; it is appended to the list ``excluded``
    (an excluded directory once, not its content).
    """
    root = os.path.realpath(src)
    if not os.path.isdir(root):
        raise ValueError("%s is not a directory" % src)
    rules = exclude or Exclude()
    files, modes, skipped, left_out = {}, {}, [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in list(dirnames):
            rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
            link = os.path.islink(os.path.join(dirpath, name))
            if rules.match(rel, is_dir=not link):  # a link is not a directory (as for git)
                dirnames.remove(name)
                left_out.append(rel)
            elif name in DEBRIS_DIRS:
                dirnames.remove(name)
                skipped.append(rel)
            elif link:
                dirnames.remove(name)
                filenames.append(name)
        for name in filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if rules.match(rel, is_dir=False):
                left_out.append(rel)
                continue
            st = os.lstat(full)
            if rel == MANIFEST_NAME:
                raise ValueError("%s: a release may not contain a top-level %s (the host writes it)" % (
                    full, MANIFEST_NAME))
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(full)
                # Lexically and on disk (a chain of links can leave while each link alone stays inside).
                inside = [os.path.normpath(os.path.join(os.path.dirname(full), target)), os.path.realpath(full)]
                if os.path.isabs(target) or not all(r == root or r.startswith(root + os.sep) for r in inside):
                    raise ValueError("%s: link to %s leaves the release" % (full, target))
                files[rel] = Link(target)
            elif stat.S_ISREG(st.st_mode):
                if name.endswith(DEBRIS_SUFFIXES):
                    skipped.append(rel)
                    continue
                if st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                    raise ValueError("%s: setuid/setgid files are refused by every host" % full)
                with open(full, "rb") as f:
                    files[rel] = f.read()
                modes[rel] = 0o755 if st.st_mode & stat.S_IXUSR else 0o644
            else:
                raise ValueError("%s: not a file, directory or link" % full)
    if not files:
        raise ValueError("%s holds no files%s" % (src, " once excluded paths are left out" if left_out else ""))
    if excluded is not None:
        excluded.extend(left_out)
    return files, modes, skipped


def package(src, version, name=None, out_dir=".", flags_file=None, exclude=(), excluded=None, service_version=None):
    """Build ``[<name>-]<version>.tar.gz`` and its manifest from directory ``src``; return ``(manifest, paths,
    skipped)``. ``flags_file`` (relative paths are inside ``src``, like ``lockstep_flags_file``) fills the
    manifest's ``flags`` and ``retired_flags``. ``exclude``: gitignore-like patterns (``Exclude``) of paths left
    out of the tarball and so of its checksums; what they left out is appended to the list ``excluded``.
    ``service_version``: the version the service reports when it runs this release, when not its label."""
    if not valid_version(version):
        raise ValueError("version %r is not a plain version string (it is a directory name on every host)" % version)
    if service_version is not None and not valid_version(service_version):
        raise ValueError("service version %r is not a plain version string" % service_version)
    if name is not None and not valid_version(name):
        raise ValueError("name %r is not a plain name (letters, digits, '.', '_', '+', '-')" % name)
    left_out = []
    files, modes, skipped = read_tree(src, Exclude(exclude), left_out)
    if excluded is not None:
        excluded.extend(left_out)
    flags_cfg = None
    if flags_file:
        rel = os.path.normpath(flags_file).replace(os.sep, "/")
        if not os.path.isabs(flags_file) and any(rel == e or rel.startswith(e + "/") for e in left_out):
            # The manifest's flags must come from the file the release ships (lockstep_flags_file is read there).
            raise ValueError("flags file %s is excluded from the release" % flags_file)
        path = flags_file if os.path.isabs(flags_file) else os.path.join(src, flags_file)
        try:
            with open(path) as f:
                flags_cfg = json.load(f)
        except (OSError, ValueError) as e:
            raise ValueError("flags file %s: %s" % (path, e)) from e
    stem = "%s-%s" % (name, version) if name else version
    tarball = make_tarball(files, modes)
    manifest = manifest_for(name or os.path.basename(os.path.realpath(src)), version, stem + ".tar.gz", tarball,
                            flags_cfg, flags_file)
    if service_version and service_version != version:
        # Only when it differs: every other manifest stays byte for byte what it was.
        manifest["service_version"] = service_version
    return manifest, write_artifact(out_dir, stem, tarball, manifest), skipped


def add_command(sub):
    """``bin/lockstep package DIR --version V [--name N] [--out DIR] [--flags-file F] [--exclude PATTERN ...]``."""
    p = sub.add_parser("package", help="build a release artifact and its manifest from any directory",
                       description="Build <name>-<version>.tar.gz (or <version>.tar.gz without --name) and its "
                       "manifest from DIR, reproducibly: the same content gives the same bytes. __pycache__ and "
                       "*.pyc are left out, and whatever an --exclude pattern matches.")
    p.add_argument("dir", help="the release's content (its root becomes the release directory on every host)")
    p.add_argument("--version", required=True, help="the release version (a directory name on every host)")
    p.add_argument("--name", help="artifact name prefix and the manifest's name (default: DIR's name; files are "
                   "then named <version>.tar.gz, lockstep's default lockstep_artifact_name)")
    p.add_argument("--out", default=".", help="output directory (default: .)")
    p.add_argument("--flags-file", help="JSON flags file for the manifest's flags and retired_flags; a relative "
                   "path is inside DIR (as lockstep_flags_file)")
    p.add_argument("--exclude", action="append", default=[], metavar="PATTERN",
                   help="leave out paths matching PATTERN (repeatable), gitignore-like, relative to DIR: without a "
                   "slash it matches a name at any depth ('__pycache__', '*.log'), with one it is anchored at DIR "
                   "('scripts/build-*', '/Makefile'); a trailing slash matches directories only; '*' stays within "
                   "a directory, '**' crosses them; no '!' negation. Left out of the tarball and so of the "
                   "manifest's checksums; listed on stderr")
    p.add_argument("--service-version", metavar="V",
                   help="the version the service reports when it runs this release, when it is not --version (the "
                   "same application version with new data or configuration: --version 1.4.2-data7 "
                   "--service-version 1.4.2); lockstep then proves the release by it")
    p.set_defaults(func=cmd_package)


def cmd_package(args):
    excluded = []
    try:
        manifest, (tar_path, manifest_path), skipped = package(args.dir, args.version, args.name, args.out,
                                                               args.flags_file, args.exclude, excluded,
                                                               args.service_version)
    except ValueError as e:
        print("lockstep package: %s" % e, file=sys.stderr)
        return 1
    if excluded:
        print("lockstep package: excluded %d path(s): %s" % (len(excluded), ", ".join(sorted(excluded))),
              file=sys.stderr)
    if skipped:
        print("lockstep package: left out %d byte-code path(s): %s" % (len(skipped), ", ".join(sorted(skipped))),
              file=sys.stderr)
    print("%s  %s  content %s" % (manifest["sha256"], tar_path, manifest["content_sha256"]))
    print(manifest_path)
    return 0
