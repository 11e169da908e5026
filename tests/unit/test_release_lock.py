"""lockstep.release.lock, run as Ansible runs a module, on a lock file in a temporary directory."""

import json
import os
import socket
import subprocess

import pytest


@pytest.fixture
def lock_path(tmp_path):
    return tmp_path / "lib" / "lockstep" / "release.lock"


def owner(pid=None, version="2.1.0"):
    return {"user": "alice", "controller": socket.gethostname(), "pid": pid or os.getpid(), "version": version}


def lock(run_module, path, run_id, state="acquired", check_mode=False, **extra):
    return run_module("lock", dict(path=str(path), state=state, run_id=run_id, **extra), check_mode=check_mode)


def dead_pid():
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_acquire_creates_the_lock_file(run_module, lock_path):
    rc, res = lock(run_module, lock_path, "run-1", owner=owner())
    assert rc == 0, res
    assert res["changed"] is True
    held = json.loads(lock_path.read_text())
    assert held == res["lock"]
    assert held["run_id"] == "run-1"
    assert held["user"] == "alice" and held["version"] == "2.1.0"
    assert held["started"].endswith("Z")


def test_acquire_again_by_the_same_run_is_a_no_op(run_module, lock_path):
    assert lock(run_module, lock_path, "run-1", owner=owner())[0] == 0
    content = lock_path.read_text()
    rc, res = lock(run_module, lock_path, "run-1", owner=owner())
    assert rc == 0, res
    assert res["changed"] is False
    assert lock_path.read_text() == content


def test_second_release_is_refused_naming_the_holder(run_module, lock_path):
    assert lock(run_module, lock_path, "run-1", owner=owner())[0] == 0
    content = lock_path.read_text()
    rc, res = lock(run_module, lock_path, "run-2", owner=owner(version="2.2.0"))
    assert rc != 0
    assert res["failed"] is True
    assert res["stale"] is False
    assert "another release holds the lock %s" % lock_path in res["msg"]
    assert "release of 2.1.0 by alice@%s (pid %d, run run-1)" % (socket.gethostname(), os.getpid()) in res["msg"]
    assert res["lock"]["run_id"] == "run-1"
    assert res["lockstep_gate"]["gate"] == "release-lock" and res["lockstep_gate"]["passed"] is False
    assert lock_path.read_text() == content


def test_lock_of_a_dead_process_on_this_host_is_reported_stale_not_broken(run_module, lock_path):
    assert lock(run_module, lock_path, "run-1", owner=owner(pid=dead_pid()))[0] == 0
    content = lock_path.read_text()
    rc, res = lock(run_module, lock_path, "run-2", owner=owner())
    assert rc != 0
    assert res["stale"] is True
    assert res["msg"].startswith("stale release lock %s" % lock_path)
    assert "bin/lockstep lock break --run-id run-1" in res["msg"]
    assert lock_path.read_text() == content


def test_lock_from_another_controller_is_never_called_stale(run_module, lock_path):
    other = dict(owner(pid=dead_pid()), controller="some-other-controller.example")
    assert lock(run_module, lock_path, "run-1", owner=other)[0] == 0
    rc, res = lock(run_module, lock_path, "run-2", owner=owner())
    assert rc != 0
    assert res["stale"] is False
    assert "another release holds the lock" in res["msg"]


def test_unreadable_lock_file_still_holds(run_module, lock_path):
    lock_path.parent.mkdir(parents=True)
    lock_path.write_text("{half a lock")
    rc, res = lock(run_module, lock_path, "run-2", owner=owner())
    assert rc != 0
    assert lock_path.read_text() == "{half a lock"


def test_release_by_someone_else_does_nothing(run_module, lock_path):
    assert lock(run_module, lock_path, "run-1", owner=owner())[0] == 0
    content = lock_path.read_text()
    rc, res = lock(run_module, lock_path, "run-2", state="released")
    assert rc == 0, res
    assert res["changed"] is False
    assert lock_path.read_text() == content


def test_release_by_the_owner_removes_the_lock(run_module, lock_path):
    assert lock(run_module, lock_path, "run-1", owner=owner())[0] == 0
    rc, res = lock(run_module, lock_path, "run-1", state="released")
    assert rc == 0, res
    assert res["changed"] is True
    assert not lock_path.exists()
    # and the next release can take it
    assert lock(run_module, lock_path, "run-2", owner=owner())[0] == 0


def test_releasing_a_lock_nobody_holds(run_module, lock_path):
    rc, res = lock(run_module, lock_path, "run-1", state="released")
    assert rc == 0, res
    assert res["changed"] is False


def test_check_mode_neither_takes_nor_removes(run_module, lock_path):
    rc, res = lock(run_module, lock_path, "run-1", owner=owner(), check_mode=True)
    assert rc == 0, res
    assert res["changed"] is True
    assert not lock_path.exists()
    assert lock(run_module, lock_path, "run-1", owner=owner())[0] == 0
    rc, res = lock(run_module, lock_path, "run-1", state="released", check_mode=True)
    assert rc == 0 and res["changed"] is True
    assert lock_path.exists()


def test_release_removes_the_drain_record_only_once_it_holds_no_drain(run_module, lock_path):
    record = lock_path.parent / (lock_path.name + ".run")
    record.parent.mkdir(parents=True)
    record.write_text('{"run_id": "run-1", "version": "2.1.0", "drained": ["h2"]}')
    assert lock(run_module, lock_path, "run-1", owner=owner())[0] == 0
    rc, _ = lock(run_module, lock_path, "run-1", state="released", record=str(record))
    assert rc == 0 and not lock_path.exists()
    assert record.exists(), "a record that still lists a drained server is what the next run resumes from"
    record.write_text('{"run_id": "run-1", "version": "2.1.0", "drained": []}')
    assert lock(run_module, lock_path, "run-1", owner=owner())[0] == 0
    lock(run_module, lock_path, "run-1", state="released", record=str(record))
    assert not record.exists()
