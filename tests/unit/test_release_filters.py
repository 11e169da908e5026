"""lockstep's filters on plain data: each host's registered result, in the order of the hosts asked about (as
``hosts | map('extract', hostvars, name) | map('default', none)`` gives them), and host -> release state maps."""

import pytest

from ansible_collections.lockstep.release.plugins.filter.lockstep import (
    FilterModule,
    expect_versions,
    host_failures,
    host_results,
    host_urls,
    host_values,
    judgement,
    pending_hosts,
    previous_release,
    prune_hosts,
    switch_outcomes,
    switched_hosts,
)

HOSTS = ["h1", "h2", "h3", "h4"]


def test_all_filters_are_registered():
    assert set(FilterModule().filters()) >= {"host_results", "host_failures", "expect_versions", "switched_hosts",
                                             "pending_hosts", "previous_release", "host_urls", "judgement",
                                             "host_values", "prune_hosts"}


@pytest.fixture
def results():
    return [
        {"changed": False, "lockstep_state": {"active_version": "2.0.0"}},  # h1
        {"failed": True, "msg": "host unreachable: ssh timeout"},  # h2
        {"skipped": True},  # h3
        None,  # h4 never registered it
    ]


def test_host_results_keeps_only_hosts_that_succeeded(results):
    assert host_results(HOSTS, results) == {"h1": results[0]}
    assert host_results(HOSTS, results, "lockstep_state") == {"h1": {"active_version": "2.0.0"}}


def test_host_results_tolerates_fewer_results_than_hosts(results):
    assert host_results(["h1", "ghost"], results[:1], "lockstep_state") == {"h1": {"active_version": "2.0.0"}}


def test_host_results_ignores_non_dict_values():
    assert host_results(["h1", "h2"], ["a string", None]) == {}


def test_host_failures_maps_failed_hosts_to_their_message(results):
    assert host_failures(HOSTS, results) == {"h2": "host unreachable: ssh timeout"}
    assert host_failures(["h1"], [{"failed": True}]) == {"h1": "failed"}
    assert host_failures(["ghost"], []) == {}


def test_switched_hosts_includes_failed_calls_that_moved_current():
    switches = {
        "h1": {"switched": True, "changed": True},
        "h2": {"switched": True, "failed": True, "msg": "health check failed"},
        "h3": {"switched": False, "failed": True},
        "h4": {"skipped": True},
    }
    assert switched_hosts(switches, HOSTS) == ["h1", "h2"]
    # A run that never switched a host has no record yet.
    assert switched_hosts(None, HOSTS) == []


def _state(active, consistent=True, releases=()):
    return {"active_version": active, "consistent": consistent,
            "releases": [{"version": v, "valid": ok} for v, ok in releases]}


def test_pending_hosts_are_those_not_already_running_the_version_consistently():
    states = {"h1": _state("2.1.0"), "h2": _state("2.1.0", consistent=False), "h3": _state("2.0.0")}  # h4: none
    assert pending_hosts(states, HOSTS, "2.1.0") == ["h2", "h3", "h4"]
    assert pending_hosts(states, HOSTS, "2.0.0") == ["h1", "h2", "h4"]


def test_expect_versions():
    assert expect_versions(HOSTS, ["h1", "h3"], "2.1.0", "2.0.0") == {
        "h1": "2.1.0", "h2": "2.0.0", "h3": "2.1.0", "h4": "2.0.0"}
    assert expect_versions(["h1"], None, "2.1.0", None) == {"h1": None}


def _rb(active, *releases):
    return _state(active, releases=releases)


def test_previous_release_is_the_newest_older_release_every_host_keeps_valid():
    hv = {
        "h1": _rb("1.10.0", ("1.8.0", True), ("1.9.0", True), ("1.10.0", True), ("1.11.0", True)),
        "h2": _rb("1.10.0", ("1.8.0", True), ("1.9.0", True), ("1.10.0", True)),
    }
    # 1.9.0 sorts before 1.10.0 numerically; 1.11.0 is newer than the active release.
    assert previous_release(hv, ["h1", "h2"]) == "1.9.0"


def test_previous_release_skips_a_release_one_host_holds_with_bad_content():
    hv = {
        "h1": _rb("2.1.0", ("1.0.0", True), ("2.0.0", True), ("2.1.0", True)),
        "h2": _rb("2.1.0", ("1.0.0", True), ("2.0.0", False), ("2.1.0", True)),
    }
    assert previous_release(hv, ["h1", "h2"]) == "1.0.0"


def test_previous_release_follows_the_fleet_majority_active_version():
    hv = {
        "h1": _rb("2.1.0", ("2.0.0", True), ("2.1.0", True)),
        "h2": _rb("2.1.0", ("2.0.0", True), ("2.1.0", True)),
        "h3": _rb("2.0.0", ("2.0.0", True), ("2.1.0", True)),
    }
    assert previous_release(hv, ["h1", "h2", "h3"]) == "2.0.0"


@pytest.mark.parametrize("hv, hosts", [
    ({}, []),  # no hosts
    ({"h1": _rb("2.1.0", ("2.0.0", True))}, ["h1", "h2"]),  # a host did not report
    ({"h1": _rb(None, ("2.0.0", True))}, ["h1"]),  # nothing active
    ({"h1": _rb("1.0.0", ("1.0.0", True))}, ["h1"]),  # nothing older
    ({"h1": _rb("2.1.0", ("2.0.0", True)), "h2": _rb("2.1.0", ("1.0.0", True))}, ["h1", "h2"]),  # nothing common
])
def test_previous_release_is_none_when_there_is_nothing_safe_to_return_to(hv, hosts):
    assert previous_release(hv, hosts) is None


def test_host_urls():
    hv = {"h1": {"lockstep_service_url": "http://10.0.0.1:8080/"}, "h2": {"lockstep_service_url": "http://h2"}}
    assert host_urls(hv, ["h1", "h2"], "/version") == {"h1": "http://10.0.0.1:8080/version",
                                                       "h2": "http://h2/version"}


def test_host_values_are_each_hosts_own_else_the_default_and_a_key_only_where_the_value_has_it():
    hv = {"h1": {"lockstep_hooks": {"after_wave": "a.yml"}}, "h2": {}, "h3": {"lockstep_hooks": {"after_wave": None}}}
    assert host_values(hv, ["h1", "h2"], "lockstep_hooks", {}) == {"h1": {"after_wave": "a.yml"}, "h2": {}}
    # A hook set to null is set (the per-host condition says "is defined"); a host without the key is left out.
    assert host_values(hv, ["h1", "h2", "h3"], "lockstep_hooks", {}, "after_wave") == {"h1": "a.yml", "h3": None}
    assert host_values(hv, ["h2"], "lockstep_hooks", {"after_wave": "play.yml"}, "after_wave") == {"h2": "play.yml"}
    assert host_values(hv, ["h2"], "lockstep_keep_releases", 3) == {"h2": 3}


def _registered_state(*versions):
    return {"lockstep_state": {"releases": [{"version": v} for v in versions]}}


def test_prune_hosts_are_those_with_more_releases_than_they_keep_counting_the_new_one():
    states = [_registered_state("1.0.0", "2.0.0"), _registered_state("1.0.0", "2.0.0", "2.1.0"),
              _registered_state("0.9.0", "1.0.0", "2.0.0"), None]
    keeps = {"h1": 3, "h2": 3, "h3": 3, "h4": 1}
    # h1: 2 + the new one = 3 kept; h2 already holds the new one (3); h3: 3 + 1 > 3; h4 read nothing: 0 + 1 = 1.
    assert prune_hosts(HOSTS, states, keeps, "2.1.0") == ["h3"]
    assert prune_hosts(HOSTS, states, dict(keeps, h1="2", h4=0), "2.1.0") == ["h1", "h3", "h4"]
    assert prune_hosts([], [], {}, "2.1.0") == []


def test_switch_outcomes_keep_what_the_release_reads_and_a_host_not_switched_is_skipped():
    full = {"switched": True, "changed": True, "previous_version": "1.0.0", "msg": "active",
            "lockstep_state": {"releases": ["1.0.0", "2.1.0"]}, "state_snapshot": {"x": 1},
            "invocation": {"module_args": {"version": "2.1.0"}}}
    lost = {"failed": True, "msg": "connection lost", "lockstep_unreachable": True}
    out = switch_outcomes(["h1", "h2", "h3"], [full, lost, None])
    assert out == {"h1": {"switched": True, "changed": True, "previous_version": "1.0.0", "msg": "active"},
                   "h2": {"failed": True, "msg": "connection lost", "lockstep_unreachable": True},
                   "h3": {"skipped": True}}
    # what the rollback's plan and the outcome read of them is unchanged
    assert switched_hosts(out, ["h1", "h2", "h3"]) == ["h1", "h2"]


def test_the_judgement_names_the_gate_its_first_halted_host_and_why_else_the_host_that_met_the_failure():
    gate = {"lockstep_gate": {"gate": "wave-2", "passed": False,
                              "halted": [{"host": "h3", "message": "h3 runs 1.0.0"}, {"host": "h4"}]}}
    assert judgement(gate, "rollout", "switch", "h2") == {
        "phase": "rollout", "gate": "wave-2", "host": "h3", "message": "h3 runs 1.0.0 (and 1 more: h4)"}
    # A host's own failed task: a deploy check names the gate, else the one the caller gives; the host is its own.
    assert judgement({"failed": True, "msg": "health 503", "lockstep_check": "health"}, "rollout", "switch", "h1") == {
        "phase": "rollout", "gate": "health", "host": "h1", "message": "health 503"}
    assert judgement({}, "verify", "verify", "h1") == {
        "phase": "verify", "gate": "verify", "host": "h1", "message": "failed"}
