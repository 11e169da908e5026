# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet's release lock: what the lockstep.release.lock module does, as a function of its validated parameters,
so that its action can run it in the worker when the lock's host is the controller itself (a module process there
costs a Python start and ansible's module_utils for a few file operations)."""

from __future__ import annotations

import json
import os
import socket
import time

from ansible_collections.lockstep.release.plugins.module_utils.run_record import read_record, write_json

ARGUMENT_SPEC = dict(
    path=dict(type="path", required=True),
    state=dict(type="str", default="acquired", choices=["acquired", "released"]),
    run_id=dict(type="str", required=True),
    owner=dict(type="dict", default={}),
    record=dict(type="path"),
    outcome=dict(type="dict"),
)


def write_outcome(path, outcome, run_id, version):
    """The run's outcome, complete on disk (fsync, then rename) before the lock that guards it goes."""
    out = dict(outcome, run_id=run_id, version=version,
               finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    if out.get("serving") in ("", "None"):
        out["serving"] = None  # a template that yields none renders as text on ansible-core 2.16
    if out.get("serving") is None and out.get("status") == "refused":
        out["serving"] = (read_record(path) or {}).get("serving")
    write_json(path, out)


def owner_gone(lock):
    """Only a lock taken from this very host can be proven stale: its owner PID no longer exists."""
    if not lock or lock.get("controller") != socket.gethostname():
        return False
    try:
        os.kill(int(lock.get("pid")), 0)
    except ProcessLookupError:
        return True
    except (OSError, TypeError, ValueError):
        return False
    return False


def step(p, check_mode):
    """The lock step's result: the module's return values, with ``failed=True`` and ``msg`` when refused."""
    held = read_record(p["path"])
    found = {"lockstep_record": read_record(p["record"])} if p["record"] and p["state"] == "acquired" else {}
    if p["state"] == "released":
        if not held or held.get("run_id") != p["run_id"]:
            return dict(changed=False, lock=held or {}, stale=False)
        if not check_mode:
            if p["outcome"] is not None:
                write_outcome(p["path"] + ".outcome", p["outcome"], p["run_id"], held.get("version"))
            # The run's drain record goes with the lock once it holds no drain: nothing is left to resume.
            rec = read_record(p["record"]) if p["record"] else None
            if rec is not None and not rec.get("drained"):
                os.unlink(p["record"])
            os.unlink(p["path"])
        return dict(changed=True, lock=held, stale=False)

    if held and held.get("run_id") == p["run_id"]:
        return dict(changed=False, lock=held, stale=False, **found)
    lock = dict(p["owner"], run_id=p["run_id"], started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    if not held and not check_mode and not os.path.isdir(os.path.dirname(p["path"]) or "."):
        os.makedirs(os.path.dirname(p["path"]), mode=0o700)
        os.chmod(os.path.dirname(p["path"]), 0o700)  # the lock's directory for its owner only, whatever the umask
    if not held and not check_mode:
        os.makedirs(os.path.dirname(p["path"]) or ".", exist_ok=True)
        try:
            fd = os.open(p["path"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            held = read_record(p["path"]) or {"owner": "unknown (lock file unreadable)"}
        else:
            os.fchmod(fd, 0o600)  # for its owner only, whatever the umask (set before anything is written)
            with os.fdopen(fd, "w") as f:
                json.dump(lock, f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            return dict(changed=True, lock=lock, stale=False, **found)
    if not held:
        return dict(changed=True, lock=lock, stale=False, **found)
    stale = owner_gone(held)
    who = "release of %s by %s@%s (pid %s, run %s) since %s" % (
        held.get("version"), held.get("user"), held.get("controller"), held.get("pid"), held.get("run_id"),
        held.get("started"))
    if stale:
        msg = ("stale release lock %s: %s, and that process is gone. If no release is running, break it (recorded "
               "in the ledger) with: bin/lockstep lock break --run-id %s; then re-run the same release to continue it"
               % (p["path"], who, held.get("run_id")))
    else:
        msg = "another release holds the lock %s: %s (bin/lockstep lock show)" % (p["path"], who)
    return dict(failed=True, changed=False, msg=msg, lock=held, stale=stale, lockstep_gate={
        "gate": "release-lock", "passed": False, "hosts": {}, "message": msg,
        "halted": [{"host": held.get("controller") or "unknown", "message": msg}]})
