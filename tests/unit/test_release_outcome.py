"""lockstep.release.outcome: the release's one status, in the order the statuses are decided, and the message a
run that did not succeed exits with (issue 19, item 4: computed by one action, not templated in YAML)."""

from __future__ import annotations

from ansible_collections.lockstep.release.plugins.action.outcome import decide, flatten, ledger_artifact

HALT = {"phase": "rollout", "gate": "wave-2", "host": "h3", "message": "1.0.0 on disk (expected 2.1.0)"}
PASSED = {"msg": "gate final passed", "lockstep_gate": {"gate": "final", "passed": True, "halted": []}}


def census_of(*wrong):
    return {"msg": "gate final halted the release on %s" % ", ".join(wrong),
            "lockstep_gate": {"gate": "final", "passed": False, "halted": [{"host": h} for h in wrong]}}


def outcome(**kw):
    a = {"version": "2.1.0", "before": "1.0.0", "halt": None, "changed": [], "census": PASSED, "lb": "haproxy"}
    a.update(kw)
    return decide(a)


def test_a_clean_release_succeeds_only_when_the_census_passed():
    o = outcome(changed=["h1", "h2"])
    assert (o["status"], o["failed"], o["version_after"], o["serving"], o["halted_by"]) == (
        "succeeded", False, "2.1.0", "2.1.0", None)
    assert o["message"] == "lockstep succeeded: release of 2.1.0 completed"
    # Nothing recorded a failure, but the census disagrees: never a success.
    o = outcome(changed=["h1", "h2"], census=census_of("h2"))
    assert (o["status"], o["failed"], o["version_after"], o["serving"]) == ("failed", True, "1.0.0", None)
    assert "not halted, but the final census disagrees: gate final halted the release on h2" in o["message"]
    # No census at all (it did not run, outside check mode) is not a pass either.
    assert outcome(changed=["h1"], census={})["status"] == "failed"


def test_check_mode_needs_no_census_and_a_partial_release_says_so():
    assert outcome(check_mode=True, census={"skipped": True})["status"] == "succeeded"
    o = outcome(changed=["h1"], partial=True)
    assert (o["status"], o["failed"]) == ("partial", False)


def test_a_halt_before_any_host_changed_is_a_refusal_that_serves_the_release_before():
    o = outcome(halt=dict(HALT, phase="preflight", gate="preflight", host="h8"))
    assert (o["status"], o["failed"], o["serving"], o["version_after"]) == ("refused", True, "1.0.0", "1.0.0")
    assert o["message"].startswith("lockstep refused: release of 2.1.0 halted by gate preflight on h8: ")


def test_a_halt_rolled_back_and_proven_names_the_gate_the_host_and_the_release_back():
    o = outcome(halt=HALT, changed=["h1", "h2", "h3"], killed_hosts=[], reports={"1.0.0": "1.0"})
    assert (o["status"], o["failed"], o["serving"]) == ("rolled_back", True, "1.0")
    assert o["message"] == ("lockstep rolled_back: release of 2.1.0 halted by gate wave-2 on h3: 1.0.0 on disk "
                            "(expected 2.1.0) | every changed host was rolled back to 1.0.0 and verified")


def test_a_changed_host_not_proven_back_is_a_failed_rollback_and_one_found_dead_is_not():
    o = outcome(halt=HALT, changed=["h1", "h2"], rollback_bad=["h2"], killed_hosts=["h2"], census=census_of("h2"))
    assert o["status"] == "rollback_failed"
    assert "ROLLBACK FAILED (gate final halted the release on h2); taken out of the load balancer (confirmed by " \
           "it): h2" in o["message"]
    assert o["serving"] is None
    # h4 died on its own: named beside the status, which stays rolled_back.
    o = outcome(halt=HALT, changed=["h1", "h2"], rollback_bad=["h4"], killed_hosts=["h4"], census=census_of("h4"))
    assert (o["status"], o["found_dead"]) == ("rolled_back", ["h4"])
    assert "found dead, not changed by this release: h4 (taken out of the load balancer: h4)" in o["message"]
    # The rollback's own failure counts even when no host is named.
    o = outcome(halt=HALT, changed=["h1"], rollback_failed="the state could not be read")
    assert o["status"] == "rollback_failed" and "ROLLBACK FAILED (the state could not be read); " \
        "taken out of the load balancer (confirmed by it): none" in o["message"]


def test_a_halted_first_release_is_stopped_only_when_every_host_it_changed_is_stopped_and_out():
    first = dict(halt=HALT, before=None, changed=["h1", "h2"], first_hosts=["h1", "h2"], rollback_bad=["h1", "h2"],
                 census=PASSED)
    o = outcome(first_stopped=["h1", "h2"], killed_hosts=["h1", "h2"], **first)
    assert (o["status"], o["serving"], o["version_after"]) == ("stopped", None, None)
    assert "first release: nothing to roll back to; stopped and taken out of the load balancer: h1, h2" \
        in o["message"]
    # One host still running, or still in the load balancer: the rollback failed.
    assert outcome(first_stopped=["h1"], killed_hosts=["h1", "h2"], **first)["status"] == "rollback_failed"
    assert outcome(first_stopped=["h1", "h2"], killed_hosts=["h1"], **first)["status"] == "rollback_failed"
    o = outcome(first_stopped=["h1", "h2"], killed_hosts=["h1", "h2"], lb="none", **first)
    assert "first release: nothing to roll back to; stopped: h1, h2" in o["message"]


def test_what_could_not_be_taken_out_a_lost_connection_and_a_broken_ledger_are_all_said():
    o = outcome(halt=HALT, changed=["h1", "h2"], rollback_bad=["h2"], unkilled_hosts=["h2"], unknown=["h2"],
                lb="none", ledger_broken="disk full")
    assert o["status"] == "rollback_failed"
    for words in ("stopped, there is no load balancer (lockstep_stop_command succeeded): none",
                  "could NOT be taken out of service: h2", "connection lost during the switch (changed-unknown): h2",
                  "LEDGER BROKEN: disk full"):
        assert words in o["message"], o["message"]
    # A release that completed but lost its ledger still exits non-zero.
    o = outcome(changed=["h1"], ledger_broken="disk full")
    assert (o["status"], o["failed"]) == ("succeeded", True)


def test_each_hosts_result_is_decided_with_the_status_from_the_record():
    states = {h: {"active_version": "1.0.0", "running_version": "1.0.0"} for h in ("h1", "h2", "h3", "h4", "h5")}
    census = census_of("h4")
    census["lockstep_gate"]["hosts"] = {h: {"reported_version": "1.0.0"} for h in ("h1", "h2", "h3", "h4")}
    o = outcome(halt=HALT, changed=["h1", "h2", "h3"], census=census, states=states, killed_hosts=["h3", "h4"],
                rollback_bad=["h3"], hosts=["h1", "h2", "h3", "h4", "h5"], left_out=["h5"],
                switches={h: {"switched": True} for h in ("h1", "h2", "h3")},
                switches_back={h: {"switched": True} for h in ("h1", "h2")})
    assert o["status"] == "rollback_failed" and o["found_dead"] == ["h4"]
    assert {h: (r["phase"], r["result"]) for h, r in o["hosts"].items()} == {
        "h1": ("rollback", "rolled_back"), "h2": ("rollback", "rolled_back"), "h3": ("rollback", "drained"),
        "h4": ("census", "found_dead_drained"), "h5": ("preflight", "excluded")}
    assert o["hosts"]["h1"] == {"before": "1.0.0", "after": "1.0.0", "phase": "rollback", "result": "rolled_back"}
    released = outcome(changed=["h1"], states=states, hosts=["h1", "h2"], switches={"h1": {"switched": True}})
    assert {h: r["result"] for h, r in released["hosts"].items()} == {"h1": "released", "h2": "unchanged"}


def test_the_hosts_changed_are_the_rollbacks_plan_when_halted_and_the_switches_otherwise():
    switches = {"h1": {"switched": True}, "h2": {"skipped": True}, "h3": {"failed": True, "lockstep_unreachable": True}}
    args = {"version": "2.1.0", "census": PASSED, "hosts": ["h1", "h2", "h3"], "lb": "haproxy"}
    clean = flatten(dict(args, record={"before": "1.0.0", "switches": switches, "changed": ["h9"]}))
    assert clean["changed"] == ["h1", "h3"] and clean["halt"] is None and clean["before"] == "1.0.0"
    halted = flatten(dict(args, record={"before": "", "switches": switches, "changed": ["h1"], "halt": HALT}))
    assert halted["changed"] == ["h1"] and halted["before"] is None
    assert decide(halted)["status"] == "rolled_back"
    # A record without a field counts it empty: nothing changed, not halted.
    assert decide(flatten(dict(args, record={})))["status"] == "succeeded"


def test_the_ledger_artifact_names_the_run_s_ledger_and_where_a_broken_one_went():
    assert ledger_artifact({"ledger_file": "", "ledger_broken": ""}, "succeeded") is None  # no ledger callback
    assert ledger_artifact({"ledger_file": "/l/a.jsonl", "ledger_broken": ""}, "succeeded") == {
        "path": "/l/a.jsonl", "status": "succeeded", "broken": None}
    broken = "disk full; records continue in /tmp/lockstep-ledger-fallback-7.jsonl"
    assert ledger_artifact({"ledger_file": "/l/a.jsonl", "ledger_broken": broken}, "rolled_back") == {
        "path": "/l/a.jsonl", "status": "rolled_back", "broken": broken}
