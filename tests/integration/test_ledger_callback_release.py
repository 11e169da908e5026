"""Real ansible-playbook releases on localhost, checked through the ledger they leave."""

from __future__ import annotations

import os

import pytest
from _ledger_helpers import (
    HALTED,
    SUCCEEDED,
    check_golden,
    ledger,
    lockstep,
    only_ledger,
    records,
    run_playbook,
    summary_block,
)
from junitparser import Failure, JUnitXml

pytestmark = pytest.mark.without_fleet  # localhost only: runs beside the fleet tests (tests/run_all.py)


@pytest.fixture(autouse=True)
def verify_configuration(tmp_path, monkeypatch):
    """bin/lockstep ledger verify finds a ledger's anchor where the configuration says, never where the ledger says:
    the anchor directory the test's runs use (``_ledger_helpers.env_for``), and no key."""
    monkeypatch.setenv(ledger.ANCHOR_DIR_ENV, str(tmp_path / "anchors"))
    monkeypatch.delenv(ledger.KEY_ENV, raising=False)
    monkeypatch.delenv(ledger.KEY_FILE_ENV, raising=False)


def phases(recs, event="phase_enter"):
    return [r["phase"] for r in recs if r["event"] == event]


def test_halted_release(tmp_path):
    junit = tmp_path / "out" / "junit.xml"
    proc, ledger_dir = run_playbook(tmp_path, extra_vars=dict(HALTED, deploy_user="ops"),
                                    LOCKSTEP_LEDGER_JUNIT_FILE=junit)
    assert proc.returncode == 2, proc.stdout + proc.stderr  # h2 failed
    path = only_ledger(ledger_dir)
    recs = records(path)
    assert ledger.verify(path).ok

    assert [r["seq"] for r in recs] == list(range(len(recs)))
    start = recs[0]
    assert start["event"] == "release_started"
    assert start["version"] == "1.1.0"
    assert start["extra_vars"]["halt_gate"] == "verify"
    assert start["playbook"].endswith("release.yml")
    assert start["user"] and start["controller"] and start["cwd"] == str(tmp_path)

    assert phases(recs) == ["preflight", "rollout", "verify", "rollback", "finish"]
    assert phases(recs, "phase_leave") == ["preflight", "rollout", "verify", "rollback", "finish"]
    # every phase is left before the next is entered
    opened = None
    for r in recs:
        if r["event"] == "phase_enter":
            assert opened is None
            opened = r["phase"]
        elif r["event"] == "phase_leave":
            assert opened == r["phase"]
            opened = None

    states = {(r["phase"], r["host"]): r["state"]["version"] for r in recs if r["event"] == "host_state"}
    assert states[("preflight", "h1")] == states[("preflight", "h2")] == "1.0.0"
    assert states[("verify", "h1")] == states[("verify", "h2")] == states[("verify", "h3")] == "1.1.0"
    assert states[("rollback", "h1")] == states[("rollback", "h3")] == "1.0.0"
    assert ("rollback", "h2") not in states

    gates = [r for r in recs if r["event"] == "gate"]
    assert [(g["gate"], g["passed"]) for g in gates] == [("preflight", True), ("verify", False)]
    assert gates[1]["halted"] == [{"host": "h2", "message": HALTED["halt_message"]}]
    assert gates[1]["hosts"] == {"h1": "1.1.0", "h2": "1.1.0", "h3": "1.1.0"}

    waves = [r for r in recs if r["event"] == "wave"]
    assert [(w["index"], w["done"], w["total"]) for w in waves] == [(1, 1, 3), (2, 3, 3)]

    failed = [r for r in recs if r["event"] == "host_failed"]
    assert [(f["host"], f["phase"], f["message"]) for f in failed] == [("h2", "verify", HALTED["halt_message"])]

    steps = [(r["host"], r["task"]) for r in recs if r["event"] == "rollback_step"]
    assert ("h1", "rollback : Switch back") in steps and ("h3", "rollback : Switch back") in steps
    assert all(h != "h2" for h, _ in steps)

    final = recs[-1]
    assert final["event"] == "release_finished"
    assert final["status"] == "rolled_back" and final["status_source"] == "playbook"
    assert final["halted_by"] == {"gate": "verify", "host": "h2", "message": HALTED["halt_message"]}
    assert final["hosts"]["h2"] == {"before": "1.0.0", "after": "1.1.0", "phase": "verify", "result": "failed"}
    assert final["hosts"]["h1"]["result"] == "rolled_back"
    assert final["failures"] == 1

    # progress lines during the run, summary at the end
    assert "lockstep: wave 1/2 [h1] version 1.1.0: 1/3 hosts done" in proc.stdout
    assert "lockstep: wave 2/2 [h2,h3] version 1.1.0: 3/3 hosts done" in proc.stdout
    assert proc.stdout.index("lockstep: wave 2/2") < proc.stdout.index("PLAY RECAP")
    check_golden("ledger_summary_halted.txt", summary_block(proc.stdout, path))

    # JUnit: one test case per host per gate, the halting one failed; one per host for the release
    xml = JUnitXml.fromfile(str(junit))
    cases = {(suite.name, case.name): case for suite in xml for case in suite}
    assert set(cases) == {(f"lockstep.gate.{g}", h) for g in ("preflight", "verify") for h in ("h1", "h2", "h3")} | {
        ("lockstep.release", h) for h in ("h1", "h2", "h3")}
    assert isinstance(cases[("lockstep.gate.verify", "h2")].result[0], Failure)
    assert cases[("lockstep.gate.verify", "h2")].result[0].message == HALTED["halt_message"]
    assert cases[("lockstep.gate.verify", "h1")].is_passed
    assert not cases[("lockstep.release", "h2")].is_passed
    assert xml.failures == 2

    verified = lockstep("ledger", "verify", str(ledger_dir))
    assert verified.returncode == 0, verified.stderr
    assert "complete" in verified.stdout and "INCOMPLETE" not in verified.stdout
    shown = lockstep("ledger", "show", path)
    assert shown.returncode == 0, shown.stderr
    assert "verify HALTED (h2: h2 runs 1.0.0 from a stale directory)" in shown.stdout
    assert "LOCKSTEP RELEASE SUMMARY: status rolled_back" in shown.stdout


def test_successful_release(tmp_path):
    proc, ledger_dir = run_playbook(tmp_path, extra_vars=SUCCEEDED)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = only_ledger(ledger_dir)
    recs = records(path)
    assert ledger.verify(path).complete
    assert phases(recs) == ["preflight", "rollout", "verify", "smoke", "finish"]
    assert [(r["gate"], r["passed"]) for r in recs if r["event"] == "gate"] == [
        ("preflight", True), ("verify", True), ("smoke", True)]
    assert not [r for r in recs if r["event"] in ("host_failed", "host_unreachable", "rollback_step")]
    final = recs[-1]
    assert final["status"] == "succeeded" and final["halted_by"] is None
    assert final["version_before"] == "1.0.0" and final["version_after"] == "1.1.0"
    assert {h: v["after"] for h, v in final["hosts"].items()} == {"h1": "1.1.0", "h2": "1.1.0", "h3": "1.1.0"}
    check_golden("ledger_summary_succeeded.txt", summary_block(proc.stdout, path))


def test_status_derived_by_the_ledger_without_set_stats(tmp_path):
    """A run that never reports lockstep_status (it died before finish) gets the ledger's own status."""
    proc, ledger_dir = run_playbook(tmp_path, playbook="nolog.yml", extra_vars={"db_password": "x" * 8})
    assert proc.returncode == 0, proc.stdout + proc.stderr  # every failure was rescued: the play went on
    recs = records(only_ledger(ledger_dir))
    final = recs[-1]
    assert final["status_source"] == "ledger"
    assert final["reported_status"] is None
    # a rescued failure is still a failure of the release (not ignored): the derived status says so
    assert [(r["host"], r["ignored"]) for r in recs if r["event"] == "host_failed"] == [("h1", False)] * 3
    assert final["status"] == "failed" and final["failures"] == 3
    assert final["hosts"]["h1"]["result"] == "failed" and final["hosts"]["h2"]["result"] == "ok"


def test_an_unwritable_ledger_never_stops_the_run_itself_it_falls_back_and_tells_the_tasks(tmp_path):
    """The callback reaches into no run to stop it: every record goes on in the fallback file, and the run's tasks
    read why in LOCKSTEP_LEDGER_BROKEN (lockstep's plan refuses on it: test_release_in_miniature.py)."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    marker = tmp_path / "host-changed"
    proc, _ = run_playbook(tmp_path, playbook="first_task.yml", extra_vars={"marker": str(marker)},
                           LOCKSTEP_LEDGER_DIR=blocker / "ledger", TMPDIR=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "lockstep ledger: cannot create ledger" in proc.stderr
    assert "broken=cannot create ledger" in proc.stdout, proc.stdout
    (fallback,) = tmp_path.glob("lockstep-ledger-fallback-*.jsonl")
    recs = records(str(fallback))
    assert recs[0]["event"] == "ledger_fallback" and recs[0]["ledger"] is None, recs[0]
    assert [r["event"] for r in recs[1:3]] == ["release_started", "play_started"], recs
    assert recs[-1]["event"] == "release_finished" and recs[-1]["status"] == "ledger_failed", recs[-1]
    assert recs[-1]["ledger_broken"].startswith("cannot create ledger"), recs[-1]
    assert ledger.verify(str(fallback)).ok


def test_writable_ledger_lets_the_same_release_run(tmp_path):
    marker = tmp_path / "host-changed"
    proc, ledger_dir = run_playbook(tmp_path, playbook="first_task.yml", extra_vars={"marker": str(marker)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert marker.read_text() == "changed"
    assert records(only_ledger(ledger_dir))[-1]["status"] == "succeeded"
    assert os.path.isdir(ledger_dir)


def test_loop_items_and_unreachable_host(tmp_path):
    proc, ledger_dir = run_playbook(tmp_path, playbook="loops.yml")
    assert proc.returncode == 4, proc.stdout + proc.stderr  # unreachable
    recs = records(only_ledger(ledger_dir))
    assert [(r["index"], r["done"]) for r in recs if r["event"] == "wave"] == [(1, 1), (2, 2)]
    assert "lockstep: wave 2/2 [h2] version 9.9.9: 2/2 hosts done" in proc.stdout
    unreachable = [r for r in recs if r["event"] == "host_unreachable"]
    assert [(r["host"], r["task"]) for r in unreachable] == [("dead", "Reach every host")]
    assert unreachable[0]["message"]
    final = recs[-1]
    assert final["status"] == "failed" and final["status_source"] == "ledger" and final["unreachable"] == 1
    assert final["hosts"]["dead"]["result"] == "unreachable" and final["hosts"]["h1"]["result"] == "failed"
    # the halting gate's failed result is recorded although a rescue let the play go on
    failed = [r for r in recs if r["event"] == "host_failed"]
    assert [(r["host"], r["task"], r["ignored"]) for r in failed] == [
        ("h1", "A gate that halts in a failed result", False)]
    assert final["failures"] == 1
    assert "TASK [The halted gate was handled]" in proc.stdout
    # a gate reported in a failed result (modules halt with fail_json(lockstep_gate=...))
    gates = [r for r in recs if r["event"] == "gate"]
    assert [(g["gate"], g["passed"], g["reporter"]) for g in gates] == [("lock", False, "h1")]
    assert final["halted_by"] == {"gate": "lock", "host": "controller", "message": "lock held"}


def test_a_ledger_that_fails_mid_release_keeps_whole_records_and_the_rest_goes_on_on_stderr(tmp_path):
    """A ledger append that fails (here: file size limit, like a full disk, which no fallback file escapes) stops
    nothing: the ledger keeps only whole records, so its chain still verifies, and every later record, the release's
    end included, is written on stderr, chained on from the fallback's first record."""
    import json
    import resource
    import signal
    import subprocess

    from _ledger_helpers import env_for, playbook_cmd

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))

    ledger_dir = tmp_path / "ledger"
    proc = subprocess.run(playbook_cmd("release.yml", SUCCEEDED), cwd=tmp_path,
                          env=env_for(ledger_dir, TMPDIR=tmp_path), preexec_fn=limit_file_size,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "lockstep ledger: cannot append to ledger" in proc.stderr
    assert "TASK [rollout : Wave 1 switches h1]" in proc.stdout
    on_stderr = [json.loads(line.split(": ", 1)[1]) for line in proc.stderr.splitlines()
                 if line.startswith("lockstep-ledger: ")]
    assert on_stderr[0]["event"] == "ledger_fallback" and on_stderr[0]["seq"] == 0, on_stderr[:1]
    assert on_stderr[-1]["event"] == "release_finished" and on_stderr[-1]["ledger_broken"], on_stderr[-1]
    assert [r["seq"] for r in on_stderr] == list(range(len(on_stderr)))
    path = only_ledger(ledger_dir)
    assert os.path.getsize(path) < 3000
    # Each fallback's first record names what it continues: the ledger, or the fallback file that filled up too.
    fallbacks = list(tmp_path.glob("lockstep-ledger-fallback-*.jsonl"))
    if fallbacks:
        assert records(str(fallbacks[0]))[0]["ledger"] == path
        assert on_stderr[0]["ledger"] == str(fallbacks[0])
    else:
        assert on_stderr[0]["ledger"] == path
    result = ledger.verify(path)
    assert result.ok and not result.complete
    assert json.loads(open(path).read().splitlines()[-1])["seq"] == result.records - 1
