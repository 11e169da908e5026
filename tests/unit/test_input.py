"""lockstep.release.input: a role's argument spec over every host's own values, each error said once."""

from __future__ import annotations

from ansible_collections.lockstep.release.plugins.action.input import check

SPEC = {"lockstep_keep_releases": {"type": "int", "default": 3},
        "lockstep_lb": {"type": "str", "choices": ["haproxy", "none"], "default": "haproxy"}}


def test_valid_values_on_every_host_give_no_error():
    assert check(SPEC, {"lockstep_keep_releases": 3}, {"h1": {}, "h2": {"lockstep_keep_releases": "2"}}) == []


def test_an_error_of_some_hosts_names_them_and_one_of_every_host_is_said_once():
    errors = check(SPEC, {"lockstep_lb": "nginx"}, {"h1": {}, "h2": {"lockstep_keep_releases": "x"}, "h3": {}})
    assert len(errors) == 2, errors
    keep, lb = sorted(errors)  # "argument 'lockstep_keep_releases' ...", "value of lockstep_lb ..."
    assert "lockstep_lb" in lb and "nginx" in lb and "(h" not in lb, errors
    assert "lockstep_keep_releases" in keep and keep.endswith("(h2)"), errors


def test_a_host_value_wins_over_what_the_task_sees():
    assert check(SPEC, {"lockstep_lb": "nginx"}, {"h1": {"lockstep_lb": "none"}}) == []
