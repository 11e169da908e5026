"""The ledger of real releases on the real fleet, checked against what happened on the hosts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

from release_helpers import REPO, assert_whole_fleet_on, env, fleet_versions, ledger, release, start_release

PHASES = ["preflight", "rollout", "verify", "smoke", "watch", "rollback", "finish"]


def phases_entered(records):
    seen = []
    for rec in records:
        if rec["event"] == "phase_enter" and rec["phase"] in PHASES and rec["phase"] not in seen:
            seen.append(rec["phase"])
    return seen


def finished(records):
    return next(r for r in records if r["event"] == "release_finished")


def gates(records):
    return [r for r in records if r["event"] == "gate"]


def test_ledger_of_a_clean_a_rolled_back_and_a_refused_release(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")

    clean = release(tmp_path, "2.1.0")
    assert clean.rc == 0, clean
    recs = clean.records
    assert recs[0]["event"] == "release_started" and recs[0]["version"] == "2.1.0"
    assert phases_entered(recs) == ["preflight", "rollout", "verify", "smoke", "watch", "finish"], phases_entered(recs)
    end = finished(recs)
    assert end["status"] == "succeeded" and end["version_before"] == "1.0.0" and end["version_after"] == "2.1.0"
    running, _ = fleet_versions(fleet)
    assert {h: e["after"] for h, e in end["hosts"].items()} == running  # the ledger's "after" is what hosts run
    assert {e["before"] for e in end["hosts"].values()} == {"1.0.0"}
    assert [r["index"] for r in recs if r["event"] == "wave"] == [1, 2, 3]
    assert all(g["passed"] for g in gates(recs))
    states = [r for r in recs if r["event"] == "host_state" and r["phase"] == "verify"]
    assert {r["host"]: r["state"]["running_version"] for r in states} == {h: "2.1.0" for h in running}

    for host in fleet.hosts:
        if host != "h2":
            fleet.exec(host, "touch", "/srv/order-router/smoke-ok", check=True)
    halted = release(tmp_path, "2.2.0", extra={"lockstep_smoke_commands": ["test -e /srv/order-router/smoke-ok"]})
    assert halted.rc != 0, halted
    recs = halted.records
    assert phases_entered(recs) == ["preflight", "rollout", "verify", "smoke", "rollback", "finish"]
    end = finished(recs)
    assert end["status"] == "rolled_back", end
    assert end["halted_by"]["gate"] == "smoke" and end["halted_by"]["host"] == "h2", end["halted_by"]
    assert any(r["event"] == "host_failed" and r["host"] == "h2" and "smoke" in r["phase"] for r in recs)
    steps = [r for r in recs if r["event"] == "rollback_step"]
    assert steps and all(r["phase"] == "rollback" for r in steps)
    assert_whole_fleet_on(fleet, "2.1.0")
    assert {e["after"] for e in end["hosts"].values()} == {"2.1.0"}

    refused = release(tmp_path, "2.2.0", limit="all:!h4")
    assert refused.rc != 0, refused
    end = finished(refused.records)
    assert end["status"] == "refused" and end["halted_by"]["host"] == "h4", end
    assert phases_entered(refused.records) == ["preflight", "finish"]
    assert not any(r["event"] == "host_state" and r["phase"] == "rollout" for r in refused.records)
    assert_whole_fleet_on(fleet, "2.1.0")

    files = sorted((tmp_path / "ledger").glob("*.jsonl"))
    assert len(files) == 3
    assert all(ledger.verify(str(f)).ok and ledger.verify(str(f)).complete for f in files)
    verify = subprocess.run([os.path.join(REPO, "bin", "lockstep"), "ledger", "verify", str(tmp_path / "ledger")],
                            capture_output=True, text=True, env=env(tmp_path))
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_sigkill_mid_wave_leaves_a_readable_ledger_whose_chain_verifies(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    slow = tmp_path / "slow_wave.yml"
    slow.write_text("- name: Test hook - a slow wave\n  ansible.builtin.pause:\n    seconds: 30\n")
    proc = start_release(tmp_path, "2.1.0", extra={"lockstep_hooks": {"after_wave": str(slow)}})
    directory = tmp_path / "ledger"
    deadline = time.monotonic() + 120
    path = None
    while time.monotonic() < deadline:
        files = sorted(directory.glob("*.jsonl")) if directory.exists() else []
        if files and '"event":"wave"' in files[-1].read_text():
            path = files[-1]
            break
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.2)
    assert path is not None, "no wave recorded"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    lines = path.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line whole JSON
    assert records[-1]["event"] != "release_finished"
    assert any(r["event"] == "wave" for r in records)
    result = ledger.verify(str(path))
    assert result.ok and not result.complete, result
    out = subprocess.run([os.path.join(REPO, "bin", "lockstep"), "ledger", "verify", str(path)],
                         capture_output=True, text=True, env=env(tmp_path))
    assert out.returncode == 0 and "INCOMPLETE" in out.stdout, out.stdout + out.stderr

    # Tampering with the killed release's story is detected.
    tampered = tmp_path / "tampered.jsonl"
    edited = lines[:]
    edited[2] = edited[2].replace('"preflight"', '"rollout"', 1) if '"preflight"' in edited[2] else edited[2] + " "
    tampered.write_text("\n".join(edited) + "\n")
    bad = subprocess.run([os.path.join(REPO, "bin", "lockstep"), "ledger", "verify", str(tampered)],
                         capture_output=True, text=True, env=env(tmp_path))
    assert bad.returncode != 0, bad.stdout
