"""Clean releases against the real local fleet: bare fleet, 1.0.0 -> 2.1.0 on 8 hosts, idempotence, under load,
--check mode."""

from __future__ import annotations

import json
import time

from release_helpers import DEFAULT_OUTPUT, Clients, assert_whole_fleet_on, fleet_versions, lb_status, release


def service_pids(fleet):
    return {h["name"]: h["service_pid"] for h in fleet.status()["hosts"]}


def test_first_release_onto_a_bare_fleet(fleet, tmp_path):
    fleet.up(hosts=3)
    run = release(tmp_path, "1.0.0")
    assert run.rc == 0, run
    assert run.status == "succeeded", run
    assert_whole_fleet_on(fleet, "1.0.0")
    # The hosts had nothing before: the summary, the ledger's last record and set_stats all say so.
    finished = run.records[-1]
    assert finished["event"] == "release_finished" and finished["version_before"] is None, finished
    assert {h["before"] for h in finished["hosts"].values()} == {None}, finished["hosts"]
    assert "LOCKSTEP RELEASE SUMMARY: status succeeded, version - -> 1.0.0" in run.out, run


def test_clean_release_on_8_hosts_keeps_the_old_release_and_is_idempotent(fleet, tmp_path):
    fleet.up(hosts=8, version="1.0.0")
    run = release(tmp_path, "2.1.0")
    assert run.rc == 0, run
    assert run.status == "succeeded", run
    assert_whole_fleet_on(fleet, "2.1.0")
    for host in fleet.hosts:
        kept = fleet.exec(host, "ls", "/srv/order-router/releases").stdout.split()
        assert "1.0.0" in kept and "2.1.0" in kept, (host, kept)
    # Every host back in the load balancer and serving.
    assert set(lb_status(fleet).values()) == {"UP"}, lb_status(fleet)
    # The rollback rehearsed on the canary: back to 1.0.0, served and passed its smoke checks, then forward again.
    assert run.stats["lockstep_rehearsal"].startswith("rollback rehearsed on h1: back to 1.0.0"), run.stats
    switches = [r for r in run.records if r.get("event") == "host_state" and r.get("host") == "h1"
                and "Rehearsal" in (r.get("task") or "")]
    assert [s["task"].split("Rehearsal | ")[1][:7] for s in switches] == ["back to", "forward"], switches
    assert "rehearsal-smoke" in json.dumps(run.records)

    pids = service_pids(fleet)
    again = release(tmp_path, "2.1.0", environ=DEFAULT_OUTPUT)
    assert again.rc == 0, again
    assert again.status == "succeeded", again
    assert service_pids(fleet) == pids, "re-running the same release restarted a service"
    assert "changed: [h" not in again.out.replace("changed: [h1 -> lb]", ""), again


def test_release_under_traffic_loses_no_request(fleet, tmp_path):
    fleet.up(hosts=8, version="1.0.0")
    # Orders flow from before the release starts until after it ends.
    with Clients(fleet, rate=40) as clients:
        time.sleep(1)
        run = release(tmp_path, "2.1.0")
    assert run.rc == 0, run
    assert len(clients.reports) > 5 and clients.succeeded > 0, clients.reports
    assert clients.failed == 0 and clients.succeeded == sum(r["sent"] for r in clients.reports), clients.reports
    assert_whole_fleet_on(fleet, "2.1.0")


def test_check_mode_prints_the_plan_and_changes_nothing(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    pids = service_pids(fleet)
    run = release(tmp_path, "2.1.0", check=True)
    assert run.rc == 0, run
    assert "check mode, nothing changed" in run.out and "canary: h1" in run.out, run
    assert "would switch h1, h2, h3, h4 to 2.1.0" in run.out, run
    assert service_pids(fleet) == pids
    running, on_disk = fleet_versions(fleet)
    assert set(running.values()) == {"1.0.0"} and set(on_disk.values()) == {"1.0.0"}
    for host in fleet.hosts:
        assert fleet.exec(host, "ls", "/srv/order-router/releases").stdout.split() == ["1.0.0"]


def test_manual_rollback_to_the_previous_release_through_the_same_gates(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    assert release(tmp_path, "2.1.0").rc == 0
    assert release(tmp_path, "2.2.0").rc == 0
    run = release(tmp_path, None, playbook="rollback.yml")
    assert run.rc == 0, run
    assert run.status == "succeeded", run
    assert_whole_fleet_on(fleet, "2.1.0")
    # The release being taken away never goes back on the canary to be rehearsed (nor gets smoke orders there).
    assert run.stats["lockstep_rehearsal"].startswith("rollback rehearsal OFF by the operator (a manual rollback"), run
    assert not any("Rehearsal" in (r.get("task") or "") for r in run.records if r.get("event") == "host_state"), run
    named = release(tmp_path, None, playbook="rollback.yml", extra={"lockstep_rollback_to": "1.0.0"})
    assert named.rc == 0, named
    assert_whole_fleet_on(fleet, "1.0.0")
