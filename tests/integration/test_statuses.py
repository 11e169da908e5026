"""The status says what lockstep did; the hosts' condition is reported beside it (issue 17, item 6)."""

from __future__ import annotations

from release_helpers import fleet_versions, lb_status, release
from test_release_halts import hook


def test_a_host_that_dies_on_its_own_mid_release_is_named_found_dead_and_the_status_stays_rolled_back(
        fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    # After the canary passed its gate, h4 (never changed by this release) loses its service to a kill -9.
    kill = hook(tmp_path, "after_wave", f"""
- name: Test hook - h4's service is killed, outside the release
  ansible.builtin.command: >-
    {fleet.root}/bin/fleet exec h4 -- sh -c 'kill -9 $(cat /srv/order-router/run/router.pid)'
  delegate_to: localhost
  run_once: true
  changed_when: true
  when: lockstep_waves_done | int == 1
""")
    run = release(tmp_path, "2.1.0", extra={"lockstep_hooks": {"after_wave": kill}, "lockstep_waves": [1, 1, "100%"]})
    assert run.rc != 0, run
    # h1 and h2, the hosts lockstep changed, were proven back: that is a rollback that worked.
    assert run.status == "rolled_back", run
    running, on_disk = fleet_versions(fleet)
    assert running == {"h1": "1.0.0", "h2": "1.0.0", "h3": "1.0.0", "h4": None}, running
    assert set(on_disk.values()) == {"1.0.0"}, on_disk
    assert lb_status(fleet)["h4"] == "MAINT" and {lb_status(fleet)[h] for h in ("h1", "h2", "h3")} == {"UP"}
    finished = run.records[-1]
    assert finished["found_dead"] == ["h4"], finished
    assert finished["hosts"]["h4"]["result"] == "found_dead_drained", finished["hosts"]
    stats = [r for r in run.records if r.get("event") == "status_reported"]
    assert "h4" in str(stats), stats
    assert "found dead, not changed by this release" in run.out and "h4" in run.out, run
