"""The Knight Capital scenario, end to end on the real fleet.

2.0.0 reuses the flag `rlp`, which on 1.0.0 wakes the dead "power peg" code. lockstep refuses 2.0.0 over a healthy
1.0.0 fleet (the flag-reuse gate), refuses the "fix" that made Knight's morning worse (a rollback from 2.0.0 to
1.0.0 while clients send `rlp`), and halts a release that leaves one host behind; while `rlp` orders flow through
HAProxy the whole time, no parent order ever produces more than one child order.
"""

from __future__ import annotations

from release_helpers import Clients, assert_whole_fleet_on, fleet_versions, release
from test_release_halts import stale_pidfile

OVERRIDE = {"lockstep_allow_flag_reuse": True,
            "lockstep_flag_reuse_reason": "test: no client sends rlp until 2.0.0 runs everywhere"}


def test_flag_reuse_gate_refuses_2_0_0_on_a_healthy_1_0_0_fleet_and_2_1_0_succeeds(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    pids = {h["name"]: h["service_pid"] for h in fleet.status()["hosts"]}

    knight = release(tmp_path, "2.0.0")
    assert knight.rc != 0, knight
    assert knight.status == "refused", knight
    assert "flag-reuse" in knight.out and "flag rlp means" in knight.out and "power peg" in knight.out, knight
    assert_whole_fleet_on(fleet, "1.0.0")
    assert {h["name"]: h["service_pid"] for h in fleet.status()["hosts"]} == pids  # not one service restarted

    clean = release(tmp_path, "2.1.0")
    assert clean.rc == 0, clean
    assert clean.status == "succeeded", clean
    assert_whole_fleet_on(fleet, "2.1.0")


def test_knight_morning_rlp_orders_flow_and_none_ever_floods(fleet, tmp_path):
    fleet.up(hosts=8, version="1.0.0")
    # The operator overrides the gate (recorded) before any client sends rlp: 2.0.0 runs everywhere, 1.0.0 is
    # still on disk as the rollback target, exactly Knight's fleet on the morning of 1 August 2012.
    forced = release(tmp_path, "2.0.0", extra=OVERRIDE)
    assert forced.rc == 0 and forced.status == "succeeded", forced
    gates = [r for r in forced.records if r.get("event") == "gate" and r.get("gate") == "preflight"]
    assert gates and gates[-1]["flags"].startswith("flag reuse ALLOWED by the operator (test: no client"), gates
    fleet.exchange("/reset", {})

    with Clients(fleet, "rlp") as clients:
        # The "fix" that made Knight's morning worse: back to 1.0.0, which reads rlp as the power peg.
        fix = release(tmp_path, None, playbook="rollback.yml")
        assert fix.rc != 0 and fix.status == "refused", fix
        assert "flag rlp means" in fix.out and "power peg" in fix.out, fix
        assert_whole_fleet_on(fleet, "2.0.0")

        # The first half of Knight: one host's restart silently does nothing. The release halts, rolls back.
        stale_pidfile(fleet, "h8")
        halted = release(tmp_path, "2.1.0", extra={"lockstep_switch_timeout": 5})
        assert halted.rc != 0 and halted.status == "rolled_back", halted
        assert "h8" in halted.out and "running-version check failed" in halted.out, halted
        running, on_disk = fleet_versions(fleet)
        assert set(on_disk.values()) == {"2.0.0"}, on_disk
    assert clients.succeeded > 0, clients.reports
    stats = fleet.exchange("/stats")
    assert stats["parents"] >= clients.succeeded, stats
    assert stats["max_child_orders_per_parent"] == 1, stats  # no parent order ever flooded


def test_rollback_to_a_version_that_reads_the_flag_differently_needs_the_recorded_override(fleet, tmp_path):
    fleet.up(hosts=3, version="1.0.0")
    assert release(tmp_path, "2.0.0", extra=OVERRIDE).status == "succeeded"

    refused = release(tmp_path, None, playbook="rollback.yml", extra={"lockstep_rollback_to": "1.0.0"})
    assert refused.rc != 0 and refused.status == "refused", refused
    assert "flag rlp" in refused.out, refused
    assert_whole_fleet_on(fleet, "2.0.0")

    back = release(tmp_path, None, playbook="rollback.yml",
                   extra=dict(OVERRIDE, lockstep_rollback_to="1.0.0",
                              lockstep_flag_reuse_reason="clients stopped sending rlp at 09:31"))
    assert back.rc == 0 and back.status == "succeeded", back
    assert_whole_fleet_on(fleet, "1.0.0")
    started = [r for r in back.records if r.get("event") == "release_started"]
    assert "clients stopped sending rlp at 09:31" in str(started), started


def test_manifest_that_lies_about_its_flags_is_refused(fleet, tmp_path):
    import json
    import shutil

    fleet.up(hosts=2, version="1.0.0")
    artifacts = tmp_path / "artifacts"
    shutil.copytree(fleet.artifacts_dir, artifacts)
    path = artifacts / "order-router-2.1.0.manifest.json"
    manifest = json.loads(path.read_text())
    manifest["flags"][0]["meaning"] = "something harmless"
    path.write_text(json.dumps(manifest))
    run = release(tmp_path, "2.1.0", extra={"lockstep_artifact_dir": str(artifacts)})
    assert run.rc != 0 and run.status == "refused", run
    assert "flag-manifest" in run.out and "something harmless" in run.out, run
    assert_whole_fleet_on(fleet, "1.0.0")


def test_rlp_order_floods_from_a_1_0_0_host_and_not_from_2_x(fleet):
    """The hazard itself, on real fleet hosts: `rlp` wakes 1.0.0's power peg; 2.0.0 and 2.1.0 send one child."""
    import json
    import urllib.request

    def order(url, parent, flags):
        req = urllib.request.Request(url + "/orders", data=json.dumps(
            {"id": parent, "symbol": "KCG", "qty": 100, "flags": flags}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.load(resp)

    for version, flag, floods in (("1.0.0", "rlp", True), ("2.0.0", "rlp", False), ("2.1.0", "rli", False),
                                  ("2.1.0", "rlp", False)):
        fleet.up(hosts=1, version=version)
        parent = "P-%s-%s" % (version, flag)
        order(fleet.state()["hosts"]["h1"]["service_url"], parent, [flag])
        children = fleet.exchange("/parents/%s" % parent)["child_orders"]
        if floods:
            assert children >= 1000, (version, flag, children)
        else:
            assert children == 1, (version, flag, children)
