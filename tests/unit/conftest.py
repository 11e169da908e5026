"""Shared pieces of the unit tests: real ways to run lockstep's plugins.

Nothing here stands in for lockstep code. Modules run as Ansible runs them (a Python process reading its
arguments from a file), action plugins run inside a real ``ansible-playbook`` on localhost, and HTTP services are
small stdlib servers on 127.0.0.1 with a kernel-chosen port (never the local fleet's addresses or ports).
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(REPO, "collections")

MODULES = "ansible_collections.lockstep.release.plugins.modules"


def _clean_env(tmp_dir):
    """An environment that sees this repository's collection and nothing of the operator's Ansible setup."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    cfg = os.path.join(tmp_dir, "ansible.cfg")
    if not os.path.exists(cfg):
        with open(cfg, "w") as f:
            f.write("[defaults]\nretry_files_enabled = False\n")
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in (COLLECTIONS, env.get("PYTHONPATH")) if p),
        PYTHONDONTWRITEBYTECODE="1",
        # An empty config: not the repository's ansible.cfg (its inventory is the fleet, its callback the ledger).
        ANSIBLE_CONFIG=cfg,
        ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
        ANSIBLE_HOME=os.path.join(tmp_dir, "ansible-home"),
        ANSIBLE_LOCAL_TEMP=os.path.join(tmp_dir, "ansible-tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
    )
    return env


def call_module(workdir, name, args, check_mode=False, timeout=60):
    """Run ``python -m ansible_collections.lockstep.release.plugins.modules.<name> <argsfile>`` in ``workdir`` and
    return ``(returncode, result)``: an Ansible module reads ``{"ANSIBLE_MODULE_ARGS": {...}}`` from the file named
    by argv[1] and prints its result as JSON."""
    module_args = dict(args)
    if check_mode:
        module_args["_ansible_check_mode"] = True
    fd, argsfile = tempfile.mkstemp(prefix="%s-args-" % name, suffix=".json", dir=str(workdir))
    with os.fdopen(fd, "w") as f:
        json.dump({"ANSIBLE_MODULE_ARGS": module_args}, f)
    proc = subprocess.run([sys.executable, "-m", "%s.%s" % (MODULES, name), argsfile], capture_output=True,
                          text=True, timeout=timeout, cwd=str(workdir), env=_clean_env(str(workdir)))
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, "module %s printed no JSON result (rc %d): %s %s" % (name, proc.returncode, proc.stdout,
                                                                        proc.stderr)
    return proc.returncode, json.loads(lines[-1])


@pytest.fixture
def run_module(tmp_path):
    """``run_module("deploy", {...}, check_mode=False) -> (returncode, result)`` (see ``call_module``)."""

    def run(name, args, check_mode=False, timeout=60):
        return call_module(tmp_path, name, args, check_mode=check_mode, timeout=timeout)

    return run


@pytest.fixture
def run_play(tmp_path):
    """``run_play((task, [assertion, ...]), ...)`` runs the tasks in one real ``ansible-playbook`` on localhost.

    Each task is registered as ``out``, a failure is rescued (so ``out is failed`` can be asserted), and then
    ``ansible.builtin.assert`` checks the assertions against ``out``. The test passes only if every assertion ran
    and held; otherwise it fails with the playbook's output, which includes the registered result. ``args``: more
    ``ansible-playbook`` arguments (``("-e", "name=value")``).
    """

    def run(*cases, args=()):
        tasks = []
        for i, (task, that) in enumerate(cases, 1):
            tasks.append({"name": "case %d" % i, "block": [dict(task, register="out")],
                          "rescue": [{"name": "case %d failed (the assertions decide)" % i,
                                      "ansible.builtin.debug": {"msg": "{{ out.msg | default('') }}"}}]})
            tasks.append({"name": "case %d assertions" % i,
                          "ansible.builtin.assert": {"that": list(that),
                                                     "success_msg": "case %d holds" % i,
                                                     "fail_msg": "case %d: {{ out | to_json }}" % i}})
        playbook = [{"name": "lockstep unit test", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]
        path = tmp_path / "playbook.yml"
        path.write_text(json.dumps(playbook, indent=2))
        proc = subprocess.run(
            [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
             "-e", "ansible_python_interpreter=%s" % sys.executable, str(path), *args],
            capture_output=True, text=True, timeout=120, cwd=str(tmp_path), env=_clean_env(str(tmp_path)))
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, output
        for i in range(1, len(cases) + 1):
            assert '"case %d holds"' % i in output, output
        return output

    return run


class Service:
    """A stdlib HTTP server on 127.0.0.1 (port chosen by the kernel) answering from a routes table.

    ``routes`` maps a path to ``(status, body)`` or to a function ``(method, path, body) -> (status, body)``; a
    dict or list body is sent as JSON. Every request is recorded in ``requests`` as ``(method, path, body)``, its
    headers in ``headers``.
    """

    def __init__(self, routes):
        self.routes = routes
        self.requests = []
        self.headers = []  # the headers of each request, in order
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                service.requests.append((self.command, self.path, body))
                service.headers.append(dict(self.headers))
                route = service.routes.get(self.path)
                if route is None:
                    status, payload = 404, {"error": "no route %s" % self.path}
                elif callable(route):
                    status, payload = route(self.command, self.path, body)
                else:
                    status, payload = route
                data = payload if isinstance(payload, bytes) else (
                    payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(payload, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        # shutdown() waits for the loop's next poll: at the default half second, a test's teardown of a few hosts'
        # services took seconds of idle wall time.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_service():
    """``http_service(routes) -> Service`` (see ``Service``); every server is shut down at teardown."""
    started = []

    def start(routes):
        started.append(Service(routes))
        return started[-1]

    yield start
    for service in started:
        service.close()


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory):
    """Private copies of the real order-router artifacts: ``{version: (tarball path, manifest dict)}``.

    Copied from artifacts/ when those are there and intact (another job may rebuild them at any time, so tests
    never read them in place), otherwise built with sample/build.py.
    """
    out = tmp_path_factory.mktemp("artifacts")
    versions = ("2.0.0", "2.1.0")
    found = {}
    for v in versions:
        tarball = os.path.join(REPO, "artifacts", "order-router-%s.tar.gz" % v)
        manifest = os.path.join(REPO, "artifacts", "order-router-%s.manifest.json" % v)
        if not (os.path.isfile(tarball) and os.path.isfile(manifest)):
            break
        shutil.copy(tarball, out)
        shutil.copy(manifest, out)
        with open(os.path.join(out, os.path.basename(manifest))) as f:
            data = json.load(f)
        if data.get("sha256") != _sha256(os.path.join(out, os.path.basename(tarball))):
            break
        found[v] = (str(out / os.path.basename(tarball)), data)
    if len(found) == len(versions):
        return found
    subprocess.run([sys.executable, os.path.join(REPO, "sample", "build.py"), "--out", str(out)], check=True,
                   capture_output=True)
    built = {}
    for v in versions:
        with open(out / ("order-router-%s.manifest.json" % v)) as f:
            built[v] = (str(out / ("order-router-%s.tar.gz" % v)), json.load(f))
    return built


@pytest.fixture(scope="session")
def staged_template(artifacts, tmp_path_factory):
    """A host base directory with the real 2.0.0 and 2.1.0 staged by the deploy module (no ``current``)."""
    work = tmp_path_factory.mktemp("staged")
    base = work / "order-router"
    for version in ("2.0.0", "2.1.0"):
        tarball, manifest = artifacts[version]
        rc, res = call_module(work, "deploy", dict(base=str(base), state="staged", version=version,
                                                   manifest=manifest, artifact_path=tarball))
        assert rc == 0, res
    return base


@pytest.fixture
def staged_base(staged_template, tmp_path):
    """A private copy of ``staged_template`` (contents, modes and links as staged) at ``<tmp>/srv/order-router``."""
    base = tmp_path / "srv" / "order-router"
    shutil.copytree(staged_template, base, symlinks=True)
    return base


# A stand-in for a service's supervisor: stop the process in the pidfile, start a new one from the resolved
# `current` directory (so its cwd is the real release directory, as bin/ctl does), record its pid.
RESTART_SCRIPT = r"""
import os, signal, subprocess, sys
base = sys.argv[1]
pidfile = os.path.join(base, "run", "svc.pid")
try:
    with open(pidfile) as f:
        os.kill(int(f.read()), signal.SIGTERM)
except (OSError, ValueError):
    pass
os.makedirs(os.path.dirname(pidfile), exist_ok=True)
proc = subprocess.Popen(["sleep", "120"], cwd=os.path.realpath(os.path.join(base, "current")),
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        start_new_session=True)
with open(pidfile, "w") as f:
    f.write(str(proc.pid))
"""


class ServiceProcess:
    """What a host's service process shows: its pid (from ``self.pidfile``) and, on ``/version``, the manifest of
    the directory it runs from, read through /proc, as the sample service reports it."""

    def pid(self):
        try:
            with open(self.pidfile) as f:
                return int(f.read())
        except (OSError, ValueError):
            return None

    def _version(self, method, path, body):
        pid = self.pid()
        try:
            cwd = os.readlink("/proc/%d/cwd" % pid)
            with open(os.path.join(cwd, "MANIFEST.json")) as f:
                manifest = json.load(f)
        except (OSError, TypeError, ValueError):
            return 503, {"error": "not running"}
        return 200, {"version": manifest["version"], "sha256": manifest["sha256"], "directory": cwd, "pid": pid}

    def stop(self):
        pid = self.pid()
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


class FakeService(ServiceProcess):
    """A service on a host base directory, as far as lockstep can tell: a supervisor (``restart_command``) that
    restarts a process from ``current``, and ``/health`` + ``/version`` that report what THAT process runs (the
    manifest of its working directory, read through /proc), like the sample service does."""

    def __init__(self, base, http_service):
        self.base = str(base)
        self.pidfile = os.path.join(self.base, "run", "svc.pid")
        self.restart_command = [sys.executable, "-c", RESTART_SCRIPT, self.base]
        self.http = http_service({"/health": (200, {"status": "ok"}), "/version": self._version})
        self.health_url = self.http.url + "/health"
        self.version_url = self.http.url + "/version"

@pytest.fixture
def fake_service(http_service):
    """``fake_service(base) -> FakeService``; the process it last started is stopped at teardown."""
    services = []

    def make(base):
        services.append(FakeService(base, http_service))
        return services[-1]

    yield make
    for service in services:
        service.stop()


@pytest.fixture
def haproxy(tmp_path):
    """A private HAProxy with backend b (h1, h2, h3, no health checks), on Unix sockets only."""
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
