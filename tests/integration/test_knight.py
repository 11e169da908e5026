"""The Knight Capital scenario, end to end on the real fleet.

2.0.0 reuses the flag `rlp`, which on 1.0.0 wakes the dead "power peg" code. One of 8 hosts keeps running 1.0.0
after the deploy (its restart silently does nothing). lockstep must halt before any `rlp` order reaches that host,
roll every changed host back, and leave the exchange without a flood; after the host is repaired, the clean 2.1.0
release (new flag name, `rlp` retired) succeeds.
"""

from __future__ import annotations

from release_helpers import assert_whole_fleet_on, release
from test_release_halts import stale_pidfile


def repair(fleet, host):
    """What an operator does once lockstep names the host: stop the process that really serves, start cleanly."""
    url = fleet.state()["hosts"][host]["service_url"] + "/version"
    pid = fleet.exec(host, "python3", "-c", "import json, urllib.request; "
                     "print(json.load(urllib.request.urlopen(%r))['pid'])" % url, check=True).stdout.strip()
    fleet.exec(host, "kill", pid, check=True)
    fleet.exec(host, "/srv/order-router/current/bin/ctl", "start", check=True)
    fleet.wait_healthy([host])


def test_knight_release_is_halted_rolled_back_and_the_exchange_sees_no_flood(fleet, tmp_path):
    fleet.up(hosts=8, version="1.0.0")
    fleet.exchange("/reset", {})
    stale_pidfile(fleet, "h8")

    knight = release(tmp_path, "2.0.0", extra={"lockstep_switch_timeout": 5})
    assert knight.rc != 0, knight
    assert knight.status == "rolled_back", knight
    assert "h8" in knight.out and "running-version check failed" in knight.out, knight
    assert_whole_fleet_on(fleet, "1.0.0")
    parents = fleet.exchange("/stats")
    assert parents["child_orders"] <= parents["parents"], parents  # no parent order produced a flood

    repair(fleet, "h8")
    clean = release(tmp_path, "2.1.0")
    assert clean.rc == 0, clean
    assert clean.status == "succeeded", clean
    assert_whole_fleet_on(fleet, "2.1.0")
    # Clients now send the new feature's orders: one child order each, on every host.
    report = fleet.traffic(rate=50, seconds=2, flag="rli")
    assert report["failed"] == 0, report
    stats = fleet.exchange("/stats")
    assert stats["child_orders"] <= stats["parents"], stats


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
