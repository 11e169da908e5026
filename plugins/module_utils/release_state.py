# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One host's release state, read in one pass on the host.

Shared by the ``state`` module (read only) and the ``deploy`` module (which reports the state it leaves behind),
so a host's whole story costs one module call. Stdlib only: it runs on the host's plain python3.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.error
import urllib.request

from ansible_collections.lockstep.release.plugins.module_utils.tree_hash import MANIFEST_NAME, tree_hash

# A version is a directory name on every host: no path separators, no dot-dot, no leading dash. \Z, not $: "$" also
# matches before a trailing newline, which would make "2.1.0\n" a directory name.
VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+-]{0,63}\Z")


def valid_version(version):
    return bool(version) and bool(VERSION_RE.match(version)) and ".." not in version


def version_key(version):
    """Sort key that orders 1.10.0 after 1.9.0 and never raises on odd names."""
    parts = re.split(r"[.+-]", version or "")
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts]


def read_manifest(release_dir):
    try:
        with open(os.path.join(release_dir, MANIFEST_NAME)) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def release_info(release_dir):
    """What a release directory really holds: its name proves nothing, its content against its manifest does."""
    name = os.path.basename(release_dir)
    manifest = read_manifest(release_dir)
    content = tree_hash(release_dir)
    info = {
        "version": name,
        "path": release_dir,
        "content_sha256": content,
        "manifest_version": manifest.get("version") if manifest else None,
        "sha256": manifest.get("sha256") if manifest else None,
        "valid": False,
        "problem": None,
        # What the release's code reads, for the flag-reuse gate; None when the manifest declares nothing.
        "flags": manifest.get("flags") if manifest and "flags" in manifest else None,
        "retired_flags": (manifest.get("retired_flags") or []) if manifest and "flags" in manifest else None,
    }
    if manifest is None:
        info["problem"] = "no readable %s" % MANIFEST_NAME
    elif manifest.get("version") != name:
        info["problem"] = "manifest says version %r, directory is named %r" % (manifest.get("version"), name)
    elif manifest.get("content_sha256") != content:
        info["problem"] = "content sha256 %s does not match the manifest's %s" % (
            content[:12], str(manifest.get("content_sha256"))[:12])
    else:
        info["valid"] = True
    return info


def _http_json(url, timeout):
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode("utf-8"))


def _proc_link(pid, what):
    try:
        return os.readlink("/proc/%d/%s" % (int(pid), what))
    except (OSError, TypeError, ValueError):
        return None


def _read_pidfile(pidfile):
    try:
        with open(pidfile) as f:
            return int(f.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def running_state(version_url, pidfile, timeout):
    """What the serving process says about itself, checked against the kernel's view of that process."""
    run = {"reachable": False, "version": None, "sha256": None, "directory": None, "pid": None,
           "cwd": None, "exe": None, "pidfile_pid": _read_pidfile(pidfile) if pidfile else None, "error": None}
    if not version_url:
        run["error"] = "no version URL configured"
        return run
    try:
        data = _http_json(version_url, timeout)
    except (TimeoutError, urllib.error.URLError, OSError, ValueError) as e:
        run["error"] = "GET %s: %s" % (version_url, getattr(e, "reason", e))
        return run
    run.update(reachable=True, version=data.get("version"), sha256=data.get("sha256"),
               directory=data.get("directory"), pid=data.get("pid"))
    # The process that answered is the one that counts, whatever a (possibly stale) pidfile says.
    run["cwd"] = _proc_link(run["pid"], "cwd")
    run["exe"] = _proc_link(run["pid"], "exe")
    return run


def disk_free(path):
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    return shutil.disk_usage(path or "/").free


def read_flags(release_dir, flags_file):
    if not release_dir or not flags_file:
        return None
    try:
        with open(os.path.join(release_dir, flags_file)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_lock(lock_path):
    if not lock_path or not os.path.exists(lock_path):
        return None
    try:
        with open(lock_path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"owner": "unreadable lock file", "path": lock_path}


def gather(base, version_url=None, pidfile=None, flags_file=None, lock_path=None, timeout=3.0):
    """Return the host's release state as one JSON-able dict (the ``lockstep_state`` contract)."""
    releases_dir = os.path.join(base, "releases")
    current = os.path.join(base, "current")
    releases = []
    if os.path.isdir(releases_dir):
        for name in sorted(os.listdir(releases_dir), key=version_key):
            path = os.path.join(releases_dir, name)
            if name.startswith(".") or not os.path.isdir(path) or os.path.islink(path):
                continue
            releases.append(release_info(path))

    active_path = os.path.realpath(current) if os.path.islink(current) else None
    active = next((r for r in releases if r["path"] == active_path), None)
    state = {
        "base": base,
        "bare": not releases and active_path is None,
        "active_version": active["version"] if active else None,
        "active_path": active_path,
        "active_valid": bool(active and active["valid"]),
        "active_content_sha256": active["content_sha256"] if active else None,
        "active_problem": None if active is None or active["valid"] else active["problem"],
        "releases": releases,
        "flags": read_flags(active_path, flags_file),
        "disk_free_bytes": disk_free(base),
        "lock": read_lock(lock_path),
    }
    if active_path and active is None:
        state["active_problem"] = "current points at %s, which is not a kept release" % active_path

    run = running_state(version_url, pidfile, timeout)
    run["from_active"] = bool(
        active_path and run["reachable"]
        and run["directory"] and os.path.realpath(run["directory"]) == active_path
        and run["cwd"] and os.path.realpath(run["cwd"]) == active_path
    )
    state["running"] = run
    state["running_version"] = run["version"]
    state["consistent"] = bool(
        state["active_valid"] and run["from_active"] and run["version"] == state["active_version"]
    )
    return state


def summary(state):
    """The few fields a gate, the ledger and a person need from a full state."""
    run = state.get("running") or {}
    return {
        "version": state.get("active_version"),
        "running_version": run.get("version"),
        "from_active": run.get("from_active"),
        "consistent": state.get("consistent"),
        "problem": state.get("active_problem") or run.get("error"),
    }
