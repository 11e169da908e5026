"""The safety net's decisions on plain data, fast: which hosts lockstep may drain, which count as changed, what a
load balancer step proved, where a rollback wave is, and the gates' halt on a broken ledger. The same safeguards
are proven on the real fleet in tests/integration/test_safety_net.py; these pin them in every CI run."""

from test_release_preflight import preflight

from ansible_collections.lockstep.release.plugins.filter.lockstep import (
    lb_confirmed,
    lb_managed,
    lb_track,
    service_addresses,
    switched_hosts,
    unknown_hosts,
    wave_index,
)
from ansible_collections.lockstep.release.plugins.plugin_utils.gates import gate_result

FOUND = {"h1": {"status": "UP"}, "h2": {"status": "MAINT"}, "h3": {"status": "DRAIN"}, "h4": {"status": "no check"},
         "h5": {"status": "DOWN"}}


def test_an_operator_s_maint_or_drain_is_never_lockstep_s_to_touch():
    assert lb_managed(["h1", "h2", "h3", "h4", "h5", "h9"], FOUND) == ["h1", "h4", "h5"]


def test_lockstep_s_own_drains_are_its_to_put_back():
    assert lb_managed(["h2", "h3"], FOUND, ours=["h3"]) == ["h3"]


def test_a_connection_lost_mid_switch_counts_as_changed_but_one_never_made_does_not():
    switches = {"h1": {"switched": True}, "h2": {"failed": True, "lockstep_unreachable": True},
                "h3": {"failed": True, "lockstep_unreachable": True, "lockstep_never_connected": True},
                "h4": {"changed": False}}
    assert switched_hosts(switches, ["h1", "h2", "h3", "h4"]) == ["h1", "h2"]
    assert unknown_hosts(switches, ["h1", "h2", "h3", "h4"]) == ["h2"]


def test_only_what_haproxy_confirmed_is_held_or_claimed():
    after = {"h1": {"status": "DRAIN", "serving": False}, "h2": {"status": "UP", "serving": True}}
    assert lb_track([], ["h1", "h2", "h3"], after) == ["h1"]
    assert lb_track(["h1", "h2"], ["h2"], after) == ["h1"]
    assert lb_track(["h1"], ["h1"], {}) == ["h1"]  # the load balancer did not answer: nothing proven either way
    assert lb_confirmed(["h1", "h2"], {"h1": {"status": "MAINT"}, "h2": {"status": "UP"}}) == ["h1"]
    assert lb_confirmed(["h1"], {}) == []


def test_rollback_waves_are_the_rollout_s_own():
    waves = [["h1"], ["h2", "h3"], ["h4"]]
    assert wave_index(waves, ["h2", "h3"]) == 1 and wave_index(waves, ["h9"]) == 3


def test_each_host_s_load_balancer_entry_must_point_at_its_service():
    hv = {"h1": {"lockstep_service_url": "http://127.0.0.11:8080"}, "h2": {"lockstep_service_url": "https://h2.example"}}
    assert service_addresses(hv, ["h1", "h2"]) == {"h1": "127.0.0.11:8080", "h2": "h2.example:443"}


def test_preflight_refuses_a_backend_entry_pointing_elsewhere(run_play):
    servers = {h: {"serving": True, "addr": "127.0.0.%d:8080" % (10 + i)} for i, h in enumerate(["h1", "h2", "h3"], 1)}
    servers["h3"]["addr"] = "127.0.0.99:8080"
    addresses = {h: "127.0.0.%d:8080" % (10 + i) for i, h in enumerate(["h1", "h2", "h3"], 1)}
    run_play((preflight(lb_servers=servers, lb_addresses=addresses), [
        "out is failed",
        "out.lockstep_gate.halted[0].host == 'h3'",
        "out.lockstep_gate.halted[0].message is search('points at 127.0.0.99:8080, not at the host.s service "
        "127.0.0.13:8080')",
    ]))


def test_forward_gates_halt_while_the_ledger_is_broken_and_the_rollback_s_do_not(monkeypatch):
    monkeypatch.setenv("LOCKSTEP_LEDGER_BROKEN", "cannot append to ledger x: disk full")
    for gate in ("preflight", "wave-2", "verify", "smoke", "watch"):
        result = gate_result(gate, {}, [], halt=False)
        assert not result["lockstep_gate"]["passed"], gate
        assert result["lockstep_gate"]["halted"][0]["message"].endswith("disk full (ledger)")
    for gate in ("rollback-wave-1", "rollback-verify", "rollback-smoke", "final"):
        assert gate_result(gate, {}, [], halt=False)["lockstep_gate"]["passed"], gate


def test_the_mix_an_interrupted_run_of_this_release_left_is_continued_and_any_other_is_refused(run_play):
    from test_release_preflight import host_state

    on_target = [{"version": "2.1.0", "valid": True, "content_sha256": "c" * 64, "problem": None}]
    mixed = {"h1": host_state("2.1.0", releases=on_target), "h2": host_state("1.0.0"), "h3": host_state("1.0.0")}
    run_play(
        (preflight(states=mixed, interrupted={"run_id": "dead-run", "version": "2.1.0", "drained": ["h2"]}), [
            "out is not failed",
            "out.befores == {'h1': '1.0.0', 'h2': '1.0.0', 'h3': '1.0.0'}",
            "out.inherited == ['h1']",
            "out.lockstep_gate.message is search('continuing release 2.1.0 of run dead-run')",
        ]),
        (preflight(states=mixed, interrupted={"run_id": "dead-run", "version": "2.2.0", "drained": []}), [
            "out is failed",
            "out.lockstep_gate.message is search('the fleet is already mixed')",
        ]),
    )
