"""HAProxy's runtime API as lockstep speaks it, against a real HAProxy on a Unix socket in a temporary directory
(no TCP port is bound: its frontend listens on a Unix socket too)."""

import shutil
import subprocess
import time

import pytest

from ansible_collections.lockstep.release.plugins.module_utils.haproxy_api import (
    HAProxyError,
    check_name,
    servers,
    serving,
    set_states,
)


@pytest.fixture
def haproxy(tmp_path):
    if shutil.which("haproxy") is None:
        pytest.fail("haproxy is not installed (make setup installs it)")
    sock = tmp_path / "admin.sock"
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(f"""global
    stats socket {sock} mode 600 level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend f
    bind unix@{tmp_path}/front.sock
    default_backend b
backend b
    server h1 127.0.0.11:8080
    server h2 127.0.0.12:8080
    server h3 127.0.0.13:8080
""")
    proc = subprocess.Popen(["haproxy", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while not sock.exists():
        assert time.monotonic() < deadline, "haproxy did not start"
        time.sleep(0.05)
    yield str(sock)
    proc.terminate()
    proc.wait(timeout=5)


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
