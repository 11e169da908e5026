"""The safety net when the fault hits the safety machinery itself (issue 7), on the real fleet: the rollback runs in
the rollout's waves and loses no request, the load balancer is restored as found and may fail at any point, a host
may vanish in the middle of its switch, the ledger may break mid-release, and a dependency outage is not turned
into a full one. In every case the run's status agrees with what the fleet really runs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from release_helpers import Clients, assert_whole_fleet_on, env, fleet_versions, lb_status, release, release_cmd
from test_release_halts import assert_halted, hook

WAVES = {"lockstep_canary": 1, "lockstep_waves": ["25%", "100%"]}


def fail_at_wave(tmp_path, index):
    """A hook that makes the release halt right after wave ``index`` (1 = the canary) passed its gate."""
    return hook(tmp_path, "after_wave_%d" % index, f"""
- name: Test hook - something is wrong after wave {index}
  ansible.builtin.fail:
    msg: injected fault after wave {index}
  when: lockstep_waves_done | int == {index}
""")


@pytest.mark.parametrize("where", ["canary", "middle wave", "after the last wave"])
def test_rollback_in_waves_loses_no_request(fleet, tmp_path, where):
    fleet.up(hosts=4, version="1.0.0")
    if where == "canary":
        extra = {"lockstep_hooks": {"after_wave": fail_at_wave(tmp_path, 1)}}
    elif where == "middle wave":
        extra = {"lockstep_hooks": {"after_wave": fail_at_wave(tmp_path, 2)}}
    else:  # every host switched: the smoke commands fail on one of them, h3, and every host goes back
        for host in fleet.hosts:
            if host != "h3":
                fleet.exec(host, "touch", "/srv/order-router/smoke-ok", check=True)
        extra = {"lockstep_smoke_commands": ["test -e /srv/order-router/smoke-ok"]}
    with Clients(fleet, rate=40) as clients:
        run = release(tmp_path, "2.1.0", extra=dict(WAVES, **extra))
    assert_halted(run, "rolled_back", *(["smoke", "h3"] if where == "after the last wave" else []))
    assert_whole_fleet_on(fleet, "1.0.0")
    assert set(lb_status(fleet).values()) == {"UP"}
    assert clients.succeeded > 100, clients.reports
    assert clients.failed == 0, clients.errors
    # The rollback went back wave by wave: never more hosts drained at once than a rollout wave took.
    back = [r for r in run.records if r.get("event") == "gate" and str(r.get("gate")).startswith("rollback-wave")]
    assert back, [r.get("gate") for r in run.records if r.get("event") == "gate"]


def test_operator_maint_and_drain_stay_as_found_after_a_release_and_a_rollback(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    fleet.haproxy("set server order_router/h2 state maint")
    fleet.haproxy("set server order_router/h3 state drain")
    clean = release(tmp_path, "2.1.0")
    assert clean.rc == 0 and clean.status == "succeeded", clean
    assert_whole_fleet_on(fleet, "2.1.0")
    assert lb_status(fleet) == {"h1": "UP", "h2": "MAINT", "h3": "DRAIN", "h4": "UP"}

    halted = release(tmp_path, "2.2.0", extra={"lockstep_smoke_commands": ["false"]})
    assert_halted(halted, "rolled_back")
    assert_whole_fleet_on(fleet, "2.1.0")
    assert lb_status(fleet) == {"h1": "UP", "h2": "MAINT", "h3": "DRAIN", "h4": "UP"}


def test_backend_without_health_checks_drains_readies_and_guards(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0", lb_checks=False)
    assert set(lb_status(fleet).values()) == {"no check"}
    with Clients(fleet, rate=30) as clients:
        clean = release(tmp_path, "2.1.0")
    assert clean.rc == 0 and clean.status == "succeeded", clean
    assert clients.failed == 0, clients.errors
    assert set(lb_status(fleet).values()) == {"no check"}
    # A server without checks that no inventory knows still serves: the second source of truth sees it.
    fleet.haproxy("add server order_router/ghost 127.0.0.14:8080")
    fleet.haproxy("enable server order_router/ghost")
    refused = release(tmp_path, "2.2.0")
    assert_halted(refused, "refused", "ghost", "serves traffic through the load balancer")


def test_backend_entry_pointing_elsewhere_refuses(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    # Named like h3, but HAProxy sends h3's share of traffic to h4's address.
    fleet.haproxy("set server order_router/h3 addr 127.0.0.14 port 8080")
    run = release(tmp_path, "2.1.0")
    assert_halted(run, "refused", "h3", "points at 127.0.0.14:8080", "load-balancer address")
    assert_whole_fleet_on(fleet, "1.0.0")


def test_load_balancer_gone_after_the_canary_still_switches_every_host_back(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    sock = fleet.haproxy_socket
    gone = hook(tmp_path, "after_wave", f"""
- name: Test hook - the load balancer's runtime API goes away right after the canary
  ansible.builtin.command: mv {sock} {sock}.away
  delegate_to: localhost
  run_once: true
  changed_when: true
  when: lockstep_waves_done | int == 1
""")
    run = release(tmp_path, "2.1.0", extra=dict(WAVES, lockstep_hooks={"after_wave": gone}))
    os.rename(sock + ".away", sock)
    assert_halted(run, "rolled_back", "switched back without it")
    assert_whole_fleet_on(fleet, "1.0.0")
    assert "taken out of the load balancer" not in run.out
    assert set(lb_status(fleet).values()) == {"UP"}


def test_load_balancer_that_does_not_answer_at_preflight_refuses_before_anything_changes(fleet, tmp_path):
    """No answer from the load balancer is no second source of which hosts serve traffic: refused, nothing staged."""
    fleet.up(hosts=3, version="1.0.0")
    sock = fleet.haproxy_socket
    os.rename(sock, sock + ".away")
    try:
        run = release(tmp_path, "2.1.0")
    finally:
        os.rename(sock + ".away", sock)
    assert_halted(run, "refused", "(load-balancer)")
    finished = [r for r in run.records if r.get("event") == "release_finished"][-1]
    assert (finished["halted_by"]["gate"], finished["halted_by"]["host"]) == ("preflight", "controller"), finished
    assert_whole_fleet_on(fleet, "1.0.0")
    assert fleet.exec("h1", "ls", "/srv/order-router/releases").stdout.split() == ["1.0.0"]


def test_host_vanishing_in_the_middle_of_its_switch_is_changed_unknown(fleet, tmp_path):
    """The canary's ssh session dies inside `deploy state=active` and its sshd stays down: lockstep cannot know
    whether it switched, so it assumes it did: out of the load balancer, everything else back, rollback_failed."""
    fleet.up(hosts=4, version="1.0.0")
    marker = tmp_path / "h1-switched"
    restart = ["/bin/sh", "-c", "/srv/order-router/current/bin/ctl restart && "
               f"if [ \"$(hostname)\" = h1 ]; then touch {marker}; sleep 20; fi"]
    cmd = release_cmd("2.1.0", dict(WAVES, lockstep_restart_command=restart, lockstep_switch_timeout=30))
    proc = subprocess.Popen(cmd, cwd=fleet.root, env=env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    try:
        fleet_wait(lambda: marker.exists(), proc)
        fleet.sshd("h1", "stop")
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, out
    assert "lockstep rollback_failed" in out and "changed-unknown): h1" in out, out
    servers = lb_status(fleet)
    assert servers.pop("h1") == "MAINT", servers
    assert set(servers.values()) == {"UP"}, servers
    running, _ = fleet_versions(fleet)
    assert {h: v for h, v in running.items() if h != "h1"} == {"h2": "1.0.0", "h3": "1.0.0", "h4": "1.0.0"}


def fleet_wait(predicate, proc, seconds=120):
    import time

    deadline = time.monotonic() + seconds
    while not predicate():
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_ledger_broken_after_the_canary_halts_rolls_back_and_keeps_the_record(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    ledger_dir = tmp_path / "ledger"
    ledger_dir.mkdir()
    # The ledger lives on its own small filesystem, which fills up right after the canary (a full disk).
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "lockstep-test-ledger", str(ledger_dir)], check=True)
    try:
        full = hook(tmp_path, "after_wave", f"""
- name: Test hook - the ledger's disk fills up right after the canary
  ansible.builtin.shell: dd if=/dev/zero of={ledger_dir}/filler bs=4k 2>/dev/null; test -s {ledger_dir}/filler
  delegate_to: localhost
  run_once: true
  changed_when: true
  when: lockstep_waves_done | int == 1
""")
        run = release(tmp_path, "2.1.0", extra=dict(WAVES, lockstep_hooks={"after_wave": full}))
    finally:
        subprocess.run(["umount", str(ledger_dir)], check=True)
    assert run.rc == 2, run
    assert "LEDGER BROKEN" in run.out and "the ledger cannot be written" in run.out, run
    assert_whole_fleet_on(fleet, "1.0.0")
    assert set(lb_status(fleet).values()) == {"UP"}
    assert not (Path(fleet.root) / ".fleet" / "lockstep-release.lock").exists(), "the lock was not given back"
    fallback = re.search(r"records continue in (\S+\.jsonl)", run.out).group(1)
    text = Path(fallback).read_text().replace(" ", "")
    os.unlink(fallback)
    assert '"event":"ledger_fallback"' in text
    assert '"status":"rolled_back"' in text, text[-2000:]


def test_dependency_down_during_the_release_is_not_turned_into_a_full_outage(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    pid = fleet.status()["exchange"]["pid"]
    down = hook(tmp_path, "after_wave", f"""
- name: Test hook - the exchange goes down after the last wave
  ansible.builtin.command: kill {pid}
  delegate_to: localhost
  run_once: true
  changed_when: true
  when: lockstep_waves_done | int == 3
""")
    run = release(tmp_path, "2.1.0", extra=dict(WAVES, lockstep_hooks={"after_wave": down}))
    assert_halted(run, "rolled_back", "gate smoke", "fails its smoke checks too (a fault outside the release)")
    assert_whole_fleet_on(fleet, "1.0.0")
    # Every host is proven back on 1.0.0: all of them serve, as before the release.
    assert set(lb_status(fleet).values()) == {"UP"}


def test_fleet_failing_its_smoke_checks_before_the_release_is_refused(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    os.kill(fleet.status()["exchange"]["pid"], signal.SIGTERM)
    run = release(tmp_path, "2.1.0")
    assert_halted(run, "refused", "baseline-smoke", "one order with the new feature's flags")
    assert_whole_fleet_on(fleet, "1.0.0")


def test_metric_a_host_does_not_expose_is_a_watch_failure(fleet, tmp_path):
    fleet.up(hosts=2, version="1.0.0")
    blind = [{"name": "queue depth", "metric": "order_router_queue_depth", "max": 10}]
    run = release(tmp_path, "2.1.0", extra={"lockstep_watch_thresholds": blind})
    assert_halted(run, "rolled_back", "watch", "order_router_queue_depth not exposed")
    assert_whole_fleet_on(fleet, "1.0.0")


def test_first_release_that_halts_stops_its_hosts_and_takes_them_out(fleet, tmp_path):
    """Nothing to roll back to: no host may be left serving a release that was never proven."""
    fleet.up(hosts=3)
    run = release(tmp_path, "2.1.0", extra={"lockstep_smoke_commands": ["false"]})
    assert_halted(run, "stopped", "first release: nothing to roll back to", "h1, h2, h3")
    assert set(lb_status(fleet).values()) == {"MAINT"}, lb_status(fleet)
    running, _ = fleet_versions(fleet)
    assert set(running.values()) == {None}, running  # no process answers on any host
