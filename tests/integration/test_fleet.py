"""The local fleet itself: isolation, strict SSH, Ansible reachability, HAProxy drain, sshd faults, clean down."""

import os
import subprocess
import time

from conftest import REPO

from lockstep_fleet import render
from lockstep_fleet.core import listening, pid_alive

ANSIBLE = REPO / ".venv" / "bin" / "ansible"
FLEET_CLI = REPO / "bin" / "fleet"


def reachable(fleet, hosts):
    """``{host: (returncode, output)}`` of ``ssh host hostname``."""
    out = {}
    for host in hosts:
        res = fleet.ssh(host, "hostname", timeout=4)
        out[host] = (res.returncode, (res.stdout + res.stderr).strip())
    return out


def test_hosts_are_isolated(fleet):
    fleet.up(hosts=3)
    assert fleet.exec("h1", "sh", "-c", "echo from-h1 > /srv/marker").returncode == 0
    assert fleet.exec("h1", "cat", "/srv/marker").stdout == "from-h1\n"
    for host in ("h2", "h3"):
        res = fleet.exec(host, "test", "-e", "/srv/marker")
        assert res.returncode == 1, f"/srv/marker written on h1 is visible on {host}"
    assert (REPO / ".fleet" / "hosts" / "h1" / "srv" / "marker").read_text() == "from-h1\n"
    for host in ("h1", "h2", "h3"):
        assert fleet.exec(host, "hostname").stdout.strip() == host
        assert fleet.exec(host, "cat", "/srv/order-router/host.json").stdout.count(f'"{host}"') == 1
        ps = fleet.exec(host, "ps", "-o", "pid=,comm=", "-e").stdout.split()
        # The host's own init is PID 1 and the host sees only its own processes.
        assert ps[0] == "1" and ps[1].startswith("python"), ps
        assert "sshd" in ps
    # bin/fleet exec passes stdin, stdout and the exit code through
    res = subprocess.run([str(FLEET_CLI), "exec", "h2", "--", "sh", "-c", "cat; hostname; exit 7"],
                         input="piped\n", capture_output=True, text=True, timeout=30)
    assert (res.returncode, res.stdout) == (7, "piped\nh2\n"), res.stderr


def test_ssh_strict_host_key_checking(fleet, tmp_path):
    fleet.up(hosts=3)
    for host in ("h1", "h2", "h3"):
        res = fleet.ssh(host, "hostname")
        assert (res.returncode, res.stdout.strip()) == (0, host), res.stderr
    known = (REPO / ".fleet" / "ssh" / "known_hosts").read_text().splitlines()
    assert len(known) == 3 and all("StrictHostKeyChecking" not in line for line in known)
    h2_key = next(line for line in known if line.startswith("127.0.0.12 ")).split(" ", 1)[1]
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"127.0.0.11 {h2_key}\n")  # h2's key claimed for h1's address
    res = fleet.ssh("h1", "hostname", known_hosts=str(wrong))
    assert res.returncode == 255, res.stdout
    assert "Host key verification failed" in res.stderr
    assert "h1" not in res.stdout
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    res = fleet.ssh("h1", "hostname", known_hosts=str(empty))
    assert res.returncode == 255 and "Host key verification failed" in res.stderr


def test_ansible_ping_reaches_every_host(fleet):
    fleet.up(hosts=8)
    env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="True", ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    res = subprocess.run([str(ANSIBLE), "app", "-i", "inventory/local", "-m", "ansible.builtin.ping", "-o"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    ok = {line.split()[0] for line in res.stdout.splitlines() if "SUCCESS" in line and '"pong"' in line}
    assert ok == {f"h{i}" for i in range(1, 9)}, res.stdout


def test_drained_backend_gets_no_traffic(fleet):
    fleet.up(hosts=4, version="1.0.0")
    received = "order_router_orders_received_total"
    hosts = ("h1", "h2", "h3", "h4")

    def counts():
        return {h: fleet.metrics(h)[received] for h in hosts}

    assert fleet.haproxy("set server order_router/h2 state drain").strip() == ""
    state = [line.split() for line in fleet.haproxy("show servers state order_router").splitlines()]
    admin = {f[3]: int(f[6]) for f in state if len(f) > 6 and f[1] == "order_router"}
    assert admin["h2"] & 0x08 and not admin["h1"] & 0x08, admin  # SRV_ADMF_DRAIN on h2 only
    before = counts()
    result = fleet.traffic(rate=40, seconds=2)
    assert (result["sent"], result["succeeded"], result["failed"]) == (80, 80, 0), result
    assert result["versions"] == {"1.0.0": 80}
    after = counts()
    delta = {h: after[h] - before[h] for h in hosts}
    assert delta["h2"] == 0, delta
    assert all(delta[h] > 0 for h in ("h1", "h3", "h4")) and sum(delta.values()) == 80, delta
    assert fleet.exchange("/stats")["parents"] >= 80

    fleet.haproxy("set server order_router/h2 state ready")
    before = counts()
    fleet.traffic(rate=40, seconds=1)
    assert counts()["h2"] > before["h2"], "h2 back in rotation should get traffic again"


def test_sshd_stop_makes_exactly_one_host_unreachable(fleet):
    fleet.up(hosts=4)
    fleet.sshd("h2", "stop")
    time.sleep(1.5)  # longer than the init's restart delay: a stopped sshd must stay stopped
    got = reachable(fleet, ["h1", "h2", "h3", "h4"])
    assert got["h2"][0] == 255 and "Connection refused" in got["h2"][1], got
    assert {h: got[h] for h in ("h1", "h3", "h4")} == {h: (0, h) for h in ("h1", "h3", "h4")}, got
    status = {h["name"]: h["sshd"] for h in fleet.status()["hosts"]}
    assert status == {"h1": "listening", "h2": "stopped", "h3": "listening", "h4": "listening"}
    fleet.sshd("h2", "start")
    assert reachable(fleet, ["h2"]) == {"h2": (0, "h2")}


def test_sshd_freeze_makes_exactly_one_host_hang(fleet):
    fleet.up(hosts=4)
    fleet.sshd("h3", "freeze")
    started = time.monotonic()
    res = fleet.ssh("h3", "hostname", timeout=3)
    assert res.returncode == 255 and time.monotonic() - started >= 1.5, res  # it hung, it was not refused
    assert "refused" not in res.stderr
    got = reachable(fleet, ["h1", "h2", "h4"])
    assert got == {h: (0, h) for h in ("h1", "h2", "h4")}, got
    assert {h["name"]: h["sshd"] for h in fleet.status()["hosts"]}["h3"] == "frozen"
    fleet.sshd("h3", "thaw")
    assert reachable(fleet, ["h3"]) == {"h3": (0, "h3")}


def test_up_replaces_a_running_fleet(fleet):
    fleet.up(hosts=2)
    old = fleet.recorded_pids() + fleet.host_pids("h1")
    fleet.up(hosts=3)
    assert not [p for p in old if pid_alive(p)]
    assert {(render.host_ip(h), 22) for h in ("h1", "h2", "h3")} <= listening()
    assert fleet.hosts == ["h1", "h2", "h3"]


def test_down_leaves_nothing_behind(fleet):
    fleet.up(hosts=4, version="1.0.0")
    pids = set(fleet.recorded_pids())
    for host in fleet.hosts:
        pids |= set(fleet.host_pids(host))  # init, sshd and the service of every host
    assert len(pids) >= 2 + 4 * 4, pids  # haproxy, exchange; per host unshare, init, sshd, router
    ports = {("127.0.0.1", 8000), ("127.0.0.1", 9100)}
    for host in fleet.hosts:
        ports |= {(render.host_ip(host), 22), (render.host_ip(host), 8080)}
    assert ports <= listening()

    res = subprocess.run([str(FLEET_CLI), "down"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert [p for p in pids if pid_alive(p)] == []
    assert not ports & listening()
    assert not (REPO / ".fleet").exists()
    assert not (REPO / "inventory" / "local" / "hosts.yml").exists()
    with open("/proc/self/mountinfo") as f:
        assert "/.fleet/" not in f.read()
    res = subprocess.run([str(FLEET_CLI), "down"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr  # safe when nothing is up
