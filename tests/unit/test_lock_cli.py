"""bin/lockstep lock show|break on a real lock file: the holder is shown, the lock is broken only with the
holder's run id typed back, and the break is recorded in a ledger that verifies."""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def lockstep(tmp_path, *args, input=None):
    env = dict(os.environ, LOCKSTEP_LEDGER_DIR=str(tmp_path / "ledger"))
    return subprocess.run([os.path.join(REPO, "bin", "lockstep"), *args], env=env, capture_output=True, text=True,
                          input=input, timeout=30)


@pytest.fixture
def dead_lock(tmp_path):
    proc = subprocess.Popen(["true"])
    proc.wait()
    lock = {"run_id": "20260801T093000-%d-2.2.0" % proc.pid, "user": "ops", "controller": socket.gethostname(),
            "pid": proc.pid, "version": "2.2.0", "started": "2026-08-01T09:30:00Z"}
    path = tmp_path / "release.lock"
    path.write_text(json.dumps(lock))
    return path, lock


def test_show_names_the_holder_and_its_dead_pid(tmp_path, dead_lock):
    path, lock = dead_lock
    out = lockstep(tmp_path, "lock", "show", str(path))
    assert out.returncode == 0, out
    for value in (lock["run_id"], "ops", socket.gethostname(), str(lock["pid"]), "2.2.0", "2026-08-01T09:30:00Z",
                  "no (the process is gone: a dead run)"):
        assert value in out.stdout, (value, out.stdout)


def test_show_of_a_free_lock(tmp_path):
    out = lockstep(tmp_path, "lock", "show", str(tmp_path / "none.lock"))
    assert out.returncode == 0 and "no release lock held" in out.stdout, out


def test_break_refuses_without_the_run_id_and_with_a_wrong_one(tmp_path, dead_lock):
    path, lock = dead_lock
    no_tty = lockstep(tmp_path, "lock", "break", str(path), input="")
    assert no_tty.returncode == 1 and "--run-id" in no_tty.stderr, no_tty
    wrong = lockstep(tmp_path, "lock", "break", "--run-id", lock["run_id"] + "x", str(path))
    assert wrong.returncode == 1 and "lock NOT broken" in wrong.stderr, wrong
    assert json.loads(path.read_text()) == lock
    assert not (tmp_path / "ledger").exists()


def test_break_with_the_run_id_removes_it_and_records_it(tmp_path, dead_lock):
    path, lock = dead_lock
    out = lockstep(tmp_path, "lock", "break", "--run-id", lock["run_id"], "--reason", "controller died", str(path))
    assert out.returncode == 0, out
    assert not path.exists()
    (name,) = os.listdir(tmp_path / "ledger")
    verified = lockstep(tmp_path, "ledger", "verify", str(tmp_path / "ledger" / name))
    assert verified.returncode == 0 and "chain intact, complete" in verified.stdout, verified
    with open(tmp_path / "ledger" / name) as f:
        (record,) = [json.loads(line) for line in f]
    assert record["event"] == "lock_broken" and record["lock"] == lock and record["holder_dead"], record
    assert record["reason"] == "controller died" and record["path"] == str(path), record
    shown = lockstep(tmp_path, "ledger", "show", str(tmp_path / "ledger" / name))
    assert "lock_broken" in shown.stdout and lock["run_id"] in shown.stdout, shown
