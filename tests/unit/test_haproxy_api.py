"""HAProxy's runtime API as lockstep speaks it, against a real HAProxy on a Unix socket in a temporary directory
(no TCP port is bound: its frontend listens on a Unix socket too)."""


import pytest

from ansible_collections.lockstep.release.plugins.module_utils.haproxy_api import (
    HAProxyError,
    check_name,
    servers,
    serving,
    set_states,
)


def test_servers_without_health_checks_serve(haproxy):
    found = servers(haproxy, "b")
    assert {n: (s["status"], s["serving"]) for n, s in found.items()} == {
        "h1": ("no check", True), "h2": ("no check", True), "h3": ("no check", True)}


def test_several_servers_change_state_in_one_exchange(haproxy):
    set_states(haproxy, "b", ["h1", "h3"], "drain")
    found = servers(haproxy, "b")
    assert {n: s["status"] for n, s in found.items()} == {"h1": "DRAIN", "h2": "no check", "h3": "DRAIN"}
    assert [n for n, s in found.items() if s["serving"]] == ["h2"]
    set_states(haproxy, "b", ["h1", "h3"], "ready")
    assert all(s["serving"] for s in servers(haproxy, "b").values())


@pytest.mark.parametrize("name", ["h1; disable frontend f", "h1\nshutdown sessions server b/h2", "", "../h1", "h 1"])
def test_names_are_validated_before_they_reach_the_runtime_api(haproxy, name):
    with pytest.raises(HAProxyError, match="refusing to send"):
        set_states(haproxy, "b", [name], "maint")
    # Nothing was sent: every server still serves.
    assert all(s["serving"] for s in servers(haproxy, "b").values())


def test_serving_statuses():
    assert serving("UP") and serving("UP 2/3") and serving("no check")
    assert not any(serving(s) for s in ("DRAIN", "MAINT", "DOWN", "NOLB", "UP (DRAIN)", "MAINT (via b/h1)"))
    assert check_name("order_router") == "order_router"
