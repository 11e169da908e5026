"""Pure renderers and parsers of the local fleet (lockstep_fleet.render)."""


import pytest
import yaml

from lockstep_fleet import render


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
