"""lockstep.release.gate (run by a real ansible-playbook on localhost) and the result shape every gate shares."""

import pytest

from ansible_collections.lockstep.release.plugins.plugin_utils.gates import gate_result


def on(version, running=None, from_active=True, valid=True, pid=100):
    """A host's ``lockstep_state`` (the keys the gate reads): ``version`` on disk, ``running`` in the process."""
    return {"active_version": version, "active_valid": valid,
            "active_problem": None if valid else "content sha256 0123 does not match the manifest's 4567",
            "running": {"version": version if running is None else running, "from_active": from_active, "pid": pid,
                        "cwd": "/srv/order-router/releases/%s" % (version if running is None else running)}}


def gate(expect, states=None, **extra):
    args = {"gate": "wave", "expect": expect}
    if states is not None:
        args["states"] = states
    args.update(extra)
    return {"lockstep.release.gate": args}


def test_gate_result_passes_with_nothing_halted():
    res = gate_result("verify", {"h1": {}, "h2": {}}, [], wave={"index": 1})
    assert res["failed"] is False and res["changed"] is False
    assert res["msg"] == "gate verify passed on 2 host(s)"
    assert res["lockstep_gate"] == {"gate": "verify", "passed": True, "hosts": {"h1": {}, "h2": {}}, "halted": [],
                                    "message": res["msg"], "wave": {"index": 1}}


def test_gate_result_with_halt_false_does_not_fail_but_does_not_pass():
    res = gate_result("verify", {}, [("h2", "boom")], halt=False)
    assert res["failed"] is False
    assert res["lockstep_gate"]["passed"] is False
    assert res["lockstep_gate"]["halted"] == [{"host": "h2", "message": "boom"}]


def test_gate_result_names_the_first_halt_and_counts_the_others():
    res = gate_result("smoke", {}, [("h2", "boom"), ("h5", "bang"), ("h7", "crash")], extra_msg="watch skipped")
    assert res["failed"] is True
    assert res["msg"] == "gate smoke halted the release on h2: boom (and 2 more: h5, h7); watch skipped"
    assert res["lockstep_gate"]["halted"] == [{"host": "h2", "message": "boom"}, {"host": "h5", "message": "bang"},
                                              {"host": "h7", "message": "crash"}]
    assert res["lockstep_gate"]["passed"] is False


def test_fleet_on_the_expected_versions_passes(run_play):
    wave = {"index": 1, "count": 3, "hosts": ["h1"], "done": ["h1"], "total": 3, "version": "2.1.0"}
    run_play((gate({"h1": "2.1.0", "h2": "2.0.0", "h3": "2.0.0"},
                   {"h1": on("2.1.0"), "h2": on("2.0.0"), "h3": on("2.0.0")}, wave=wave), [
        "out is not failed",
        "out.lockstep_gate.passed",
        "out.lockstep_gate.gate == 'wave'",
        "out.lockstep_gate.hosts.h1.ok and out.lockstep_gate.hosts.h1.expected == '2.1.0'",
        "out.lockstep_wave == out.lockstep_gate.wave",
        "out.lockstep_wave.done == ['h1']",
    ]))


def test_every_kind_of_mismatch_halts(run_play):
    states = {
        "h1": on("2.1.0"),
        "h2": on("2.0.0"),                                   # not switched
        "h3": on("2.1.0", running="2.0.0", from_active=False, pid=333),  # switched, old process still serving
        "h4": on("2.1.0", valid=False),                      # switched to a release whose content is wrong
    }
    run_play((gate({h: "2.1.0" for h in ["h1", "h2", "h3", "h4", "h5"]}, states, wave={"index": 2}), [
        "out is failed",
        "out.lockstep_gate.halted | map(attribute='host') | list == ['h2', 'h3', 'h4', 'h5']",
        "out.lockstep_gate.halted[0].message == '2.0.0 on disk; process 100 runs 2.0.0 from "
        "/srv/order-router/releases/2.0.0 (expected 2.1.0)'",
        "out.lockstep_gate.halted[1].message == 'process 333 runs 2.0.0 from /srv/order-router/releases/2.0.0 "
        "(expected 2.1.0)'",
        "out.lockstep_gate.halted[2].message.startswith('release content does not match its manifest')",
        "out.lockstep_gate.halted[3].message == 'did not report its state (expected 2.1.0)'",
        "out.lockstep_gate.hosts.h1.ok",
        "'lockstep_wave' not in out",
        "out.msg.startswith('gate wave halted the release on h2: ')",
    ]))


def test_expecting_no_release_on_a_bare_host(run_play):
    bare = {"active_version": None, "active_valid": False, "running": {"reachable": False}}
    run_play(
        (gate({"h1": None}, {"h1": bare}), ["out is not failed"]),
        (gate({"h1": None}, {"h1": on("2.1.0")}), [
            "out is failed",
            "out.lockstep_gate.halted[0].message == '2.1.0 on disk (expected no release)'",
        ]),
    )


def test_a_halted_first_releases_host_is_proven_stopped_whatever_stays_on_disk(run_play, version_endpoints):
    # Nothing to go back to: the release stays on disk (nothing is deleted), and the host passes only when nothing
    # answers on it, neither its process nor its version URL.
    stopped = dict(on("2.1.0"), running={"reachable": False, "pid": 100, "error": "connection refused"})
    run_play(
        (gate({"h1": None, "h2": "1.0.0"}, {"h1": stopped, "h2": on("1.0.0")}, stopped=["h1"]), [
            "out is not failed",
            "out.lockstep_gate.hosts.h1.ok and out.lockstep_gate.hosts.h1.expected == 'stopped'",
        ]),
        (gate({"h1": None}, {"h1": on("2.1.0")}, stopped=["h1"]), [
            "out is failed",
            "out.lockstep_gate.halted[0].message == 'process 100 still answers, reporting 2.1.0 "
            "(expected stopped: nothing to go back to)'",
        ]),
        (gate({"h1": None}, {"h1": stopped}, stopped=["h1"], version_urls={"h1": version_endpoints["h1"]}), [
            "out is failed",
            "out.lockstep_gate.halted[0].message == 'still answers, reporting 2.1.0 (expected stopped: nothing to go "
            "back to)'",
        ]),
    )


def test_gate_with_halt_false_reports_without_failing(run_play):
    run_play((gate({"h1": "2.1.0", "h2": "2.1.0"}, {"h1": on("2.1.0"), "h2": on("2.0.0")}, halt=False), [
        "out is not failed",
        "not out.lockstep_gate.passed",
        "out.lockstep_gate.hosts.h2.version == '2.0.0'",
        "out.lockstep_gate.halted[0].host == 'h2'",
        "out.msg.startswith('gate wave halted the release on h2: ')",
    ]))


@pytest.fixture
def version_endpoints(http_service):
    """Three hosts' version URLs: h1 answers 2.1.0, h2 still answers 2.0.0, h3 answers HTTP 500."""
    svc = http_service({
        "/h1/version": (200, {"version": "2.1.0", "directory": "/srv/order-router/releases/2.1.0"}),
        "/h2/version": (200, {"version": "2.0.0", "directory": "/srv/order-router/releases/2.0.0"}),
        "/h3/version": (500, {"error": "internal"}),
    })
    return {h: "%s/%s/version" % (svc.url, h) for h in ("h1", "h2", "h3")}


def test_gate_also_asks_each_service_directly(run_play, version_endpoints):
    urls = version_endpoints
    run_play(
        (gate({"h1": "2.1.0"}, version_urls={"h1": urls["h1"]}), [
            "out is not failed",
            "out.lockstep_gate.hosts.h1.reported_version == '2.1.0'",
        ]),
        (gate({h: "2.1.0" for h in urls}, version_urls=urls), [
            "out is failed",
            "out.lockstep_gate.halted | map(attribute='host') | list == ['h2', 'h3']",
            "out.lockstep_gate.halted[0].message == 'reports 2.0.0 (expected 2.1.0)'",
            "out.lockstep_gate.halted[1].message == 'reports HTTP 500 (expected 2.1.0)'",
        ]),
        # The state says 2.1.0 runs, the service itself says otherwise: the service wins.
        (gate({"h2": "2.1.0"}, {"h2": on("2.1.0")}, version_urls={"h2": urls["h2"]}), [
            "out is failed",
            "out.lockstep_gate.halted[0].message == 'reports 2.0.0 (expected 2.1.0)'",
        ]),
    )


def test_state_hosts_limits_who_must_report_a_state(run_play, version_endpoints):
    urls = version_endpoints
    # h1 is judged by its state, h2 only by what its service says (no state expected from it).
    run_play(
        (gate({"h1": "2.1.0", "h2": "2.0.0"}, {"h1": on("2.1.0")}, version_urls={"h2": urls["h2"]},
              state_hosts=["h1"]), [
            "out is not failed",
            "out.lockstep_gate.hosts.h2.reported_version == '2.0.0'",
        ]),
        (gate({"h1": "2.1.0", "h2": "2.0.0"}, {"h1": on("2.1.0")}, version_urls={"h2": urls["h2"]}), [
            "out is failed",
            "out.lockstep_gate.halted[0].message == 'did not report its state (expected 2.0.0)'",
        ]),
    )
