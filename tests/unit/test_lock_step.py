"""lockstep.release.lock, both ways it runs: in the worker when the lock's host is the controller itself (the local
connection, no become: no module process), and as a module everywhere else, here the same host through become to
another user, which must run as that user, never in the worker as the controller's user (make test runs as root).
The module run directly is tested in test_release_lock.py."""

from __future__ import annotations

import json
import os
import socket

AS_NOBODY = {"become": True, "become_method": "sudo", "become_user": "nobody"}
OWNER = {"user": "alice", "controller": socket.gethostname(), "pid": os.getpid(), "version": "2.1.0"}


def lock(path, run_id, **args):
    return {"lockstep.release.lock": dict(path=str(path), run_id=run_id, **args)}


def test_the_lock_is_taken_in_the_worker_on_the_controller_and_as_a_module_as_the_become_user(run_play, tmp_path):
    path = tmp_path / "lib" / "lockstep" / "release.lock"
    other = tmp_path / "other" / "release.lock"
    record = tmp_path / "lib" / "lockstep" / "release.lock.run"
    record.parent.mkdir(parents=True, mode=0o700)
    record.write_text(json.dumps({"run_id": "dead-run", "version": "2.0.0", "drained": ["h2"]}))
    run_play(
        # Here: taken, with the run record a dead controller left.
        (lock(path, "run-1", owner=OWNER, record=str(record)),
         ["out is changed", "out.lock.run_id == 'run-1'", "out.lock.user == 'alice'",
          "out.lockstep_record.drained == ['h2']"]),
        (lock(path, "run-1", owner=OWNER), ["out is not changed", "out.lock.run_id == 'run-1'"]),
        # Another run is refused, naming the holder, as the release-lock gate.
        (lock(path, "run-2", owner=dict(OWNER, version="2.2.0")),
         ["out is failed", "'another release holds the lock %s' in out.msg" % path, "out.stale is false",
          "out.lockstep_gate.gate == 'release-lock'", "out.lock.run_id == 'run-1'"]),
        # Check mode here gives nothing back.
        (dict(lock(path, "run-1", state="released"), check_mode=True), ["out is changed"]),
        (lock(path, "run-2", owner=OWNER), ["out is failed", "out.lock.run_id == 'run-1'"]),
        # A bad argument is refused as the module would refuse it.
        (lock(path, "run-1", state="gone"), ["out is failed", "'gone' in out.msg"]),
        # Through become: the module, as that user, who may not write here; as root, it gives the lock back.
        (dict(lock(other, "run-3", owner=OWNER), **AS_NOBODY), ["out is failed"]),
        (dict(lock(path, "run-1", state="released", record=str(record), outcome={"status": "succeeded"}),
              become=True, become_method="sudo"),
         ["out is changed", "out.lock.run_id == 'run-1'"]),
        # Given back, it is free for the next run, here.
        (lock(path, "run-4", owner=OWNER), ["out is changed", "out.lock.run_id == 'run-4'"]),
    )
    assert not other.exists()
    assert json.loads(path.read_text())["run_id"] == "run-4"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    outcome = json.loads((tmp_path / "lib" / "lockstep" / "release.lock.outcome").read_text())
    assert outcome["status"] == "succeeded" and outcome["run_id"] == "run-1", outcome
    assert record.exists()  # it still names a drain: kept for the run that resumes
