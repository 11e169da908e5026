# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Content hash of a release directory.

A release is identified by what is in it, never by its directory name: the same function runs in the build (to
write ``content_sha256`` into the manifest), on every host (to check a kept or staged release) and in the fleet
fixture. Stdlib only, so it also runs on a host's plain python3.
"""

from __future__ import annotations

import hashlib
import os
import stat

MANIFEST_NAME = "MANIFEST.json"


def _file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_entries(root):
    """Return ``(relpath, type, digest)`` for every entry under ``root`` but the top-level manifest, sorted.

    Nothing is skipped: a directory such as ``__pycache__`` holds code Python runs in place of the source, so a
    release that gains one no longer matches its manifest (services must not write into their release: the sample's
    ctl sets PYTHONDONTWRITEBYTECODE). Entries that are neither files nor links (a FIFO, a device) count as ``o``.
    """
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(dirnames)
        # os.walk lists symlinks to directories in dirnames; they are entries, not places to descend.
        for name in list(dirnames):
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                dirnames.remove(name)
                filenames.append(name)
        for name in filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if rel == MANIFEST_NAME:
                continue
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                entries.append((rel, "l", hashlib.sha256(os.readlink(full).encode()).hexdigest()))
            elif stat.S_ISREG(st.st_mode):
                kind = "fx" if st.st_mode & stat.S_IXUSR else "f"
                entries.append((rel, kind, _file_digest(full)))
            else:
                entries.append((rel, "o", hashlib.sha256(oct(stat.S_IFMT(st.st_mode)).encode()).hexdigest()))
    return sorted(entries)


def tree_hash(root):
    """Return the sha256 hex digest of the release content under ``root``."""
    h = hashlib.sha256()
    for rel, kind, digest in tree_entries(root):
        h.update(("%s\0%s\0%s\n" % (rel, kind, digest)).encode())
    return h.hexdigest()
