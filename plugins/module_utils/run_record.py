# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run record: a JSON file next to the fleet's release lock (``<lockstep_lock_path>.run``) that names the run
holding the fleet, the version it releases and the servers it drained in the load balancer and has not put back.
A controller that dies mid-release leaves it behind, so the next run tells lockstep's own drains from an operator's
and recognises a fleet left mixed by that release (docs/CONTRACTS.md, "Drain record")."""

from __future__ import annotations

import json
import os


def read_record(path):
    """The record as a dict, or None when there is none (or it is unreadable)."""
    try:
        with open(path) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def update_record(path, run_id, version, state, names, now):
    """Keep the record of lockstep's own drains in step with what the load balancer confirmed (``now``: server ->
    ``{"serving": bool, ...}`` after the step); atomically replaced, readable by its owner only."""
    rec = read_record(path) or {}
    drained = set(rec.get("drained") or [])
    for name in names:
        info = now.get(name)
        if info is None:
            continue
        if state == "drained" and not info.get("serving"):
            drained.add(name)
        elif (state == "ready" and info.get("serving")) or state == "maint":
            drained.discard(name)
    new = {"run_id": run_id or rec.get("run_id"), "version": version or rec.get("version"), "drained": sorted(drained)}
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    write_json(path, new)
    return new


def write_json(path, data):
    """Replace ``path`` with ``data`` as JSON, complete on disk (fsync, then rename), readable by its owner only."""
    tmp = "%s.tmp-%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
