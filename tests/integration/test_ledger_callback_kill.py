"""A release killed with SIGKILL leaves a readable, verifiable ledger; a tampered ledger fails verification."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from _ledger_helpers import HALTED, env_for, ledger, lockstep, only_ledger, playbook_cmd, run_playbook

pytestmark = pytest.mark.without_fleet  # localhost only: runs beside the fleet tests (tests/run_all.py)


@pytest.fixture(autouse=True)
def verify_configuration(tmp_path, monkeypatch):
    """bin/lockstep ledger verify finds a ledger's anchor where the configuration says, never where the ledger says:
    the anchor directory the test's runs use (``_ledger_helpers.env_for``), and no key."""
    monkeypatch.setenv(ledger.ANCHOR_DIR_ENV, str(tmp_path / "anchors"))
    monkeypatch.delenv(ledger.KEY_ENV, raising=False)
    monkeypatch.delenv(ledger.KEY_FILE_ENV, raising=False)


def test_sigkill_mid_release_leaves_a_valid_ledger(tmp_path):
    ledger_dir = tmp_path / "ledger"
    proc = subprocess.Popen(playbook_cmd("release.yml", dict(HALTED, pause_in="rollout")), cwd=tmp_path,
                            env=env_for(ledger_dir), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        path = None
        while time.monotonic() < deadline:
            if ledger_dir.is_dir() and os.listdir(ledger_dir):
                path = only_ledger(ledger_dir)
                with open(path) as f:
                    if any('"phase_enter"' in line and '"rollout"' in line for line in f):
                        break
            assert proc.poll() is None, "ansible-playbook ended before it could be killed"
            time.sleep(0.1)
        else:
            raise AssertionError("the release never entered the rollout phase")
        time.sleep(1.0)  # now inside the paused task
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the orphaned workers
        except ProcessLookupError:
            pass
    assert proc.returncode == -signal.SIGKILL

    with open(path, "rb") as f:
        raw = f.read()
    assert raw.endswith(b"\n")
    lines = raw.splitlines()
    recs = [json.loads(line) for line in lines]  # every line is a whole JSON object
    assert [r["event"] for r in recs][-1] == "phase_enter"
    assert [r["phase"] for r in recs if r["event"] == "phase_enter"] == ["preflight", "rollout"]
    assert any(r["event"] == "gate" and r["gate"] == "preflight" for r in recs)
    assert not any(r["event"] == "release_finished" for r in recs)

    result = ledger.verify(path)
    assert result.ok and not result.complete and result.records == len(recs)
    verified = lockstep("ledger", "verify", path)
    assert verified.returncode == 0, verified.stderr
    assert "INCOMPLETE" in verified.stdout
    shown = lockstep("ledger", "show", str(ledger_dir))
    assert shown.returncode == 0 and "release not finished" in shown.stdout


def _release_ledger(tmp_path):
    proc, ledger_dir = run_playbook(tmp_path, extra_vars=HALTED)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    path = only_ledger(ledger_dir)
    assert lockstep("ledger", "verify", path).returncode == 0
    with open(path) as f:
        return path, f.read().splitlines(keepends=True)


def _rewrite(path, lines):
    with open(path, "w") as f:
        f.writelines(lines)


def _assert_broken_at(path, seq):
    out = lockstep("ledger", "verify", path)
    assert out.returncode != 0
    assert f"BROKEN at record seq {seq} " in out.stderr, out.stderr
    assert not ledger.verify(path).ok and ledger.verify(path).bad_seq == seq


def test_tampering_is_detected(tmp_path):
    path, lines = _release_ledger(tmp_path)
    n = 16  # the verify gate
    assert json.loads(lines[n])["event"] == "gate"

    # an edited line (the halting gate made to pass), keeping its old hash
    edited = lines.copy()
    rec = json.loads(edited[n])
    rec["passed"] = True
    edited[n] = json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n"
    _rewrite(path, edited)
    _assert_broken_at(path, n)

    # an edited line with its own hash recomputed: the next record's prev no longer matches
    resealed = lines.copy()
    rec = json.loads(resealed[n])
    rec["passed"] = True
    rec["hash"] = ledger.record_hash(rec)
    resealed[n] = ledger.line_of(rec).decode()
    _rewrite(path, resealed)
    _assert_broken_at(path, n + 1)

    # a deleted line
    _rewrite(path, lines[:n] + lines[n + 1:])
    _assert_broken_at(path, n)

    # two lines swapped
    swapped = lines.copy()
    swapped[n], swapped[n + 1] = swapped[n + 1], swapped[n]
    _rewrite(path, swapped)
    _assert_broken_at(path, n)

    # the original verifies again
    _rewrite(path, lines)
    assert lockstep("ledger", "verify", path).returncode == 0
