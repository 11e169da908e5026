#!/usr/bin/python
# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lock
short_description: The fleet's release lock, one release at a time
version_added: "0.1.0"
description:
  - A lock file created atomically (C(O_CREAT|O_EXCL)) on one host shared by every release of a fleet (lockstep
    uses the load balancer host), holding the owner, the version being released and the start time.
  - C(state=acquired) takes the lock or fails, naming who holds it. A lock whose owner process is gone (same
    controller host, dead PID) is reported as stale with the command that clears it; it is never broken silently.
  - C(state=released) removes the lock only if I(run_id) owns it.
options:
  path:
    description: Path of the lock file.
    type: path
    required: true
  state:
    description: Take or give back the lock.
    type: str
    choices: [acquired, released]
    default: acquired
  run_id:
    description: Identifies this release run; only the owner can release.
    type: str
    required: true
  owner:
    description: Who and what holds the lock (user, controller host, controller PID, version...), stored in the lock.
    type: dict
    default: {}
  record:
    description:
      - The run record next to the lock (see M(lockstep.release.run_record)); removed with the lock on release when
        it no longer lists a drained server.
      - On C(state=acquired) it is read and returned as C(lockstep_record), what a run whose controller died left
        behind (its run id, version and drains), for the preflight to continue that release.
    type: path
  outcome:
    description:
      - With C(state=released), the outcome of the run that held the lock, written atomically next to the lock
        (C(<path>.outcome)) before the lock is removed, so whoever sees the lock free can already read what the
        run did (the guard judges the fleet against it, never against the run before).
      - Keys C(status) (the run's C(lockstep_status)) and C(serving) (the version every host must serve now,
        null when the run leaves that unknown); C(run_id), C(version) and C(finished) are added.
      - A C(refused) run changed nothing, so the C(serving) of the run before it is kept.
    type: dict
extends_documentation_fragment:
  - lockstep.release.host
"""

EXAMPLES = r"""
- name: Take the fleet's release lock
  lockstep.release.lock:
    path: /var/lib/lockstep/release.lock
    run_id: "{{ lockstep_run_id }}"
    owner: {user: "{{ lookup('ansible.builtin.env', 'USER') }}", version: "2.1.0"}
  delegate_to: "{{ groups['lb'][0] }}"
  run_once: true
"""

RETURN = r"""
lock:
  description: The lock's content (ours after acquiring; the holder's when refused).
  returned: always
  type: dict
  sample: {"run_id": "20261125T0900-1234", "version": "2.1.0", "started": "2026-11-25T09:00:00Z"}
stale:
  description: Whether a lock held by someone else belongs to a process that no longer exists.
  returned: always
  type: bool
  sample: false
lockstep_record:
  description: The run record found when acquiring (null when there is none).
  returned: when state is acquired and record is set
  type: dict
  sample: {"run_id": "20261125T101500-4242-2.1.0", "version": "2.1.0", "drained": ["h2"]}
"""

import json
import os
import socket
import time

from ansible.module_utils.basic import AnsibleModule


def read(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_outcome(path, outcome, run_id, version):
    """The run's outcome, complete on disk (fsync, then rename) before the lock that guards it goes."""
    out = dict(outcome, run_id=run_id, version=version,
               finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    if out.get("serving") in ("", "None"):
        out["serving"] = None  # a template that yields none renders as text on ansible-core 2.16
    if out.get("serving") is None and out.get("status") == "refused":
        out["serving"] = (read(path) or {}).get("serving")
    tmp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(out, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


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


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", default="acquired", choices=["acquired", "released"]),
            run_id=dict(type="str", required=True),
            owner=dict(type="dict", default={}),
            record=dict(type="path"),
            outcome=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    held = read(p["path"])
    found = {"lockstep_record": read(p["record"])} if p["record"] and p["state"] == "acquired" else {}
    if p["state"] == "released":
        if not held or held.get("run_id") != p["run_id"]:
            module.exit_json(changed=False, lock=held or {}, stale=False)
        if not module.check_mode:
            if p["outcome"] is not None:
                write_outcome(p["path"] + ".outcome", p["outcome"], p["run_id"], held.get("version"))
            # The run's drain record goes with the lock once it holds no drain: nothing is left to resume.
            rec = read(p["record"]) if p["record"] else None
            if rec is not None and not rec.get("drained"):
                os.unlink(p["record"])
            os.unlink(p["path"])
        module.exit_json(changed=True, lock=held, stale=False)

    if held and held.get("run_id") == p["run_id"]:
        module.exit_json(changed=False, lock=held, stale=False, **found)
    lock = dict(p["owner"], run_id=p["run_id"], started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    if not held and not module.check_mode and not os.path.isdir(os.path.dirname(p["path"]) or "."):
        os.makedirs(os.path.dirname(p["path"]), mode=0o700)
        os.chmod(os.path.dirname(p["path"]), 0o700)  # the lock's directory for its owner only, whatever the umask
    if not held and not module.check_mode:
        os.makedirs(os.path.dirname(p["path"]) or ".", exist_ok=True)
        try:
            fd = os.open(p["path"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            held = read(p["path"]) or {"owner": "unknown (lock file unreadable)"}
        else:
            os.fchmod(fd, 0o600)  # for its owner only, whatever the umask (set before anything is written)
            with os.fdopen(fd, "w") as f:
                json.dump(lock, f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            module.exit_json(changed=True, lock=lock, stale=False, **found)
    if not held:
        module.exit_json(changed=True, lock=lock, stale=False, **found)
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
    module.fail_json(msg=msg, lock=held, stale=stale, lockstep_gate={
        "gate": "release-lock", "passed": False, "hosts": {}, "message": msg,
        "halted": [{"host": held.get("controller") or "unknown", "message": msg}]})


if __name__ == "__main__":
    main()
