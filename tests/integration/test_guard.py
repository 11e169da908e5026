"""The guard after the release (extensions/eda): a real ansible-rulebook process against the real local fleet."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request

import pytest
from guard_helpers import GuardProcess, lb_rows, sends_nothing, swap_back
from operator_helpers import playbook
from release_helpers import ledgers, release

from ansible_collections.lockstep.release.plugins.module_utils import ledger


def wait_until(predicate, timeout, what, guard=None):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "%s not within %ss\n%s" % (what, timeout, guard.out[-6000:] if guard
                                                                       else "")
        time.sleep(0.1)


def records_of(tmp_path, name):
    return ledger.read_records(str(tmp_path / "ledger" / name))


def finished(records):
    return next((r for r in records if r.get("event") == "release_finished"), None)


def test_guard_leaves_a_release_alone_then_drains_only_the_host_swapped_back(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    with GuardProcess(tmp_path, interval=1) as guard:
        guard.wait_for("lockstep guard: watching 4 hosts")
        # The guard watches the whole release: the fleet is mixed on purpose while the lock is held.
        run = release(tmp_path, "2.1.0")
        assert run.status == "succeeded", run
        assert "release lock held by run" in guard.out, guard.out
        time.sleep(1.5)  # one more poll of the released fleet, lock free
        assert "lockstep guard: fault" not in guard.out, guard.out
        assert len(ledgers(tmp_path)) == 1, ledgers(tmp_path)  # the release's own: the guard ran nothing
        assert {s for s, _ in lb_rows(fleet).values()} == {"UP"}, lb_rows(fleet)

        swap_back(fleet, "h2")
        wait_until(lambda: sends_nothing(fleet, "h2"), 30, "h2 out of HAProxy", guard)
        wait_until(lambda: len(ledgers(tmp_path)) == 2 and finished(records_of(tmp_path, max(
            ledgers(tmp_path)))), 60, "the halt recorded", guard)
    rows = lb_rows(fleet)
    assert rows["h2"][0] == "MAINT" and {rows[h][0] for h in ("h1", "h3", "h4")} == {"UP"}, rows
    running = {h["name"]: h.get("version") for h in fleet.status()["hosts"]}
    assert running == {"h1": "2.1.0", "h2": None, "h3": "2.1.0", "h4": "2.1.0"}, running
    records = records_of(tmp_path, max(ledgers(tmp_path)))
    started = records[0]
    assert started["limit"] == "h2" and started["playbook"].endswith("halt.yml"), started
    fault = started["extra_vars"]["lockstep_guard_fault"]
    assert fault.startswith("not-released on h2: h2 serves 1.0.0") and "put 2.1.0 there" in fault, fault
    assert finished(records)["status"] == "halted", finished(records)
    assert started["extra_vars"]["lockstep_halt_hosts"] == ["h2"], started


def flood(url, stop, ids):
    """Orders with the retired power-peg flag ``rlp``, one after another, straight to one host."""
    while not stop.is_set():
        body = json.dumps({"id": "flood-%d" % len(ids), "symbol": "KCG", "qty": 100, "flags": ["rlp"]}).encode()
        ids.append(1)
        req = urllib.request.Request(url + "/orders", data=body, headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req, timeout=10).read()
        except OSError:
            time.sleep(0.05)


def test_guard_drains_the_host_flooding_child_orders_and_the_flood_stops(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    with GuardProcess(tmp_path, interval=1) as guard:
        guard.wait_for("lockstep guard: watching 4 hosts")
        stop, ids = threading.Event(), []
        sender = threading.Thread(target=flood, args=("http://127.0.0.13:8080", stop, ids), daemon=True)
        sender.start()
        try:
            wait_until(lambda: sends_nothing(fleet, "h3"), 30, "h3 out of HAProxy", guard)
            wait_until(lambda: fleet.status()["hosts"][2].get("version") is None, 30, "h3 stopped", guard)
            first = fleet.exchange("/stats")["child_orders"]
            time.sleep(2)
            assert fleet.exchange("/stats")["child_orders"] == first, "the exchange still gets child orders"
        finally:
            stop.set()
            sender.join(timeout=15)
        assert first > 0 and fleet.exchange("/stats")["max_child_orders_per_parent"] > 1
        assert "fault threshold (host): h3: child orders per parent order" in guard.out, guard.out
    rows = lb_rows(fleet)
    assert rows["h3"][0] == "MAINT" and {rows[h][0] for h in ("h1", "h2", "h4")} == {"UP"}, rows


def test_halt_for_the_guard_refuses_while_a_release_holds_the_lock(fleet, tmp_path):
    fleet.up(hosts=4, version="1.0.0")
    lock = os.path.join(fleet.dir, "lockstep-release.lock")
    with open(lock, "w") as f:
        json.dump({"run_id": "r1", "pid": 1, "version": "2.1.0", "user": "root", "controller": "elsewhere",
                   "started": "now"}, f)
    try:
        run = playbook(tmp_path, "halt.yml", extra={"lockstep_halt_hosts": ["h2"],
                                                     "lockstep_halt_respect_lock": True})
    finally:
        os.unlink(lock)
    assert run.rc != 0 and "a release holds the lock" in run.out, run
    assert {s for s, _ in lb_rows(fleet).values()} == {"UP"}, lb_rows(fleet)
    assert finished(run.records)["status"] == "refused", run


def test_halt_limited_to_named_hosts_touches_no_other(fleet, tmp_path):
    # No --limit: lockstep_halt_hosts alone keeps the kill switch to the named host.
    fleet.up(hosts=4, version="1.0.0")
    run = playbook(tmp_path, "halt.yml", extra={"lockstep_halt_hosts": ["h2"]})
    assert run.rc == 0 and "LOCKSTEP HALT: every host stopped" in run.out, run
    rows = lb_rows(fleet)
    assert rows["h2"] == ("MAINT", 0) and {rows[h][0] for h in ("h1", "h3", "h4")} == {"UP"}, rows
    running = {h["name"]: h.get("version") for h in fleet.status()["hosts"]}
    assert running == {"h1": "1.0.0", "h2": None, "h3": "1.0.0", "h4": "1.0.0"}, running
    assert finished(run.records)["status"] == "halted", run


@pytest.mark.quiet  # the 5 s it times is the guard's, not that of a machine busy with make test's other line
def test_guard_under_a_clean_release_leaves_every_server_up_then_isolates_a_swapped_host_within_5s(fleet, tmp_path):
    # The race of issue 17: the lock free before the release's outcome was recorded made the guard judge the
    # released fleet against the release before and take every server out.
    fleet.up(hosts=4, version="1.0.0")
    first = release(tmp_path, "2.1.0")
    assert first.status == "succeeded", first
    before = ledgers(tmp_path)
    # A run slow to finish after it freed the lock (here its after_release hook): the guard polls in between.
    slow = tmp_path / "after_release.yml"
    slow.write_text("- name: Test hook - slow to finish\n  ansible.builtin.pause:\n    seconds: 3\n")
    with GuardProcess(tmp_path, interval=1) as guard:
        guard.wait_for("lockstep guard: watching 4 hosts")
        run = release(tmp_path, "2.2.0", extra={"lockstep_hooks": {"after_release": str(slow)}})
        assert run.status == "succeeded", run
        time.sleep(4)  # four more polls of the released fleet
        assert guard.proc.poll() is None, guard.out
        assert "lockstep guard: fault" not in guard.out and "RECORD PROBLEM" not in guard.out, guard.out
        assert {s for s, _ in lb_rows(fleet).values()} == {"UP"}, lb_rows(fleet)

    # The record problem: the newest ledger (and the outcome the release left next to the lock) gone. Every host
    # agrees with every other: the record is wrong, and nothing is taken out.
    for name in ledgers(tmp_path) - before:
        os.unlink(str(tmp_path / "ledger" / name))
    os.unlink(os.path.join(fleet.dir, "lockstep-release.lock.outcome"))
    with GuardProcess(tmp_path, interval=1) as guard:
        guard.wait_for("RECORD PROBLEM record-disagrees", timeout=30)
        time.sleep(3)
        assert guard.out.count("RECORD PROBLEM") == 1, guard.out
        assert "lockstep guard: fault" not in guard.out, guard.out
        assert {s for s, _ in lb_rows(fleet).values()} == {"UP"}, lb_rows(fleet)
        assert ledgers(tmp_path) - {"guard"} == before, ledgers(tmp_path)  # the guard ran no halt
        records = records_of(tmp_path, os.path.join("guard", os.listdir(str(tmp_path / "ledger" / "guard"))[0]))
        assert records[0]["fault"] == "record-disagrees" and "2.2.0" in records[0]["message"], records

        # A host that disagrees with the rest of the fleet is still isolated, and only it.
        swap_back(fleet, "h2", "2.1.0")
        started = time.monotonic()
        wait_until(lambda: lb_rows(fleet)["h2"][0] == "MAINT", 30, "h2 out of HAProxy", guard)
        took = time.monotonic() - started
        rows = lb_rows(fleet)
        assert {rows[h][0] for h in ("h1", "h3", "h4")} == {"UP"}, rows
        assert took <= 5, "h2 isolated after %.1fs\n%s" % (took, guard.out[-3000:])
