"""Every way a release must halt: the whole fleet ends on ONE version (the old one), the run exits non-zero,
and the output names the gate and the host."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from release_helpers import assert_whole_fleet_on, fleet_versions, lb_status, release, start_release


def assert_halted(run, status, *words):
    assert run.rc != 0, run
    assert run.status == status, run
    for word in words:
        assert word in run.out, (word, str(run))


def stale_pidfile(fleet, host):
    """The old process keeps running after a restart: the pidfile names another process, so `ctl restart` leaves
    the real one alone and the new one cannot take its port (the Knight server that never got the new code)."""
    fleet.exec(host, "sh", "-c", "setsid sleep 600 >/dev/null 2>&1 </dev/null & echo $! > "
               "/srv/order-router/run/router.pid", check=True)


def hook(tmp_path, name, body):
    path = tmp_path / ("%s.yml" % name)
    path.write_text(body)
    return str(path)


def test_host_left_out_by_limit_refuses(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    run = release(tmp_path, "2.1.0", limit="all:!h4")
    assert_halted(run, "refused", "h4", "--limit")
    assert_whole_fleet_on(fleet, "1.0.0")


def test_unreachable_host_at_preflight_refuses_stopped(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    fleet.sshd("h3", "stop")
    run = release(tmp_path, "2.1.0")
    assert_halted(run, "refused", "h3")
    assert_whole_fleet_on(fleet, "1.0.0")


def test_unreachable_host_at_preflight_refuses_frozen(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    fleet.sshd("h4", "freeze")
    run = release(tmp_path, "2.1.0")
    assert_halted(run, "refused", "h4")
    fleet.sshd("h4", "thaw")
    assert_whole_fleet_on(fleet, "1.0.0")


def test_sshd_stopped_between_canary_and_second_wave_rolls_back(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    after_wave = hook(tmp_path, "after_wave", f"""
- name: Test hook - h3 goes dark right after the canary
  ansible.builtin.command: {fleet.root}/bin/fleet sshd h3 stop
  delegate_to: localhost
  run_once: true
  changed_when: true
  when: lockstep_waves_done | int == 1
""")
    run = release(tmp_path, "2.1.0", extra={"lockstep_hooks": {"after_wave": after_wave}})
    assert_halted(run, "rolled_back", "h3", "unreachable", "halted by gate reachability on h3")
    assert run.rc == 2, "no host may drop out of the run as Ansible-unreachable (exit 4)"
    fleet.sshd("h3", "start")
    assert_whole_fleet_on(fleet, "1.0.0")


def test_switch_failure_on_one_host_rolls_back(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    # Something sits where the new symlink must be created: the atomic switch cannot happen on h2, in a canary of
    # two whose other host switches (h1's tasks go on before h2's failure is judged).
    fleet.exec("h2", "sh", "-c", "mkdir -p /srv/order-router/.current.lockstep-new/x", check=True)
    run = release(tmp_path, "2.1.0", extra={"lockstep_canary": 2})
    assert_halted(run, "rolled_back", "h2", "switching current")
    assert_whole_fleet_on(fleet, "1.0.0")
    # A wave with a failed switch is not done: the rollback is never rehearsed on its other host (the rehearsal's
    # last step would have put the failed host back in service).
    finished = run.records[-1]
    assert not (finished.get("rehearsal") or "").startswith("rollback rehearsed"), finished


def test_old_process_still_running_after_switch_is_caught(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    stale_pidfile(fleet, "h4")
    run = release(tmp_path, "2.1.0", extra={"lockstep_switch_timeout": 5})
    assert_halted(run, "rolled_back", "h4", "running-version check failed")
    assert_whole_fleet_on(fleet, "1.0.0")


def test_corrupted_artifact_refuses_before_touching_a_host(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    artifacts = tmp_path / "artifacts"
    shutil.copytree(Path(fleet.root) / "artifacts", artifacts)
    with open(artifacts / "order-router-2.1.0.tar.gz", "r+b") as f:
        f.seek(100)
        f.write(b"\0corrupted\0")
    run = release(tmp_path, "2.1.0", extra={"lockstep_artifact_dir": str(artifacts)})
    # Caught on the controller, before any host is contacted (the host-side check would catch it later too).
    assert_halted(run, "refused", "corrupted", "artifact-integrity", "refused before touching any host")
    assert_whole_fleet_on(fleet, "1.0.0")
    assert fleet.exec("h1", "ls", "/srv/order-router/releases").stdout.split() == ["1.0.0"]


def test_existing_release_dir_with_wrong_content_refuses(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    fleet.exec("h2", "sh", "-c", "mkdir -p /srv/order-router/releases/2.1.0 && echo impostor > "
               "/srv/order-router/releases/2.1.0/router.py", check=True)
    run = release(tmp_path, "2.1.0")
    assert_halted(run, "refused", "h2", "releases/2.1.0 already exists with the wrong content")
    assert_whole_fleet_on(fleet, "1.0.0")
    assert fleet.exec("h2", "cat", "/srv/order-router/releases/2.1.0/router.py").stdout.strip() == "impostor"


def test_behavioural_smoke_failure_rolls_back(fleet, tmp_path):
    """On h6 the new release cannot reach the exchange (a host setting it reads at start), so its test order fails;
    the old process, started before, still can. The rollback puts h6 back on the process that works."""
    fleet.up(hosts=4, version="1.0.0")
    fleet.exec("h3", "sh", "-c", "cp /srv/order-router/host.json /srv/order-router/host.json.good && "
               "sed -i 's/9100/9/' /srv/order-router/host.json", check=True)
    repair = hook(tmp_path, "before_rollback", f"""
- name: Test hook - the operator repairs h3's setting before the rollback restarts it
  ansible.builtin.command: >-
    {fleet.root}/bin/fleet exec h3 -- mv /srv/order-router/host.json.good /srv/order-router/host.json
  delegate_to: localhost
  run_once: true
  changed_when: true
""")
    run = release(tmp_path, "2.1.0", extra={"lockstep_hooks": {"before_rollback": repair}})
    assert_halted(run, "rolled_back", "gate smoke", "h3", "one order with the new feature's flags")
    assert_whole_fleet_on(fleet, "1.0.0")


def test_metrics_threshold_breached_during_watch_rolls_back(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    strict = [{"name": "child orders per parent order", "metric": "order_router_child_orders_sent_total",
               "per": "order_router_orders_received_total", "max": 0.5}]
    run = release(tmp_path, "2.1.0", extra={"lockstep_watch_thresholds": strict, "lockstep_watch_seconds": 2})
    assert_halted(run, "rolled_back", "watch", "child orders per parent order")
    assert_whole_fleet_on(fleet, "1.0.0")


def test_concurrent_release_is_refused_and_the_first_is_unharmed(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    first = start_release(tmp_path / "first", "2.1.0", extra={"lockstep_watch_seconds": 10})
    lock = Path(fleet.root) / ".fleet" / "lockstep-release.lock"
    deadline = time.monotonic() + 120
    while not lock.exists():
        assert first.poll() is None, first.stdout.read()
        assert time.monotonic() < deadline, "first release never took the lock"
        time.sleep(0.2)
    second = release(tmp_path / "second", "2.2.0")
    out, _ = first.communicate(timeout=300)
    assert_halted(second, "refused", "another release holds the lock")
    assert first.returncode == 0, out
    assert_whole_fleet_on(fleet, "2.1.0")
    assert not lock.exists()


def test_rollback_that_cannot_complete_drains_the_host(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    before_rollback = hook(tmp_path, "before_rollback", f"""
- name: Test hook - h3 goes dark just before the rollback
  ansible.builtin.command: {fleet.root}/bin/fleet sshd h3 stop
  delegate_to: localhost
  run_once: true
  changed_when: true
""")
    run = release(tmp_path, "2.1.0", extra={"lockstep_smoke_commands": ["false"],
                                            "lockstep_hooks": {"before_rollback": before_rollback}})
    assert_halted(run, "rollback_failed", "h3", "ROLLBACK FAILED")
    servers = lb_status(fleet)
    assert servers.pop("h3") == "MAINT", servers
    assert set(servers.values()) == {"UP"}, servers


def test_serving_host_missing_from_inventory_refuses(fleet, tmp_path):
    """A second source of truth: HAProxy still sends traffic to h4, which the inventory no longer lists."""
    import yaml

    fleet.up(hosts=4, version="1.0.0")
    inventory = Path(fleet.root) / "inventory" / "local" / "hosts.yml"
    data = yaml.safe_load(inventory.read_text())
    del data["all"]["children"]["app"]["hosts"]["h4"]
    inventory.write_text(yaml.safe_dump(data))
    run = release(tmp_path, "2.1.0")
    assert_halted(run, "refused", "h4", "serves traffic through the load balancer")
    assert_whole_fleet_on(fleet, "1.0.0")


def test_a_partial_release_is_never_a_success_and_a_fleet_it_left_mixed_refuses_unless_allowed(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    partial = release(tmp_path, "2.1.0", limit="all:!h4",
                      extra={"lockstep_allow_partial": True, "lockstep_partial_reason": "h4 under repair"})
    assert partial.rc == 0 and partial.status == "partial", partial
    running, on_disk = fleet_versions(fleet)
    assert running == on_disk == {"h1": "2.1.0", "h2": "2.1.0", "h3": "2.1.0", "h4": "1.0.0"}, (running, on_disk)
    run = release(tmp_path, "2.2.0")
    assert_halted(run, "refused", "the fleet is already mixed")
    allowed = release(tmp_path, "2.2.0", extra={"lockstep_allow_mixed_start": True})
    assert allowed.rc == 0 and allowed.status == "succeeded", allowed
    assert_whole_fleet_on(fleet, "2.2.0")


def test_wave_gate_catches_a_host_that_drifts_back_mid_release(fleet, tmp_path):
    """After the canary, someone puts h1 back on 1.0.0 behind lockstep's back: the next wave gate halts."""
    fleet.up(hosts=4, version="1.0.0")
    drift = hook(tmp_path, "after_wave", f"""
- name: Test hook - h1 is switched back by hand right after the canary
  ansible.builtin.command: >-
    {fleet.root}/bin/fleet exec h1 -- sh -c
    'ln -sfn releases/1.0.0 /srv/order-router/current && /srv/order-router/current/bin/ctl restart && sleep 1'
  delegate_to: localhost
  run_once: true
  changed_when: true
  when: lockstep_waves_done | int == 1
""")
    run = release(tmp_path, "2.1.0", extra={"lockstep_hooks": {"after_wave": drift}})
    assert_halted(run, "rolled_back", "wave-2", "h1")
    # Halted by that gate, not by a later one: no host of the last wave was ever switched.
    halted_by = [r for r in run.records if r.get("event") == "release_finished"][-1]["halted_by"]
    assert (halted_by["gate"], halted_by["host"]) == ("wave-2", "h1"), halted_by
    switched = {r.get("host") for r in run.records if r.get("event") == "host_state" and r.get("phase") == "rollout"
                and "switch, restart" in r.get("task", "")}
    assert not {"h3", "h4"} & switched, switched
    assert_whole_fleet_on(fleet, "1.0.0")
