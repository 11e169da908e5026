"""Bad input fails with a clear message before any host is contacted for changes; the fleet is untouched."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest
from release_helpers import DEFAULT_OUTPUT, REPO, assert_whole_fleet_on, env, release, release_cmd

BAD = [
    ("9.9.9", {}, "unknown version 9.9.9"),
    ("../../etc", {}, "is not a plain version string"),
    ("2.1.0; rm -rf /", {}, "is not a plain version string"),
    ("2.1.0", {"lockstep_waves": ["0%"]}, "neither a host count"),
    ("2.1.0", {"lockstep_waves": ["banana", "100%"]}, "neither a host count"),
    ("2.1.0", {"lockstep_waves": "25%"}, "lockstep_waves"),
    ("2.1.0", {"lockstep_group": "nosuchgroup"}, "has no hosts"),
    ("2.1.0", {"lockstep_wave": ["50%"]}, "unknown variable(s): lockstep_wave (did you mean lockstep_waves?)"),
    ("2.1.0", {"lockstep_allow_partial": "maybe"}, "lockstep_allow_partial"),
]


@pytest.fixture(scope="module")
def fleet_1_0_0():
    from release_helpers import fleet_lock

    from lockstep_fleet import Fleet

    with fleet_lock():
        f = Fleet(REPO)
        f.down()
        f.up(hosts=3, version="1.0.0")
        try:
            yield f
        finally:
            f.down()


@pytest.mark.parametrize("version,extra,message", BAD, ids=[b[2][:40] for b in BAD])
def test_bad_input_is_refused_before_any_host_changes(fleet_1_0_0, tmp_path, version, extra, message):
    pids = {h["name"]: h["service_pid"] for h in fleet_1_0_0.status()["hosts"]}
    run = release(tmp_path, version, extra=extra, environ=DEFAULT_OUTPUT)
    assert run.rc != 0, run
    assert message in run.out, (message, str(run))
    assert "changed: [h" not in run.out, run
    assert_whole_fleet_on(fleet_1_0_0, "1.0.0")
    assert {h["name"]: h["service_pid"] for h in fleet_1_0_0.status()["hosts"]} == pids
    for host in fleet_1_0_0.hosts:
        assert fleet_1_0_0.exec(host, "ls", "/srv/order-router/releases").stdout.split() == ["1.0.0"]


def test_stale_lock_is_reported_with_how_to_clear_it_and_never_broken(fleet_1_0_0, tmp_path):
    lock = Path(fleet_1_0_0.root) / ".fleet" / "lockstep-release.lock"
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock.write_text(json.dumps({"run_id": "old-run", "user": "root", "controller": socket.gethostname(),
                                "pid": dead.pid, "version": "2.0.0", "started": "2026-11-25T00:00:00Z"}))
    try:
        run = release(tmp_path, "2.1.0")
        assert run.rc != 0 and run.status == "refused", run
        assert "stale release lock" in run.out and "bin/lockstep lock break --run-id old-run" in run.out, run
        assert lock.exists(), "a stale lock must never be broken silently"
        assert_whole_fleet_on(fleet_1_0_0, "1.0.0")
    finally:
        lock.unlink()


@pytest.mark.parametrize("strategy", ["free", "host_pinned"])
def test_a_strategy_that_lets_hosts_run_ahead_is_refused_and_leaves_no_lock(fleet_1_0_0, tmp_path, strategy):
    # Without this refusal, `free` ran the run_once lock for each host: the run refused itself and left its lock.
    proc = subprocess.run(release_cmd("2.1.0"), cwd=REPO, env=env(tmp_path, ANSIBLE_STRATEGY=strategy),
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "the '%s' strategy lets a host run ahead of its wave's drain and gate" % strategy in out, out
    assert "changed: [h" not in out, out
    assert not (Path(fleet_1_0_0.root) / ".fleet" / "lockstep-release.lock").exists()
    assert_whole_fleet_on(fleet_1_0_0, "1.0.0")
