"""The fleet audit (playbooks/verify.yml and bin/lockstep audit --http) against the real local fleet: it passes on
a uniform fleet and names the host on every kind of drift the issue lists."""

from __future__ import annotations

import json
import os
import time

from operator_helpers import audit_records, fleet_on_2_1_0, in_host, lockstep, playbook
from release_helpers import REPO


def assert_audit_fails(run, host, *words):
    assert run.rc != 0, run
    assert "fleet audit failed on" in run.out and host in run.out, run
    for word in words:
        assert word in run.out, (word, str(run))
    records = audit_records(run)
    assert records and not records[-1]["passed"], run
    assert host in {p["host"] for p in records[-1]["problems"]}, records[-1]["problems"]


def test_audit_passes_on_a_uniform_fleet(fleet, tmp_path):
    fleet_on_2_1_0(fleet)
    run = playbook(tmp_path, "verify.yml")
    assert run.rc == 0, run
    assert "LOCKSTEP FLEET AUDIT (http+ssh): PASSED, version 2.1.0" in run.out, run
    for host in ("h1", "h2", "h3", "h4"):
        assert any(line.startswith(host + " ") and "2.1.0" in line and line.rstrip().endswith("ok")
                   for line in run.out.splitlines()), (host, run)
    (record,) = audit_records(run)
    assert record["passed"] and record["version"] == "2.1.0" and record["layers"] == ["http", "ssh"], record
    assert set(record["hosts"]) == {"h1", "h2", "h3", "h4"}, record
    assert all(h["flags"] == "rli" and h["from_active"] for h in record["hosts"].values()), record
    verified = lockstep(tmp_path, "ledger", "verify", str(tmp_path / "ledger"))
    assert verified.returncode == 0 and "chain intact, complete" in verified.stdout, verified
    fast = lockstep(tmp_path, "audit", "--http")
    assert fast.returncode == 0 and "PASSED, version 2.1.0" in fast.stdout, fast


def test_audit_names_a_process_swapped_for_the_old_version(fleet, tmp_path):
    fleet_on_2_1_0(fleet)
    in_host(fleet, "h3", "ln -sfn releases/1.0.0 /srv/order-router/current && /srv/order-router/current/bin/ctl "
                         "restart >/dev/null && sleep 1")
    fast = lockstep(tmp_path, "audit", "--http")
    assert fast.returncode == 1, fast
    assert "h3: process" in fast.stdout and "runs 1.0.0, the fleet runs 2.1.0" in fast.stdout, fast
    run = playbook(tmp_path, "verify.yml")
    assert_audit_fails(run, "h3", "runs 1.0.0, the fleet runs 2.1.0", "active release is 1.0.0")


def test_audit_names_a_process_running_from_outside_the_release_tree(fleet, tmp_path):
    fleet_on_2_1_0(fleet)
    # Same version, same content, started from a copy: a release's checks never touch that directory.
    in_host(fleet, "h2", "/srv/order-router/current/bin/ctl stop >/dev/null; "
                         "cp -a /srv/order-router/releases/2.1.0 /srv/rogue; cd /srv/rogue; "
                         "ORDER_ROUTER_HOST_JSON=/srv/order-router/host.json setsid python3 -u router.py "
                         ">/dev/null 2>&1 </dev/null & echo $! > /srv/order-router/run/router.pid; sleep 1")
    fast = lockstep(tmp_path, "audit", "--http")
    assert fast.returncode == 1 and "h2: process" in fast.stdout and "outside the release tree" in fast.stdout, fast
    run = playbook(tmp_path, "verify.yml")
    assert_audit_fails(run, "h2", "/srv/rogue", "was not started from the active release")


def test_audit_names_a_poisoned_release_directory(fleet, tmp_path):
    fleet_on_2_1_0(fleet)
    in_host(fleet, "h4", "echo 'SEND_EVERYTHING = True' >> /srv/order-router/releases/2.1.0/routing.py")
    # The process started before the edit reports the right version: only the host can tell.
    assert lockstep(tmp_path, "audit", "--http").returncode == 0
    run = playbook(tmp_path, "verify.yml")
    assert_audit_fails(run, "h4", "active release 2.1.0 does not match its manifest")


def test_audit_names_an_unknown_serving_backend(fleet, tmp_path):
    fleet_on_2_1_0(fleet)
    assert "New server registered" in fleet.haproxy("add server order_router/x 127.0.0.99:8080")
    fleet.haproxy("enable server order_router/x")
    run = playbook(tmp_path, "verify.yml")
    assert_audit_fails(run, "x", "HAProxy serves traffic to x (127.0.0.99:8080), which is not in the inventory")


def test_audit_names_a_host_whose_sshd_is_stopped_and_still_reads_its_http_layer(fleet, tmp_path):
    fleet_on_2_1_0(fleet)
    fleet.sshd("h2", "stop")
    run = playbook(tmp_path, "verify.yml")
    assert_audit_fails(run, "h2", "h2: does not report over SSH")
    record = audit_records(run)[-1]
    assert record["hosts"]["h2"]["running"] == "2.1.0", record["hosts"]["h2"]
    assert [p["host"] for p in record["problems"]] == ["h2"], record["problems"]


def test_audit_names_hosts_left_drained_and_a_dead_run_s_lock(fleet, tmp_path):
    fleet_on_2_1_0(fleet)
    fleet.haproxy("set server order_router/h1 state drain")
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    lock = {"run_id": "20260801T093000-%d-2.2.0" % dead, "user": "root", "controller": os.uname().nodename,
            "pid": dead, "version": "2.2.0", "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with open(os.path.join(REPO, ".fleet", "lockstep-release.lock"), "w") as f:
        json.dump(lock, f)
    run = playbook(tmp_path, "verify.yml")
    assert_audit_fails(run, "h1", "h1: left DRAIN in HAProxy", "release lock held", lock["run_id"], "a dead run")
