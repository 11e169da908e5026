"""A dead controller is not a dead end (issue 8): ansible-playbook is SIGKILLed in the middle of a wave, leaving
the lock held, two hosts drained and the fleet mixed on purpose. The operator breaks the lock with the holder's run
id typed back, re-runs the same release, and lockstep continues it: one version everywhere, nothing left drained,
the previous release still on disk, and the ledgers of both runs verify."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from release_helpers import REPO, assert_whole_fleet_on, env, fleet_versions, lb_status, ledgers, release, release_cmd

from ansible_collections.lockstep.release.plugins.module_utils import ledger

WAVES = {"lockstep_canary": 1, "lockstep_waves": [2, "100%"]}


def kill_mid_wave_2(fleet, tmp_path):
    """Start the release and SIGKILL the whole controller while wave 2 (h2, h3) is drained and switching."""
    marker = tmp_path / "h2-switching"
    restart = ["/bin/sh", "-c", "/srv/order-router/current/bin/ctl restart && "
               f"if [ \"$(hostname)\" = h2 ]; then touch {marker}; sleep 60; fi"]
    cmd = release_cmd("2.1.0", dict(WAVES, lockstep_restart_command=restart, lockstep_switch_timeout=90))
    proc = subprocess.Popen(cmd, cwd=REPO, env=env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 180
    while not marker.exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "wave 2 never started"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def drained(fleet):
    """``{server: bool}``: whether HAProxy holds the server in drain (admin state bit 0x08, ``show servers state``)."""
    rows = [line.split() for line in fleet.haproxy("show servers state order_router").splitlines()]
    return {f[3]: bool(int(f[6]) & 0x08) for f in rows if len(f) > 6 and f[1] == "order_router"}


def test_sigkill_mid_release_then_lock_break_and_rerun_converges(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    kill_mid_wave_2(fleet, tmp_path)

    lock = Path(fleet.root) / ".fleet" / "lockstep-release.lock"
    holder = json.loads(lock.read_text())
    # Drained by the dead run: HAProxy's admin state says so whether or not the health check still passes (a
    # service killed mid-restart shows DOWN in `show stat`, drained all the same).
    assert drained(fleet)["h2"] and drained(fleet)["h3"], (lb_status(fleet), drained(fleet))
    running, on_disk = fleet_versions(fleet)
    assert on_disk["h1"] == "2.1.0" and on_disk["h4"] == "1.0.0", on_disk  # mixed, on purpose

    # The lock refuses the re-run until it is broken, and only the holder's run id breaks it.
    refused = release(tmp_path, "2.1.0", extra=WAVES)
    assert refused.rc != 0 and refused.status == "refused", refused
    assert "stale release lock" in refused.out and "lock break --run-id %s" % holder["run_id"] in refused.out
    lockstep = [os.path.join(REPO, ".venv", "bin", "python"), os.path.join(REPO, "bin", "lockstep")]
    wrong = subprocess.run(lockstep + ["lock", "break", "--run-id", "not-the-holder"], cwd=REPO,
                           env=env(tmp_path), capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert wrong.returncode != 0 and lock.exists(), wrong.stdout + wrong.stderr
    broken = subprocess.run(lockstep + ["lock", "break", "--run-id", holder["run_id"], "--reason", "controller died"],
                            cwd=REPO, env=env(tmp_path), capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert broken.returncode == 0 and not lock.exists(), broken.stdout + broken.stderr

    # The same release again: it recognises the mix as its own and continues it.
    again = release(tmp_path, "2.1.0", extra=WAVES)
    assert again.rc == 0 and again.status == "succeeded", again
    preflight = [r for r in again.records if r.get("event") == "gate" and r.get("gate") == "preflight"]
    assert "continuing release 2.1.0 of run %s" % holder["run_id"] in preflight[-1]["message"], preflight
    assert_whole_fleet_on(fleet, "2.1.0")
    assert set(lb_status(fleet).values()) == {"UP"}, lb_status(fleet)
    for host in fleet.state()["hosts"]:
        assert fleet.exec(host, "test", "-d", "/srv/order-router/releases/1.0.0").returncode == 0, host
    assert not lock.exists() and not Path(str(lock) + ".run").exists()
    for name in ledgers(tmp_path):
        assert ledger.verify(str(tmp_path / "ledger" / name)).ok, name
    assert len(ledgers(tmp_path)) >= 3  # the dead run's, the refused one's, the lock break's, the continued one's


def test_continued_release_that_halts_rolls_back_the_dead_run_s_hosts_too(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    kill_mid_wave_2(fleet, tmp_path)
    lock = Path(fleet.root) / ".fleet" / "lockstep-release.lock"
    lock.unlink()  # as `lock break` does (tested above)
    again = release(tmp_path, "2.1.0", extra=dict(WAVES, lockstep_smoke_commands=["false"]))
    assert again.rc != 0 and again.status == "rolled_back", again
    assert_whole_fleet_on(fleet, "1.0.0")
    assert set(lb_status(fleet).values()) == {"UP"}, lb_status(fleet)
