"""The guard's event source (extensions/eda/plugins/event_source/lockstep_guard.py): its judgement of one
observation, the last successful release read from real ledgers, and one poll of real HTTP services."""

from __future__ import annotations

import importlib.util
import json
import os

import yaml

from ansible_collections.lockstep.release.plugins.module_utils import ledger

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE = os.path.join(REPO, "extensions", "eda", "plugins", "event_source", "lockstep_guard.py")
spec = importlib.util.spec_from_file_location("lockstep_guard", SOURCE)
guard = importlib.util.module_from_spec(spec)
spec.loader.exec_module(guard)

HOSTS = ["h1", "h2", "h3", "h4"]
CHILD = {"name": "child orders per parent order", "metric": "order_router_child_orders_sent_total",
         "per": "order_router_orders_received_total", "max": 1.5}
UP = {"serving": True, "status": "UP", "addr": "127.0.0.1:1"}


def probes(**versions):
    return {h: {"reachable": True, "version": v, "pid": 7, "directory": "/srv/x/releases/%s" % v,
                "content_sha256": "c-%s" % v} for h, v in versions.items()}


def healthy_metrics(hosts=HOSTS):
    return {h: ({"order_router_child_orders_sent_total": 5.0, "order_router_orders_received_total": 5.0}, None)
            for h in hosts}


def judged(found):
    return sorted((f["fault"], f["scope"], f["host"]) for f in found)


def test_a_uniform_fleet_on_the_released_version_has_no_fault():
    release = {"version": "2.1.0", "content": "c-2.1.0", "ledger": "/l/r.jsonl"}
    assert guard.faults(HOSTS, probes(h1="2.1.0", h2="2.1.0", h3="2.1.0", h4="2.1.0"), healthy_metrics(), [CHILD],
                        {h: UP for h in HOSTS}, release) == []


def test_one_host_off_the_released_version_is_isolated():
    release = {"version": "2.1.0", "content": "c-2.1.0", "ledger": "/l/r.jsonl"}
    found = guard.faults(HOSTS, probes(h1="2.1.0", h2="1.0.0", h3="2.1.0", h4="2.1.0"), healthy_metrics(), [CHILD],
                         {h: UP for h in HOSTS}, release)
    assert judged(found) == [("not-released", "host", "h2")]
    assert "h2 serves 1.0.0" in found[0]["message"] and "put 2.1.0 there" in found[0]["message"]


def test_same_version_other_content_is_not_what_the_release_put_there():
    release = {"version": "2.1.0", "content": "c-2.1.0", "ledger": "/l/r.jsonl"}
    p = probes(h1="2.1.0", h2="2.1.0", h3="2.1.0", h4="2.1.0")
    p["h4"]["content_sha256"] = "tampered"
    assert judged(guard.faults(HOSTS, p, healthy_metrics(), [], {h: UP for h in HOSTS}, release)) == [
        ("not-released", "host", "h4")]


def test_without_a_release_the_majority_decides_and_a_tie_cannot_be_isolated():
    lb = {h: UP for h in HOSTS}
    assert judged(guard.faults(HOSTS, probes(h1="2.1.0", h2="1.0.0", h3="2.1.0", h4="2.1.0"), {}, [], lb)) == [
        ("not-uniform", "host", "h2")]
    tie = guard.faults(HOSTS, probes(h1="2.1.0", h2="1.0.0", h3="2.1.0", h4="1.0.0"), {}, [], lb)
    assert {f["scope"] for f in tie} == {"service"} and "no majority" in tie[0]["message"]


def test_a_uniform_fleet_off_the_record_is_a_record_problem_and_nothing_is_taken_out():
    release = {"version": "2.1.0", "content": None, "ledger": "/l/r.jsonl"}
    found = guard.faults(HOSTS, probes(h1="2.2.0", h2="2.2.0", h3="2.2.0", h4="2.2.0"), {}, [],
                         {h: UP for h in HOSTS}, release)
    assert judged(found) == [("record-disagrees", "record", "h1")], found
    assert "the record is wrong, not the fleet" in found[0]["message"], found


def test_a_fleet_mixed_off_the_record_isolates_only_the_minority():
    release = {"version": "2.1.0", "content": None, "ledger": "/l/r.jsonl"}
    lb = {h: UP for h in HOSTS}
    found = guard.faults(HOSTS, probes(h1="2.2.0", h2="2.2.0", h3="1.0.0", h4="2.2.0"), {}, [], lb, release)
    assert judged(found) == [("not-uniform", "host", "h3"), ("record-disagrees", "record", "h1")], found
    tie = guard.faults(HOSTS, probes(h1="2.2.0", h2="2.2.0", h3="1.0.0", h4="1.0.0"), {}, [], lb, release)
    assert {f["scope"] for f in tie} == {"service"}, tie


def test_the_outcome_next_to_the_lock_wins_over_the_ledger_still_being_written(tmp_path):
    lock = str(tmp_path / "release.lock")
    directory = str(tmp_path / "ledger")
    assert guard.expected_release(lock, directory) is None
    (tmp_path / "release.lock.outcome").write_text(json.dumps(
        {"run_id": "r2", "status": "succeeded", "serving": "2.2.0", "finished": "now"}))
    found = guard.expected_release(lock, directory)
    assert found["version"] == "2.2.0" and "run r2 (succeeded" in found["source"], found
    (tmp_path / "release.lock.outcome").write_text(json.dumps({"run_id": "r3", "status": "failed", "serving": None}))
    assert guard.expected_release(lock, directory) is None  # unknown: the majority decides


def test_a_threshold_breach_names_its_host():
    metrics = healthy_metrics()
    metrics["h3"] = ({"order_router_child_orders_sent_total": 4000.0, "order_router_orders_received_total": 2.0},
                     None)
    found = guard.faults(HOSTS, probes(h1="1.0.0", h2="1.0.0", h3="1.0.0", h4="1.0.0"), metrics, [CHILD],
                         {h: UP for h in HOSTS})
    assert judged(found) == [("threshold", "host", "h3")]
    assert "child orders per parent order = 2e+03 exceeds 1.5" in found[0]["message"]


def test_hosts_out_of_traffic_are_not_judged_and_an_unknown_backend_is_a_service_fault():
    lb = {h: UP for h in HOSTS}
    lb["h2"] = {"serving": False, "status": "MAINT", "addr": "127.0.0.1:1"}
    lb["rogue"] = {"serving": True, "status": "UP", "addr": "127.0.0.99:8080"}
    found = guard.faults(HOSTS, probes(h1="2.1.0", h2="1.0.0", h3="2.1.0", h4="2.1.0"), {}, [], lb)
    assert judged(found) == [("unknown-backend", "service", "rogue")]


def write_ledger(directory, name, records):
    writer = ledger.LedgerWriter(os.path.join(directory, name))
    try:
        for r in records:
            writer.append(dict(r, ts="2026-01-01T00:00:00.000000Z"))
    finally:
        writer.close()


def test_the_last_successful_release_is_read_from_the_ledger(tmp_path):
    state = {"active_version": "2.1.0", "active_content_sha256": "abc"}
    write_ledger(tmp_path, "20260101T000000000000Z-release-1.jsonl", [
        {"event": "release_started"}, {"event": "host_state", "host": "h1", "state": state},
        {"event": "release_finished", "status": "succeeded", "version_after": "2.1.0"}])
    write_ledger(tmp_path, "20260101T000001000000Z-release-2.jsonl", [
        {"event": "release_started"}, {"event": "release_finished", "status": "rolled_back", "version_after": "2.1.0"}])
    write_ledger(tmp_path, "20260101T000002000000Z-halt-3.jsonl", [
        {"event": "release_started"}, {"event": "release_finished", "status": "halted", "version_after": None}])
    last = guard.last_release(str(tmp_path))
    assert last["version"] == "2.1.0" and last["content"] == "abc" and last["ledger"].endswith("release-1.jsonl")
    assert guard.last_release(str(tmp_path / "none")) is None


def inventory(tmp_path, urls, lock):
    inv = tmp_path / "inv"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {"app": {"hosts": {
        h: {"lockstep_service_url": u} for h, u in urls.items()}}}}}))
    (inv / "group_vars" / "all.yml").write_text(yaml.safe_dump({"lockstep_lock_path": str(lock)}))
    return str(inv)


def test_a_poll_finds_the_odd_host_and_says_nothing_while_a_release_holds_the_lock(tmp_path, http_service):
    urls = {h: http_service({"/version": (200, {"version": v, "pid": 1})}).url
            for h, v in (("h1", "2.1.0"), ("h2", "1.0.0"), ("h3", "2.1.0"))}
    lock = tmp_path / "release.lock"
    g = guard.Guard({"inventory": inventory(tmp_path, urls, lock), "ledger_dir": str(tmp_path / "ledger")})
    held, events = g.poll()
    assert held is None and [e["lockstep_guard"]["host"] for e in events] == ["h2"], events
    assert events[0]["meta"] == {"hosts": "h2"} and events[0]["lockstep_guard"]["lock_path"] == str(lock)
    lock.write_text(json.dumps({"run_id": "r1", "version": "2.1.0"}))
    held, events = g.poll()
    assert held["run_id"] == "r1" and events == []


def test_when_the_record_is_wrong_a_host_that_agrees_with_it_is_the_odd_one_out():
    # The newest release's record lost: the record says 2.1.0, the fleet runs 2.2.0 and one host was swapped to
    # 2.1.0. The host off the fleet is isolated, never the three that agree with each other.
    release = {"version": "2.1.0", "content": None, "ledger": "/l/r.jsonl"}
    found = guard.faults(HOSTS, probes(h1="2.2.0", h2="2.1.0", h3="2.2.0", h4="2.2.0"), {}, [],
                         {h: UP for h in HOSTS}, release)
    assert judged(found) == [("not-uniform", "host", "h2"), ("record-disagrees", "record", "h1")], found


def test_without_a_majority_the_record_tells_right_from_wrong():
    release = {"version": "2.1.0", "content": None, "ledger": "/l/r.jsonl"}
    found = guard.faults(HOSTS, probes(h1="2.1.0", h2="1.0.0", h3="2.1.0", h4="1.0.0"), {}, [],
                         {h: UP for h in HOSTS}, release)
    assert judged(found) == [("not-released", "host", "h2"), ("not-released", "host", "h4")], found
