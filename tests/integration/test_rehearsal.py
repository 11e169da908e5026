"""The rollback rehearsed on the canary (issue 20), on the real fleet: after the canary passes its gate it goes back
to the previous release through the rollback's steps and forward again before wave 2; a release whose previous
release cannot run on the state it leaves (the sample's 2.3.0 migrates its data file) ends at the canary, rolled
back; turning the rehearsal off is recorded; a fault during the rehearsal never leaves the canary serving a version
nobody verified."""

from __future__ import annotations

import json
import os
import subprocess
import time

from release_helpers import assert_whole_fleet_on, env, fleet_versions, lb_status, release, release_cmd
from test_release_halts import assert_halted

WAVES = {"lockstep_canary": 1, "lockstep_waves": ["25%", "100%"]}


def pids(fleet):
    return {h["name"]: h.get("service_pid") for h in fleet.status()["hosts"]}


def data_format(fleet, host):
    proc = fleet.exec(host, "cat", "/srv/order-router/data/book.json", check=True)
    return json.loads(proc.stdout)["format"]


def gates(run):
    return {r.get("gate") or (r.get("data") or {}).get("gate"): r for r in run.records if r.get("event") == "gate"}


def test_the_rollback_is_rehearsed_on_the_canary_and_a_release_that_cannot_go_back_is_refused_there(fleet, tmp_path):
    fleet.up(hosts=4, version="2.2.0")

    # --check: the plan says it would rehearse, and nothing changes. (A clean release's rehearsal, back and forward,
    # is test_release_clean's 8-host release.)
    check = release(tmp_path, "2.3.0", extra=WAVES, check=True)
    assert check.rc == 0, check
    assert "would be rehearsed on h1 after its gate (back to 2.2.0, forward to 2.3.0 again)" in check.out, check
    assert_whole_fleet_on(fleet, "2.2.0")

    # 2.3.0 migrates the data file to a format 2.2.0 refuses: refused at the canary, no other host touched.
    before = pids(fleet)
    assert {data_format(fleet, h) for h in before} == {1}
    halted = release(tmp_path, "2.3.0", extra=WAVES)
    assert_halted(halted, "rolled_back", "halted by gate rehearsal on h1",
                  "the previous release 2.2.0 does not serve after 2.3.0 ran on h1",
                  # Why, in the service's own words (lockstep_service_log).
                  "newer than this release reads (format 1): refusing to start")
    assert_whole_fleet_on(fleet, "2.2.0")
    after = pids(fleet)
    assert {h: after[h] for h in ("h2", "h3", "h4")} == {h: before[h] for h in ("h2", "h3", "h4")}, (before, after)
    # The canary's state came back from the snapshot taken before its switch: 2.2.0 serves from format 1 again.
    assert data_format(fleet, "h1") == 1
    assert set(lb_status(fleet).values()) == {"UP"}
    assert halted.stats["lockstep_halted_by"]["gate"] == "rehearsal", halted.stats
    forward = [r for r in halted.records if r.get("event") == "wave" and not str(r.get("version")).startswith("back")]
    assert [w["hosts"] for w in forward] == [["h1"]], forward  # the canary's wave only: wave 2 never started

    # Turned off, with a reason: recorded in the ledger and the summary (and 2.3.0 goes out, as the operator chose).
    reason = "CHG-42: data format 2 signed off, no way back"
    off = release(tmp_path, "2.3.0", extra=dict(WAVES, lockstep_rehearse=False, lockstep_rehearse_reason=reason))
    assert off.rc == 0 and off.status == "succeeded", off
    said = "rollback rehearsal OFF by the operator (CHG-42: data format 2 signed off, no way back)"
    assert off.stats["lockstep_rehearsal"] == said, off.stats
    assert said in json.dumps(gates(off)["preflight"]), gates(off)["preflight"]
    assert not any("Rehearsal" in (r.get("task") or "") for r in off.records if r.get("event") == "host_state")
    assert_whole_fleet_on(fleet, "2.3.0")


def run_with_fault(fleet, tmp_path, on_marker, seconds=2):
    """Release 2.1.0 over 1.0.0 with a restart command that, on h1 switching back to 1.0.0 (the rehearsal), drops a
    marker and waits ``seconds``; ``on_marker`` injects the fault meanwhile."""
    fleet.up(hosts=4, version="1.0.0")
    marker = tmp_path / "h1-rehearsing"
    restart = ["/bin/sh", "-c", "/srv/order-router/current/bin/ctl restart && "
               "if [ \"$(hostname)\" = h1 ] && [ \"$(readlink /srv/order-router/current)\" = releases/1.0.0 ]; "
               f"then touch {marker}; sleep {seconds}; fi"]
    cmd = release_cmd("2.1.0", dict(WAVES, lockstep_restart_command=restart, lockstep_switch_timeout=30))
    proc = subprocess.Popen(cmd, cwd=fleet.root, env=env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the rehearsal never switched h1 back"
            time.sleep(0.1)
        on_marker()
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out


def test_the_canary_lost_during_the_rehearsal_ends_out_of_the_load_balancer(fleet, tmp_path):
    code, out = run_with_fault(fleet, tmp_path, lambda: fleet.sshd("h1", "stop"), seconds=20)
    assert code == 2, out
    assert "halted by gate rehearsal on h1" in out and "lockstep rollback_failed" in out, out
    servers = lb_status(fleet)
    assert servers.pop("h1") == "MAINT", servers
    assert set(servers.values()) == {"UP"}, servers
    running, on_disk = fleet_versions(fleet)
    assert {h: running[h] for h in ("h2", "h3", "h4")} == dict.fromkeys(("h2", "h3", "h4"), "1.0.0"), running


def test_the_load_balancer_gone_during_the_rehearsal_leaves_the_canary_on_the_previous_release(fleet, tmp_path):
    sock = fleet.haproxy_socket
    seen = []

    def fault():
        # While the canary switches back, HAProxy sends it nothing: it is still drained from its wave.
        seen.append(lb_status(fleet))
        os.rename(sock, sock + ".away")

    try:
        code, out = run_with_fault(fleet, tmp_path, fault)
    finally:
        if os.path.exists(sock + ".away"):
            os.rename(sock + ".away", sock)
    # DRAIN, with a failed health check beside it ("DRAIN 1/2") when one ran while h1 restarted.
    assert seen[0]["h1"].split()[0] == "DRAIN", seen
    assert code == 2, out
    assert "halted by gate rehearsal on h1" in out and "lockstep rolled_back" in out, out
    # Every host on 1.0.0, proven; the canary, drained through the rehearsal, stays out until an operator puts it
    # back.
    assert_whole_fleet_on(fleet, "1.0.0")
    servers = lb_status(fleet)
    assert servers.pop("h1").split()[0] == "DRAIN", servers
    assert set(servers.values()) == {"UP"}, servers


def test_a_previous_release_that_fails_its_smoke_checks_after_the_new_one_ran_is_refused(fleet, tmp_path):
    """The previous release starts and reports its version on the canary, but its behavioural check fails there
    (its exchange route is broken when the rehearsal restarts it): refused at the canary; the rollback's restart
    finds the route mended and proves the canary back."""
    fleet.up(hosts=4, version="1.0.0")
    marker = tmp_path / "h1-broken-once"
    host_json = "/srv/order-router/host.json"
    restart = ["/bin/sh", "-c",
               f"if [ \"$(hostname)\" = h1 ] && [ \"$(readlink /srv/order-router/current)\" = releases/1.0.0 ] "
               f"&& [ ! -e {marker} ]; then cp {host_json} {host_json}.good && touch {marker} && "
               f"python3 -c \"import json; d = json.load(open('{host_json}')); d['exchange_url'] = "
               f"'http://127.0.0.1:9'; json.dump(d, open('{host_json}', 'w'))\"; "
               f"elif [ -e {host_json}.good ]; then mv {host_json}.good {host_json}; fi; "
               "exec /srv/order-router/current/bin/ctl restart"]
    before = pids(fleet)
    run = release(tmp_path, "2.1.0", extra=dict(WAVES, lockstep_restart_command=restart))
    assert_halted(run, "rolled_back", "halted by gate rehearsal on h1",
                  "the previous release 1.0.0 does not serve after 2.1.0 ran on h1", "child order")
    assert marker.exists()
    assert_whole_fleet_on(fleet, "1.0.0")
    after = pids(fleet)
    assert {h: after[h] for h in ("h2", "h3", "h4")} == {h: before[h] for h in ("h2", "h3", "h4")}, (before, after)
    assert set(lb_status(fleet).values()) == {"UP"}
