# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One host's release state, read in one pass on the host.

Shared by the ``state`` module (read only) and the ``deploy`` module (which reports the state it leaves behind),
so a host's whole story costs one module call. Stdlib only: it runs on the host's plain python3.
"""

from __future__ import annotations

import json
import os
import pwd
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
        # The version the service reports when it runs this release: its label unless the manifest says otherwise
        # (the same application version with new data or configuration: bin/lockstep package --service-version).
        "service_version": (manifest.get("service_version") if manifest else None) or name,
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


# What lockstep asks of a service, at least: its version URL answers the running version, as plain text or as a
# JSON object with the version in one field (``version_field``, a dotted path for nested objects: ``field_value``).
# Everything else it learns from the host: the process from the pidfile, where it was started from the kernel
# (/proc/PID/cwd and exe).
# A service that also reports ``pid`` and ``directory`` in its JSON gets the richer check (the process that answered,
# and where it says it started, must agree with the kernel).
DEFAULT_VERSION_FIELD = "version"
# A plain-text answer longer than this, or over several lines, is not a version (an HTML page, an error text).
_PLAIN_MAX = 128


def field_value(data, path, missing=None):
    """The value at ``path`` in a JSON object, ``missing`` when there is none.

    The one reader of a dotted path in lockstep (``lockstep_version_field``, a smoke check's ``json`` keys): a key
    that is literally ``path`` wins (``{"app.version": ...}``), else ``path`` is split at every dot and followed
    through nested objects (``build.version`` -> ``data["build"]["version"]``). Lists are not indexed.
    """
    if isinstance(data, dict) and path in data:
        return data[path]
    value = data
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return missing
        value = value[part]
    return value


def parse_version(body, field=None):
    """``(version, data, problem)`` from a version URL's body.

    ``data`` is the JSON object when the service answered one (for the richer checks), else None; ``problem`` says
    why no version could be read. Shared by the host (``running_state``) and the controller's probes, so both read a
    service the same way.
    """
    field = field or DEFAULT_VERSION_FIELD
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
        plain = text.strip()
        if not plain or "\n" in plain or len(plain) > _PLAIN_MAX:
            return None, None, "answer is neither JSON nor a one-line plain-text version: %r" % text[:60]
        return plain, None, None
    if isinstance(data, str):
        return data.strip() or None, None, None if data.strip() else "empty version"
    if not isinstance(data, dict):
        return None, None, "JSON answer is a %s, not an object or a string" % type(data).__name__
    value = field_value(data, field)
    if value is None or isinstance(value, (dict, list, bool)):
        return None, data, "JSON answer has no version in field %r" % field
    return str(value), data, None


def _http_get(url, timeout):
    req = urllib.request.Request(url, headers={"Accept": "application/json, text/plain;q=0.9"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read(65536)


def _login():
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return "uid %d" % os.geteuid()


def _denied(denied, path):
    # A state read without the privilege to read it is not a state: said as such, never as a version or a mix.
    if denied is not None:
        denied.append("%s: permission denied for user %s" % (path, _login()))


def _proc_link(pid, what, denied=None):
    path = "/proc/%s/%s" % (pid, what)
    try:
        return os.readlink("/proc/%d/%s" % (int(pid), what))
    except PermissionError:
        _denied(denied, path)
        return None
    except (OSError, TypeError, ValueError):
        return None


def _read_pidfile(pidfile, denied=None):
    try:
        with open(pidfile) as f:
            return int(f.read().strip() or 0) or None
    except PermissionError:
        _denied(denied, pidfile)
        return None
    except (OSError, ValueError):
        return None


def _as_pid(value):
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def running_state(version_url, pidfile, timeout, version_field=None, denied=None):
    """What the serving process says about itself, checked against the kernel's view of that process.

    ``pid_source`` says which process the kernel was asked about: ``service`` (the pid the service reported, the
    process that answered, whatever a possibly stale pidfile says) or ``pidfile`` (the minimum contract).
    """
    run = {"reachable": False, "version": None, "sha256": None, "directory": None, "pid": None,
           "pid_source": None, "cwd": None, "exe": None,
           "pidfile_pid": _read_pidfile(pidfile, denied) if pidfile else None, "error": None}
    if not version_url:
        run["error"] = "no version URL configured"
        return run
    try:
        body = _http_get(version_url, timeout)
    except (TimeoutError, urllib.error.URLError, OSError, ValueError) as e:
        run["error"] = "GET %s: %s" % (version_url, getattr(e, "reason", e))
        return run
    version, data, problem = parse_version(body, version_field)
    run.update(reachable=True, version=version)
    if problem:
        run["error"] = "GET %s: %s" % (version_url, problem)
    if data is not None:
        run.update(sha256=data.get("sha256"), directory=data.get("directory"))
    reported = _as_pid(data.get("pid")) if data is not None else None
    if reported:
        run.update(pid=reported, pid_source="service")
    elif run["pidfile_pid"]:
        run.update(pid=run["pidfile_pid"], pid_source="pidfile")
    run["cwd"] = _proc_link(run["pid"], "cwd", denied)
    run["exe"] = _proc_link(run["pid"], "exe", denied)
    return run


def by_label(run, releases):
    """The running process's version in lockstep's terms, the release's label: a process that runs from a kept
    release and reports that release's ``service_version`` runs that release (``reported_version`` keeps what it
    said). Nothing changes for a release whose manifest declares no other service version."""
    for rel in releases:
        if rel.get("service_version", rel["version"]) == rel["version"] or run.get("version") != rel["service_version"]:
            continue
        root = os.path.realpath(rel["path"])
        if (run.get("cwd") and os.path.realpath(run["cwd"]) == root) or (run.get("exe") and _inside(run["exe"], root)):
            run["reported_version"], run["version"] = run["version"], rel["version"]
            return


def _inside(path, root):
    path = os.path.realpath(path)
    return path == root or path.startswith(root + os.sep)


def started_from(run, active_path):
    """``(True, None)`` when the process was started from ``active_path``, else ``(False, why)``.

    The kernel decides: the process's cwd is the release directory, or its executable lies inside it (a program
    shipped in the release). When the service also reports the directory it started from, that must agree too.
    """
    if not active_path:
        return False, "no active release"
    if not run.get("reachable"):
        return False, run.get("error") or "service does not answer"
    if not run.get("pid"):
        return False, "no process to check: the service reports no pid and no pidfile names one"
    if not run.get("cwd") and not run.get("exe"):
        return False, "process %s (from the %s) is not running" % (run["pid"], run.get("pid_source"))
    if not (run.get("cwd") and os.path.realpath(run["cwd"]) == active_path) and not (
            run.get("exe") and _inside(run["exe"], active_path)):
        return False, "process %s runs in %s (exe %s), not from %s" % (
            run["pid"], run.get("cwd"), run.get("exe"), active_path)
    if run.get("directory") is not None and os.path.realpath(str(run["directory"])) != active_path:
        return False, "process %s says it started from %s, not %s" % (run["pid"], run["directory"], active_path)
    return True, None


def _writable(base):
    """Whether this login can create releases in ``base`` (or create ``base``, on a bare host)."""
    path = base
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    return os.access(path or "/", os.W_OK | os.X_OK)


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


def gather(base, version_url=None, pidfile=None, flags_file=None, lock_path=None, timeout=3.0, version_field=None):
    """Return the host's release state as one JSON-able dict (the ``lockstep_state`` contract)."""
    releases_dir = os.path.join(base, "releases")
    current = os.path.join(base, "current")
    releases = []
    denied = []
    if os.path.isdir(releases_dir) and not os.access(releases_dir, os.R_OK | os.X_OK):
        _denied(denied, releases_dir)
    elif os.path.isdir(releases_dir):
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

    run = running_state(version_url, pidfile, timeout, version_field, denied)
    by_label(run, releases)
    run["from_active"], run["problem"] = started_from(run, active_path)
    state["user"] = _login()
    state["unreadable"] = denied
    state["writable"] = _writable(base)
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
