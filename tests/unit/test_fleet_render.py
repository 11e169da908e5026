"""Pure renderers and parsers of the local fleet (lockstep_fleet.render)."""

import json
import os
import subprocess

import pytest
import yaml

from lockstep_fleet import cli, render
from lockstep_fleet.core import Fleet


def test_host_names_and_addresses():
    assert render.host_names(3) == ["h1", "h2", "h3"]
    assert len(render.host_names(128)) == 128
    for bad in (0, 129, -1):
        with pytest.raises(ValueError):
            render.host_names(bad)
    assert render.host_ip("h1") == "127.0.0.11"
    assert render.host_ip("h32") == "127.0.0.42"
    assert render.service_url("h7") == "http://127.0.0.17:8080"
    assert render.host_ip("h128") == "127.0.0.138"
    for bad in ("h0", "h129", "x1"):
        with pytest.raises(ValueError):
            render.host_ip(bad)


def test_host_json_matches_contract():
    assert render.host_json("h1") == {"bind": "127.0.0.11", "port": 8080, "exchange_url": "http://127.0.0.1:9100",
                                      "host": "h1"}


def test_inventory_is_the_contracted_structure():
    doc = yaml.safe_load(render.inventory_yaml(["h1", "h2"], "/r/.fleet/ssh/id_ed25519", "/r/.fleet/ssh/known_hosts",
                                               "/r/.fleet/haproxy/admin.sock"))
    assert set(doc) == {"all"}
    assert doc["all"]["vars"] == {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": "/r/.fleet/ssh/id_ed25519",
        "ansible_ssh_common_args": "-o UserKnownHostsFile=/r/.fleet/ssh/known_hosts -o StrictHostKeyChecking=yes",
        "ansible_python_interpreter": "/usr/bin/python3",
        "lockstep_haproxy_socket": "/r/.fleet/haproxy/admin.sock",
        "lockstep_haproxy_backend": "order_router",
        "lockstep_lb_url": "http://127.0.0.1:8000",
        "lockstep_exchange_url": "http://127.0.0.1:9100",
    }
    assert doc["all"]["children"] == {
        "app": {"hosts": {
            "h1": {"ansible_host": "127.0.0.11", "lockstep_service_url": "http://127.0.0.11:8080"},
            "h2": {"ansible_host": "127.0.0.12", "lockstep_service_url": "http://127.0.0.12:8080"},
        }},
        "lb": {"hosts": {"lb": {"ansible_connection": "local"}}},
    }


def test_inventory_quotes_awkward_paths():
    doc = yaml.safe_load(render.inventory_yaml(["h1"], "/a b/#k: x", "/kh", "/s"))
    assert doc["all"]["vars"]["ansible_ssh_private_key_file"] == "/a b/#k: x"


def test_sshd_config():
    lines = render.sshd_config("h3", "/f/hosts/h3/ssh_host_ed25519_key").splitlines()
    for want in ("ListenAddress 127.0.0.13:22", "HostKey /f/hosts/h3/ssh_host_ed25519_key", "UsePAM no",
                 "PermitRootLogin prohibit-password", "PasswordAuthentication no", "PubkeyAuthentication yes",
                 "KbdInteractiveAuthentication no", "PidFile /run/sshd.pid"):
        assert want in lines
    assert not any("StrictHostKeyChecking" in line for line in lines)


def test_known_hosts_keyed_by_ip():
    text = render.known_hosts({"h1": "ssh-ed25519 AAAA1 lockstep-fleet-h1\n", "h2": "ssh-ed25519 AAAA2 c"})
    assert text == "127.0.0.11 ssh-ed25519 AAAA1\n127.0.0.12 ssh-ed25519 AAAA2\n"


def test_haproxy_cfg():
    cfg = render.haproxy_cfg(["h1", "h2"], "/f/haproxy/admin.sock", "/f/haproxy/haproxy.pid")
    lines = [line.strip() for line in cfg.splitlines()]
    for want in ("stats socket /f/haproxy/admin.sock mode 600 level admin", "pidfile /f/haproxy/haproxy.pid",
                 "daemon", "bind 127.0.0.1:8000", "backend order_router", "option httpchk GET /health",
                 "retries 3", "option redispatch", "retry-on all-retryable-errors",
                 "server h1 127.0.0.11:8080 check", "server h2 127.0.0.12:8080 check"):
        assert want in lines, want
    assert [line for line in lines if line.startswith("server ")] == [
        "server h1 127.0.0.11:8080 check", "server h2 127.0.0.12:8080 check"]
    assert any(line.startswith("default-server inter 500ms") for line in lines)


PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0B00007F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0100007F:1F40 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
   3: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0 100 0 0 10 0
"""


def test_listening_parses_proc_net_tcp():
    assert render.listening(PROC_NET_TCP) == {("127.0.0.11", 22), ("127.0.0.1", 8000), ("0.0.0.0", 2024)}
    assert render.listening("header only\n") == set()


def test_percentile_nearest_rank():
    assert render.percentile([], 0.5) is None
    assert render.percentile([5.0], 0.99) == 5.0
    values = list(range(1, 101))
    assert render.percentile(values, 0.5) == 50
    assert render.percentile(values, 0.99) == 99
    assert render.percentile(list(reversed(values)), 1.0) == 100


def test_parse_metrics():
    text = ("# HELP x y\n# TYPE order_router_orders_received_total counter\n"
            "order_router_orders_received_total 25.0\n"
            'order_router_build_info{version="1.0.0"} 1\n')
    assert render.parse_metrics(text) == {"order_router_orders_received_total": 25.0,
                                          'order_router_build_info{version="1.0.0"}': 1.0}


# The health check is the fleet's, not the sample's: bin/fleet up --health-path PATH ('' = a TCP connect).

def _backend(cfg):
    lines = [line.strip() for line in cfg.splitlines()]
    return lines[lines.index(f"backend {render.BACKEND}"):]


@pytest.mark.parametrize("path, want", [
    ("/health", ["option httpchk GET /health", "http-check expect status 200"]),
    ("/about", ["option httpchk GET /about", "http-check expect status 200"]),
    ("/api/v1/status?probe=haproxy&x=%2F", ["option httpchk GET /api/v1/status?probe=haproxy&x=%2F",
                                            "http-check expect status 200"]),
    ("", []),  # no health endpoint: HAProxy's "check" without httpchk is a TCP connect
])
def test_haproxy_health_check_path(path, want):
    backend = _backend(render.haproxy_cfg(["h1", "h2"], "/s", "/p", health_path=path))
    assert [line for line in backend if line.startswith(("option httpchk", "http-check"))] == want
    assert [line for line in backend if line.startswith("server ")] == [
        "server h1 127.0.0.11:8080 check", "server h2 127.0.0.12:8080 check"]
    assert not any("/health" in line for line in backend if path != "/health")


def test_haproxy_health_check_default_is_get_health():
    assert render.haproxy_cfg(["h1"], "/s", "/p") == render.haproxy_cfg(["h1"], "/s", "/p", health_path="/health")


@pytest.mark.parametrize("path", ["health", "/a b", "/a#b", "/x\n    server evil 10.0.0.1:80", '/"x', "/x'",
                                  "/a\\b", "/\t", None])
def test_haproxy_health_path_it_cannot_carry_is_refused(path):
    with pytest.raises(ValueError, match="health path"):
        render.haproxy_cfg(["h1"], "/s", "/p", health_path=path)


@pytest.mark.parametrize("path", ["/health", "/about?probe=1&x=%2F", ""])
def test_haproxy_accepts_the_rendered_configuration(tmp_path, path):
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(render.haproxy_cfg(["h1", "h2"], str(tmp_path / "admin.sock"), str(tmp_path / "haproxy.pid"),
                                      health_path=path))
    res = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr


def _state(tmp_path, **haproxy):
    fleet = Fleet(str(tmp_path))
    os.makedirs(fleet.dir)
    with open(fleet.state_file, "w") as f:
        json.dump({"hosts": {"h1": {}, "h2": {}}, "haproxy": dict(haproxy, socket=fleet.haproxy_socket)}, f)
    return fleet


def test_the_fleet_state_keeps_the_health_check(tmp_path):
    # Every later HAProxy start renders from the state up wrote, so the fleet keeps the check it was made with.
    assert "option httpchk GET /about" in _state(tmp_path / "a", checks=True, health_path="/about").haproxy_config()
    tcp = _state(tmp_path / "b", checks=True, health_path="").haproxy_config()
    assert "httpchk" not in tcp and "server h1 127.0.0.11:8080 check" in tcp
    assert "server h1 127.0.0.11:8080\n" in _state(tmp_path / "c", checks=False, health_path="/x").haproxy_config()
    # A state written before the setting existed: GET /health, as then.
    old = _state(tmp_path / "d")
    assert old.health_path() == "/health" and "option httpchk GET /health" in old.haproxy_config()


class _Recorder:
    calls = []

    def __init__(self, *args, **kwargs):
        self.inventory = "inventory/local/hosts.yml"

    def up(self, **kwargs):
        _Recorder.calls.append(kwargs)
        return {"hosts": {}, "up_seconds": 0.0}


def test_fleet_up_health_path_option(monkeypatch, capsys):
    # Fleet replaced by a recorder: nothing is brought up, only what bin/fleet up would ask of it is seen.
    monkeypatch.setattr(cli, "Fleet", _Recorder)
    _Recorder.calls = []
    assert cli.main(["up", "--hosts", "2"], repo_root="/nonexistent") == 0
    assert cli.main(["up", "--hosts", "2", "--health-path", "/about"], repo_root="/nonexistent") == 0
    assert cli.main(["up", "--hosts", "2", "--health-path", ""], repo_root="/nonexistent") == 0
    assert [c["health_path"] for c in _Recorder.calls] == ["/health", "/about", ""]
    for bad in ("about", "/a b"):
        with pytest.raises(SystemExit) as exc:
            cli.main(["up", "--health-path", bad], repo_root="/nonexistent")
        assert exc.value.code == 2
    assert len(_Recorder.calls) == 3  # refused before the fleet is touched
    assert "health path 'about'" in capsys.readouterr().err
