"""The sample order router, for real: built artifacts, real router processes, the real exchange simulator.

No mocks: every router and the exchange (lockstep_fleet/exchange.py) run as separate processes on 127.0.0.x
addresses with free ports; releases are staged from the tarballs exactly like a host gets them.
"""

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VERSIONS = ("1.0.0", "2.0.0", "2.1.0", "2.2.0")
EXCHANGE_ADDR = "127.0.0.201"
ROUTER_ADDR = "127.0.0.202"
CTL_ADDR = "127.0.0.203"


def _load_build():
    spec = importlib.util.spec_from_file_location("sample_build_for_test", os.path.join(REPO, "sample", "build.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port(addr):
    with socket.socket() as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def http(method, url, body=None, timeout=30):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def get_json(url):
    status, text = http("GET", url)
    assert status == 200, (url, status, text)
    return json.loads(text)


def wait_healthy(url, proc=None, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before {url} was healthy")
        try:
            if http("GET", url + "/health", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} not healthy after {timeout}s")


def stop_proc(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    out = tmp_path_factory.mktemp("artifacts")
    _load_build().build_all(str(out))
    return out


@pytest.fixture(scope="module")
def exchange():
    port = free_port(EXCHANGE_ADDR)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lockstep_fleet.exchange", "--bind", EXCHANGE_ADDR, "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://{EXCHANGE_ADDR}:{port}"
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        stop_proc(proc)


def stage(artifacts, base, version):
    """Stage a release like a host does: extract the tarball, then write MANIFEST.json next to the content."""
    dest = base / "releases" / version
    with tarfile.open(artifacts / f"order-router-{version}.tar.gz", "r:gz") as tar:
        tar.extractall(dest, filter="data")
    manifest = json.loads((artifacts / f"order-router-{version}.manifest.json").read_text())
    (dest / "MANIFEST.json").write_text(json.dumps(manifest))
    return dest, manifest


def point_current(base, version):
    """Switch <base>/current atomically to releases/<version> (relative symlink, renamed over)."""
    tmp = base / "current.tmp"
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(os.path.join("releases", version), tmp)
    os.replace(tmp, base / "current")


def write_host_json(base, addr, exchange_url, host="t1"):
    port = free_port(addr)
    cfg = {"bind": addr, "port": port, "exchange_url": exchange_url, "host": host}
    (base / "host.json").write_text(json.dumps(cfg))
    return f"http://{addr}:{port}"


@pytest.fixture
def run_router(artifacts, exchange, tmp_path):
    """Start a real router of a version (cwd = <base>/current, a symlink) and return (url, manifest, proc)."""
    procs = []

    def start(version):
        base = tmp_path / f"base-{version}"
        base.mkdir()
        _, manifest = stage(artifacts, base, version)
        point_current(base, version)
        url = write_host_json(base, ROUTER_ADDR, exchange)
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", ORDER_ROUTER_HOST_JSON=str(base / "host.json"))
        log = open(base / "router.log", "wb")  # the child keeps its own copy of the fd
        proc = subprocess.Popen(
            ["/usr/bin/python3", "-u", "router.py"], cwd=base / "current", env=env, stdout=log, stderr=log
        )
        log.close()
        procs.append(proc)
        wait_healthy(url, proc)
        return url, manifest, proc, base

    yield start
    for proc in procs:
        stop_proc(proc)


def order(url, parent_id, flags=(), symbol="ABC", qty=100):
    status, text = http("POST", url + "/orders", {"id": parent_id, "symbol": symbol, "qty": qty, "flags": list(flags)})
    assert status == 200, text
    return json.loads(text)


def metrics(url):
    status, text = http("GET", url + "/metrics")
    assert status == 200
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name if not sample.labels else (sample.name, tuple(sorted(sample.labels.items())))
            values[key] = sample.value
    return values


def test_power_peg_floods_on_1_0_0(run_router, exchange):
    url, _, _, _ = run_router("1.0.0")
    t0 = time.monotonic()
    reply = order(url, "PEG-1", ["rlp"])
    elapsed = time.monotonic() - t0
    assert reply["version"] == "1.0.0"
    assert reply["child_orders"] >= 1000
    assert get_json(f"{exchange}/parents/PEG-1")["child_orders"] == reply["child_orders"]
    assert elapsed < 30
    # Without the flag, 1.0.0 is a perfectly normal router.
    assert order(url, "PLAIN-1")["child_orders"] == 1
    assert get_json(f"{exchange}/parents/PLAIN-1")["child_orders"] == 1


@pytest.mark.parametrize(
    "version,flag",
    [("2.0.0", "rlp"), ("2.1.0", "rli"), ("2.1.0", "rlp"), ("2.2.0", "rli"), ("2.2.0", "rlp")],
)
def test_one_child_order_per_parent(run_router, exchange, version, flag):
    url, _, _, _ = run_router(version)
    for i in range(3):
        parent = f"{version}-{flag}-{i}"
        reply = order(url, parent, [flag])
        assert reply == {"parent_id": parent, "child_orders": 1, "version": version}
        assert get_json(f"{exchange}/parents/{parent}")["child_orders"] == 1
    assert order(url, f"{version}-{flag}-plain")["child_orders"] == 1


@pytest.mark.parametrize("version", VERSIONS)
def test_version_reports_what_started(run_router, artifacts, version):
    url, manifest, proc, base = run_router(version)
    info = get_json(url + "/version")
    assert info == {
        "version": version,
        "sha256": manifest["sha256"],
        "content_sha256": manifest["content_sha256"],
        "directory": os.path.realpath(base / "releases" / version),
        "pid": proc.pid,
    }
    assert get_json(url + "/health") == {"status": "ok"}
    # Switching `current` (and rewriting MANIFEST.json) on disk does not change what the running process reports.
    other = "2.2.0" if version != "2.2.0" else "2.1.0"
    stage(artifacts, base, other)
    point_current(base, other)
    (base / "releases" / version / "MANIFEST.json").write_text(json.dumps(dict(manifest, version="9.9.9")))
    assert get_json(url + "/version") == info


@pytest.mark.parametrize("version", ("1.0.0", "2.1.0"))
def test_metrics_parse_and_counters_move(run_router, version):
    url, _, _, _ = run_router(version)
    m0 = metrics(url)
    assert m0["order_router_orders_received_total"] == 0
    assert m0["order_router_child_orders_sent_total"] == 0
    assert m0["order_router_errors_total"] == 0
    assert m0[("order_router_build_info", (("version", version),))] == 1
    order(url, "M-1")
    order(url, "M-2", ["rli"])
    m1 = metrics(url)
    assert m1["order_router_orders_received_total"] == 2
    assert m1["order_router_child_orders_sent_total"] == 2
    assert m1["order_router_errors_total"] == 0
    if version == "1.0.0":
        sent = order(url, "M-PEG", ["rlp"])["child_orders"]
        assert metrics(url)["order_router_child_orders_sent_total"] == 2 + sent


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        {"symbol": "ABC", "qty": 1},
        {"id": "", "symbol": "ABC", "qty": 1},
        {"id": "B1", "qty": 1},
        {"id": "B1", "symbol": "ABC", "qty": 0},
        {"id": "B1", "symbol": "ABC", "qty": "100"},
        {"id": "B1", "symbol": "ABC", "qty": True},
        {"id": "B1", "symbol": "ABC", "qty": 1, "flags": "rlp"},
    ],
)
def test_malformed_orders_are_rejected_and_counted(run_router, exchange, body):
    url, _, _, _ = run_router("1.0.0")
    status, text = http("POST", url + "/orders", body)
    assert status == 400
    assert "error" in json.loads(text)
    m = metrics(url)
    assert m["order_router_errors_total"] == 1
    assert m["order_router_orders_received_total"] == 0
    assert m["order_router_child_orders_sent_total"] == 0
    assert get_json(f"{exchange}/parents/B1")["child_orders"] == 0


def test_exchange_down_is_an_error_not_a_crash(artifacts, tmp_path):
    base = tmp_path / "base"
    stage(artifacts, base, "2.1.0")
    point_current(base, "2.1.0")
    url = write_host_json(base, ROUTER_ADDR, f"http://{EXCHANGE_ADDR}:{free_port(EXCHANGE_ADDR)}")
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", ORDER_ROUTER_HOST_JSON=str(base / "host.json"))
    proc = subprocess.Popen(["/usr/bin/python3", "-u", "router.py"], cwd=base / "current", env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(url, proc)
        status, _ = http("POST", url + "/orders", {"id": "X1", "symbol": "ABC", "qty": 1})
        assert status == 502
        assert metrics(url)["order_router_errors_total"] == 1
        assert http("GET", url + "/health")[0] == 200
    finally:
        stop_proc(proc)


# --- bin/ctl -------------------------------------------------------------------------------------------------


def ctl(base, command):
    env = dict(os.environ, ORDER_ROUTER_BASE=str(base))
    env.pop("ORDER_ROUTER_HOST_JSON", None)
    return subprocess.run(
        [str(base / "current" / "bin" / "ctl"), command], env=env, capture_output=True, text=True, timeout=30
    )


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_dead(pid, timeout=10):
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not pid_alive(pid)


def test_ctl_start_status_restart_stop(artifacts, exchange, tmp_path):
    base = tmp_path / "srv-order-router"
    base.mkdir()
    stage(artifacts, base, "2.1.0")
    stage(artifacts, base, "2.2.0")
    point_current(base, "2.1.0")
    url = write_host_json(base, CTL_ADDR, exchange)
    pidfile = base / "run" / "router.pid"
    started = []
    try:
        assert ctl(base, "status").returncode == 3
        r = ctl(base, "start")
        assert r.returncode == 0, r.stderr
        pid1 = int(pidfile.read_text())
        started.append(pid1)
        wait_healthy(url)
        r = ctl(base, "status")
        assert r.returncode == 0 and r.stdout.strip() == str(pid1)
        info = get_json(url + "/version")
        assert (info["version"], info["pid"]) == ("2.1.0", pid1)
        assert info["directory"] == os.path.realpath(base / "releases" / "2.1.0")
        # start is idempotent: no second process
        assert ctl(base, "start").returncode == 0
        assert int(pidfile.read_text()) == pid1

        point_current(base, "2.2.0")
        r = ctl(base, "restart")
        assert r.returncode == 0, r.stderr
        pid2 = int(pidfile.read_text())
        started.append(pid2)
        assert pid2 != pid1
        assert wait_dead(pid1)
        wait_healthy(url)
        info = get_json(url + "/version")
        assert (info["version"], info["pid"]) == ("2.2.0", pid2)
        assert info["directory"] == os.path.realpath(base / "releases" / "2.2.0")
        assert order(url, "CTL-1", ["rli"])["version"] == "2.2.0"
        assert ctl(base, "status").stdout.strip() == str(pid2)

        r = ctl(base, "stop")
        assert r.returncode == 0, r.stderr
        assert not pidfile.exists()
        assert wait_dead(pid2)
        assert ctl(base, "status").returncode == 3
        log = (base / "log" / "router.log").read_text()
        assert f"pid {pid1}" in log and f"pid {pid2}" in log
        assert not list(base.rglob("__pycache__"))
    finally:
        for pid in started:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_ctl_status_ignores_a_stale_pidfile(artifacts, tmp_path):
    base = tmp_path / "base"
    stage(artifacts, base, "2.1.0")
    point_current(base, "2.1.0")
    (base / "run").mkdir()
    # pid of a process that is alive but is not the router: never signalled, reported as not running
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        (base / "run" / "router.pid").write_text(f"{sleeper.pid}\n")
        assert ctl(base, "status").returncode == 3
        assert ctl(base, "stop").returncode == 0
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()
