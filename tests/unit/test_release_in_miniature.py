"""lockstep's own playbooks/release.yml and playbooks/rollback.yml, with its own roles, in miniature.

Four local hosts (``ansible_connection: local``), each with its own release tree staged by the deploy module from
the real order-router artifacts, its own service (a process started from ``current``, whose ``/version`` reports
the manifest of the directory that process runs from, as the sample service does) and its own restart command; a
private HAProxy (Unix sockets in the test's directory) whose backend ``app`` points at those services; the ledger
callback recording the run. Trouble is real too: a restart command that refuses a release, a service killed, a
dependency that goes down, HAProxy killed in the middle of a release. What the tests read afterwards is what
HAProxy, the hosts' processes and the ledger's summary show.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest
import yaml
from conftest import ServiceProcess
from test_progress_callback import Run, ansible_env

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
BEFORE, TARGET = "2.0.0", "2.1.0"
HOSTS = ["h1", "h2", "h3", "h4"]

# The service's supervisor: start a process from the resolved ``current`` (its cwd is the release directory), unless
# this host's trouble file says the release must not start; every start is appended to run/history.
RESTART = r"""
import json, os, signal, subprocess, sys
base = sys.argv[1]
run = os.path.join(base, "run")
os.makedirs(run, exist_ok=True)
version = os.path.basename(os.path.realpath(os.path.join(base, "current")))
try:
    with open(os.path.join(run, "history")) as f:
        history = f.read().split()
except OSError:
    history = []
try:
    with open(os.path.join(run, "trouble.json")) as f:
        trouble = json.load(f)
except OSError:
    trouble = {}
refuse = version in trouble.get("refuse", []) or any(
    version == v and after in history for v, after in trouble.get("refuse_after", {}).items())
if refuse:
    for path in trouble.get("then_kill", []):
        try:
            with open(path) as f:
                os.kill(int(f.read()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    for path in trouble.get("then_touch", []):
        open(path, "w").close()
    sys.exit("refusing to start " + version)
pidfile = os.path.join(run, "svc.pid")
try:
    with open(pidfile) as f:
        os.kill(int(f.read()), signal.SIGTERM)
except (OSError, ValueError):
    pass
proc = subprocess.Popen(["sleep", "300"], cwd=os.path.realpath(os.path.join(base, "current")),
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                        start_new_session=True)
with open(pidfile, "w") as f:
    f.write(str(proc.pid))
with open(os.path.join(run, "history"), "a") as f:
    f.write(version + "\n")
"""

STOP = r"""
import os, signal, sys
pidfile = os.path.join(sys.argv[1], "run", "svc.pid")
try:
    with open(pidfile) as f:
        os.kill(int(f.read()), signal.SIGTERM)
except (OSError, ValueError):
    pass
"""


class Host(ServiceProcess):
    """One host of the miniature fleet: its release tree, its service process and its HTTP endpoints."""

    def __init__(self, name, root, staged_template, http_service, active):
        self.name = name
        self.base = root / "hosts" / name / "order-router"
        shutil.copytree(staged_template, self.base, symlinks=True)
        self.run_dir = self.base / "run"
        self.run_dir.mkdir(exist_ok=True)
        self.pidfile = str(self.run_dir / "svc.pid")
        self.dependency_down = root / "dependency-down"
        self.http = http_service({"/health": (200, {"status": "ok"}), "/version": self._version, "/deps": self._deps,
                                  "/metrics": (200, "# TYPE errors_total counter\nerrors_total 0\n")})
        self.url = self.http.url
        if active:
            os.symlink(os.path.join("releases", active), self.base / "current")
            subprocess.run([sys.executable, "-c", RESTART, str(self.base)], check=True)

    def trouble(self, **trouble):
        (self.run_dir / "trouble.json").write_text(json.dumps(trouble))

    def running(self):
        """The version the service's process runs (the manifest of its cwd), or None when none runs."""
        pid = self.pid()
        try:
            with open(os.path.join(os.readlink("/proc/%d/cwd" % pid), "MANIFEST.json")) as f:
                return json.load(f)["version"]
        except (OSError, TypeError, ValueError, KeyError):
            return None

    def history(self):
        try:
            return (self.run_dir / "history").read_text().split()
        except OSError:
            return []

    def _deps(self, method, path, body):
        """What an order needs: the dependency up, and (with ``old_breaks``) an old release not run after the new."""
        broken = self.dependency_down.exists() or ((self.run_dir / "old_breaks").exists() and self.running() == BEFORE
                                                   and TARGET in self.history())
        return (503, "dependency unreachable") if broken else (200, "ok")


class HAProxy:
    """A private HAProxy whose backend ``app`` points at the hosts' services; its runtime API read back."""

    def __init__(self, root, hosts):
        self.sock = str(root / "haproxy.sock")
        cfg = root / "haproxy.cfg"
        servers = "".join("    server %s %s\n" % (h.name, h.url.split("//")[1]) for h in hosts)
        cfg.write_text("global\n    stats socket %s mode 600 level admin\ndefaults\n    mode http\n"
                       "    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n"
                       "frontend f\n    bind unix@%s/front.sock\n    default_backend app\nbackend app\n%s"
                       % (self.sock, root, servers))
        if shutil.which("haproxy") is None:
            pytest.fail("haproxy is not installed (make setup installs it)")
        self.proc = subprocess.Popen(["haproxy", "-f", str(cfg)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.pidfile = str(root / "haproxy.pid")
        with open(self.pidfile, "w") as f:
            f.write(str(self.proc.pid))
        deadline = time.monotonic() + 5
        while not os.path.exists(self.sock):
            assert time.monotonic() < deadline, "haproxy did not start"
            time.sleep(0.05)
        self.samples = []
        self._watching = None

    def command(self, line):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(self.sock)
            s.sendall(line.encode() + b"\n")
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out.decode()
                out += chunk

    def admin(self):
        """``{server: srv_admin_state}``: 0 serving as set, 1 MAINT, 8 DRAIN (HAProxy's bit field)."""
        lines = self.command("show servers state app").splitlines()
        head = lines[1].lstrip("# ").split()
        rows = [dict(zip(head, line.split(), strict=False)) for line in lines[2:] if line.strip()]
        return {r["srv_name"]: int(r["srv_admin_state"]) for r in rows}

    def watch(self, probe=None):
        """Sample every server's admin state until ``stop_watching``: what was taken out together. With ``probe``,
        ``probed`` pairs each sample with what ``probe()`` returned just before it."""
        stop = threading.Event()
        self.probed = []

        def loop():
            while not stop.is_set():
                seen = probe() if probe else None
                try:
                    self.samples.append(self.admin())
                except OSError:
                    pass
                else:
                    self.probed.append((self.samples[-1], seen))
                time.sleep(0.01)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        self._watching = (stop, thread)

    def stop_watching(self):
        if self._watching:
            self._watching[0].set()
            self._watching[1].join(5)
            self._watching = None

    def out_together(self):
        """Each set of servers seen out of service (drained or MAINT) at the same moment."""
        return {frozenset(s for s, state in sample.items() if state) for sample in self.samples}

    def close(self):
        self.stop_watching()
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=5)


@pytest.fixture
def fleet(tmp_path, staged_template, artifacts, http_service):
    """``fleet.run(playbook, **extra_vars) -> Run``: lockstep's real playbook against the miniature fleet."""
    hosts = {h: Host(h, tmp_path, staged_template, http_service, BEFORE) for h in HOSTS}
    lb = HAProxy(tmp_path, hosts.values())
    artifact_dir = tmp_path / "artifacts"
    artifact_dir.mkdir()
    for tarball, _ in artifacts.values():
        shutil.copy(tarball, artifact_dir)
        shutil.copy(tarball.replace(".tar.gz", ".manifest.json"), artifact_dir)
    root = tmp_path / "project"
    root.mkdir()
    (root / "inventory.yml").write_text(json.dumps({"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "children": {
            "app": {"hosts": {h.name: {"lockstep_base": str(h.base), "lockstep_service_url": h.url,
                                       "lockstep_pidfile": h.pidfile,
                                       "lockstep_restart_command": [sys.executable, "-c", RESTART, str(h.base)],
                                       "lockstep_stop_command": [sys.executable, "-c", STOP, str(h.base)]}
                              for h in hosts.values()}},
            # Every host of the run checks the roles' required input (the sample's group_vars/all sets it for all).
            "lb": {"hosts": {"lb1": {"lockstep_base": str(tmp_path / "lb1"),
                                     "lockstep_restart_command": ["true"]}}}}}}))
    base_vars = {"lockstep_version": TARGET, "lockstep_artifact_dir": str(artifact_dir),
                 "lockstep_artifact_name": "order-router-{version}.tar.gz",
                 "lockstep_manifest_name": "order-router-{version}.manifest.json",
                 "lockstep_haproxy_socket": lb.sock, "lockstep_lock_path": str(tmp_path / "lock" / "app.lock"),
                 "lockstep_canary": 1, "lockstep_waves": [2, "100%"], "lockstep_watch_seconds": 0,
                 "lockstep_switch_timeout": 10, "lockstep_drain_timeout": 5, "lockstep_stop_timeout": 10,
                 "lockstep_smoke_checks": [{"name": "an order reaches the dependency", "url": "{url}/deps"},
                                           {"name": "version on the host", "url": "{url}/version",
                                            "json": {"version": "{version}"}}]}

    def run(playbook="release.yml", env=None, **extra):
        proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), os.path.join(REPO, "playbooks", playbook),
                               "-e", json.dumps({k: v for k, v in dict(base_vars, **extra).items() if v is not None})],
                              cwd=str(root), env=ansible_env(tmp_path, root, "default", env or {}), capture_output=True,
                              text=True, timeout=300, stdin=subprocess.DEVNULL)
        return Run(proc)

    (tmp_path / "lock").mkdir()
    fleet = type("Fleet", (), {})()
    fleet.run, fleet.hosts, fleet.lb, fleet.dependency_down = run, hosts, lb, tmp_path / "dependency-down"
    fleet.root = root
    yield fleet
    lb.close()
    for h in hosts.values():
        h.stop()


def status(run):
    lines = run.mine(r"^LOCKSTEP RELEASE SUMMARY: status ")
    assert len(lines) == 1, run
    return lines[0].split("status ")[1].split(",")[0]


def episodes(samples, server):
    """How many times ``server`` was taken out of service (drained or MAINT) and seen so."""
    states = [bool(sample.get(server)) for sample in samples]
    return sum(1 for i, out in enumerate(states) if out and (i == 0 or not states[i - 1]))


HOOKS = ("before_rollout", "after_wave", "before_verify", "after_release")


def hooks_on(fleet, host):
    """Every hook a release runs forward, and a smoke command, set in the inventory for ``host`` alone: each leaves
    a file named for it and the host that ran it. Ansible's own tasks of a hook step end every host without one at
    once where no host has one; here one host does, and only that host runs them."""
    inventory = fleet.root / "inventory.yml"
    data = json.loads(inventory.read_text())
    hooks = {}
    for name in HOOKS:
        hooks[name] = str(fleet.root / ("%s.yml" % name))
        (fleet.root / ("%s.yml" % name)).write_text(json.dumps([{"name": "Team | " + name, "ansible.builtin.copy": {
            "content": "", "dest": str(fleet.root / ("ran-%s-{{ inventory_hostname }}" % name))}}]))
    data["all"]["children"]["app"]["hosts"][host].update(
        lockstep_hooks=hooks, lockstep_smoke_commands=["touch %s" % (fleet.root / ("ran-smoke-" + host))])
    inventory.write_text(json.dumps(data))
    return sorted("ran-%s-%s" % (name, host) for name in HOOKS + ("smoke",))


def test_a_release_rehearses_the_rollback_on_the_drained_canary_and_a_manual_rollback_does_not(fleet):
    ran = hooks_on(fleet, "h3")
    fleet.lb.watch(probe=fleet.hosts["h1"].running)
    run = fleet.run()
    fleet.lb.stop_watching()
    assert run.rc == 0 and status(run) == "succeeded", run
    assert sorted(p.name for p in fleet.root.glob("ran-*")) == ran, run
    assert {h: fleet.hosts[h].running() for h in HOSTS} == dict.fromkeys(HOSTS, TARGET), run
    # The canary went back to the previous release and forward again before wave 2; the others switched once.
    assert fleet.hosts["h1"].history() == [BEFORE, TARGET, BEFORE, TARGET], run
    assert [fleet.hosts[h].history() for h in HOSTS[1:]] == [[BEFORE, TARGET]] * 3, run
    # Out of service: the canary alone, once (from its wave's drain to the rehearsal's end: it never served the
    # release before its gate and rehearsal passed), then each wave alone; all back at the end. HAProxy applies a
    # step's commands one after another: a sample between two of them sees part of a wave (seen once under load).
    waves = [frozenset({"h1"}), frozenset({"h2", "h3"}), frozenset({"h4"})]
    seen = fleet.lb.out_together() - {frozenset()}
    assert set(waves) <= seen and all(any(out <= wave for wave in waves) for out in seen), run
    assert episodes(fleet.lb.samples, "h1") == 1, run
    # Seen as it happened: while the canary ran the previous release again (the rehearsal), HAProxy held it out.
    rehearsing, ran_target = [], False
    for admin, running in fleet.lb.probed:
        ran_target = ran_target or running == TARGET
        if ran_target and running == BEFORE:
            rehearsing.append(admin["h1"])
    assert rehearsing and all(rehearsing), run
    assert fleet.lb.admin() == dict.fromkeys(HOSTS, 0), run

    back = fleet.run("rollback.yml", lockstep_version=None)
    assert back.rc == 0 and status(back) == "succeeded", back
    assert {h: fleet.hosts[h].running() for h in HOSTS} == dict.fromkeys(HOSTS, BEFORE), back
    # No rehearsal: the release taken away never ran again on the canary.
    assert fleet.hosts["h1"].history() == [BEFORE, TARGET, BEFORE, TARGET, BEFORE], back
    assert fleet.lb.admin() == dict.fromkeys(HOSTS, 0), back


def test_a_halt_rolls_back_wave_by_wave_and_only_a_host_proven_back_serves(fleet):
    """h3 cannot start the release, and as it fails h4 (not yet switched) dies and a dependency goes down."""
    fleet.hosts["h3"].trouble(refuse=[TARGET], then_kill=[fleet.hosts["h4"].pidfile],
                              then_touch=[str(fleet.dependency_down)])
    fleet.lb.watch()
    run = fleet.run()
    fleet.lb.stop_watching()
    assert run.rc == 2, run
    # A host the release never changed died on its own: the rollback of the ones it changed is still proven.
    assert status(run) == "rolled_back", run
    assert run.mine(r"^halted by gate restart on host h3: .* exited 1: refusing to start 2\.1\.0$"), run
    assert {h: fleet.hosts[h].running() for h in HOSTS} == {"h1": BEFORE, "h2": BEFORE, "h3": BEFORE, "h4": None}
    # The dead host is out (MAINT); the hosts proven back serve, although the dependency fails their smoke checks.
    assert fleet.lb.admin() == {"h1": 0, "h2": 0, "h3": 0, "h4": 1}, run
    # Back in the rollout's waves: h2 stayed out from its wave until its wave back, never put back in between.
    assert episodes(fleet.lb.samples, "h2") == 1, run
    # The canary: out once for its wave and rehearsal, once for its wave back.
    assert episodes(fleet.lb.samples, "h1") == 2, run
    # The ledger records the waves back (the rollout's wave task file, run backwards) as the rollback phase.
    assert phase_runs(fleet) == ["preflight", "rollout", "rollback", "finish"], run


def test_a_load_balancer_gone_after_the_canary_halts_the_next_wave_and_the_canary_still_goes_back(fleet):
    hook = fleet.root / "after_wave.yml"
    hook.write_text(json.dumps([{
        "name": "Team | the load balancer dies after the canary",
        "ansible.builtin.command": {"argv": ["kill", "-9", str(fleet.lb.proc.pid)]},
        "run_once": True, "delegate_to": "localhost", "changed_when": False,
        "when": "lockstep_waves_done | int == 1"}]))
    run = fleet.run(lockstep_hooks={"after_wave": str(hook)})
    assert run.rc == 2 and status(run) == "rolled_back", run
    # Wave 2 was never switched: its drain was not done.
    assert [fleet.hosts[h].history() for h in HOSTS[1:]] == [[BEFORE]] * 3, run
    # The canary went back without the load balancer.
    assert {h: fleet.hosts[h].running() for h in HOSTS} == dict.fromkeys(HOSTS, BEFORE), run
    assert fleet.hosts["h1"].history()[-1] == BEFORE, run


@pytest.mark.parametrize("after_wave", [True, False], ids=["after_wave hook", "no hook"])
def test_a_canary_whose_batch_mate_failed_its_switch_is_not_rehearsed_and_the_failed_host_never_serves(fleet,
                                                                                                        after_wave):
    """A canary of two: h2 cannot start the release, h1 can. h1's tasks run on before h2's rescue records the halt:
    the wave is not counted as done, the rollback is not rehearsed on h1, and nothing puts h2 back in service before
    the rollback proves it back. Without a hook the wave's end is Ansible's end of the batch for every host at once,
    which must wait for h2's rescue."""
    fleet.hosts["h2"].trouble(refuse=[TARGET])
    hook = fleet.root / "after_wave.yml"
    hook.write_text(json.dumps([{"name": "Team | after a wave", "ansible.builtin.copy": {
        "content": "", "dest": str(fleet.root / "after-wave-{{ inventory_hostname }}")}}]))
    fleet.lb.watch(probe=fleet.hosts["h2"].history)
    run = fleet.run(lockstep_canary=2, lockstep_waves=["100%"],
                    lockstep_hooks={"after_wave": str(hook)} if after_wave else {})
    fleet.lb.stop_watching()
    assert run.rc == 2 and status(run) == "rolled_back", run
    assert run.mine(r"^halted by gate restart on host h2: "), run
    assert fleet.hosts["h1"].history() == [BEFORE, TARGET, BEFORE], run
    assert not run.mine(r"rollback rehearsed"), run
    assert not list(fleet.root.glob("after-wave-*")), run  # nor an after_wave hook for a wave that did not pass
    # h2 stays out of service from its wave's drain until the rollback starts the previous release on it again.
    start = next(i for i, (admin, _) in enumerate(fleet.lb.probed) if admin["h2"])
    held = [admin["h2"] for admin, history in fleet.lb.probed[start:] if history == [BEFORE]]
    assert held and all(held), run
    assert {h: fleet.hosts[h].running() for h in HOSTS} == dict.fromkeys(HOSTS, BEFORE), run
    assert fleet.lb.admin() == dict.fromkeys(HOSTS, 0), run


def test_a_fleet_failing_its_smoke_checks_before_the_release_is_refused(fleet):
    fleet.dependency_down.touch()
    run = fleet.run()
    assert run.rc == 2 and status(run) == "refused", run
    assert run.mine(r"^halted by gate baseline-smoke on host"), run
    assert [fleet.hosts[h].history() for h in HOSTS] == [[BEFORE]] * 4, run


def test_a_previous_release_that_does_not_serve_after_the_new_one_ran_halts_at_the_rehearsal(fleet):
    (fleet.hosts["h1"].run_dir / "old_breaks").touch()
    run = fleet.run()
    # Back on 2.0.0 for good, h1 still fails that smoke check: its rollback is not proven to serve.
    assert run.rc == 2 and status(run) == "rollback_failed", run
    assert run.mine(r"^halted by gate rehearsal on host h1: the previous release 2\.0\.0 does not serve after "
                    r"2\.1\.0 ran on h1: gate rehearsal-smoke halted"), run
    assert [fleet.hosts[h].history() for h in HOSTS[1:]] == [[BEFORE]] * 3, run
    assert fleet.hosts["h1"].running() == BEFORE, run


def test_without_a_load_balancer_a_host_the_rollback_cannot_prove_back_is_stopped(fleet):
    """No load balancer to take it out of (lockstep_lb: none): h1, which cannot start the previous release once the
    new one ran there, is stopped by the rollback, and the summary says it was taken out."""
    fleet.hosts["h1"].trouble(refuse_after={BEFORE: TARGET})
    run = fleet.run(lockstep_lb="none")
    assert run.rc == 2 and status(run) == "rollback_failed", run
    assert fleet.hosts["h1"].running() is None, run
    assert [fleet.hosts[h].running() for h in HOSTS[1:]] == [BEFORE] * 3, run
    assert run.mine(r"^h1\s+%s\s+\S+\s+rollback\s+drained$" % BEFORE.replace(".", r"\.")), run


def test_a_lock_that_cannot_be_given_back_is_said_and_every_host_still_runs_its_after_release_hook(fleet, tmp_path):
    # The run's outcome cannot be written next to the lock (a directory is in its way): giving the lock back fails.
    (tmp_path / "lock" / "app.lock.outcome" / "in-the-way").mkdir(parents=True)
    hook = fleet.root / "after_release.yml"
    hook.write_text(json.dumps([{"name": "Team | after the release", "ansible.builtin.copy": {
        "content": "", "dest": str(fleet.root / "after-{{ inventory_hostname }}")}}]))
    run = fleet.run(lockstep_hooks={"after_release": str(hook)})
    assert run.rc == 2 and "RELEASE LOCK NOT GIVEN BACK" in run.out, run
    assert {h: fleet.hosts[h].running() for h in HOSTS} == dict.fromkeys(HOSTS, TARGET), run
    # A failure of the one host that gave the lock back, never of the play: every host went on to its hook.
    assert sorted(p.name for p in fleet.root.glob("after-*")) == ["after-" + h for h in HOSTS + ["lb1"]], run


def phases_entered(fleet):
    """The phases the run's ledger entered, in order, each once."""
    (path,) = (fleet.root.parent / "ledger").glob("*.jsonl")
    with open(path) as f:
        records = [json.loads(line) for line in f]
    return list(dict.fromkeys(r["phase"] for r in records if r["event"] == "phase_enter" and r["phase"] != "common"))


def phase_runs(fleet):
    """The phases of the run's ledger in order, a phase entered again straight after itself counted once."""
    (path,) = (fleet.root.parent / "ledger").glob("*.jsonl")
    with open(path) as f:
        phases = [json.loads(line) for line in f]
    phases = [r["phase"] for r in phases if r["event"] == "phase_enter" and r["phase"] != "common"]
    return [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p]


def before_verify(fleet, task):
    """A before_verify hook that runs ``task`` once, on the controller."""
    hook = fleet.root / "before_verify.yml"
    hook.write_text(json.dumps([dict(task, name="Team | before verify", run_once=True, delegate_to="localhost")]))
    return {"lockstep_hooks": {"before_verify": str(hook)}}


@pytest.mark.parametrize("halt", ["verify", "smoke", "smoke-gate", "watch"])
def test_a_phase_after_the_halting_one_never_starts(fleet, halt):
    """After a halt the next phase never starts, nor is it entered in the ledger; nor do the smoke commands run
    (set here where the halt comes before them). A process that dies before verify halts verify's gate; a smoke
    command that fails halts smoke on its host, a dependency gone halts smoke's gate, and a threshold no fleet can
    hold halts the watch's."""
    extra = {
        "verify": lambda: dict(before_verify(fleet, {"ansible.builtin.command": {
            "argv": [sys.executable, "-c", STOP, str(fleet.hosts["h2"].base)]}, "changed_when": False}),
            lockstep_smoke_commands=["true"]),
        "smoke": lambda: {"lockstep_smoke_commands": ["false"]},
        "smoke-gate": lambda: dict(before_verify(fleet, {"ansible.builtin.file": {
            "path": str(fleet.dependency_down), "state": "touch"}}), lockstep_smoke_commands=["true"]),
        "watch": lambda: {"lockstep_watch_thresholds": [{"name": "no error ever", "metric": "errors_total",
                                                         "max": -1}]},
    }[halt]()
    run = fleet.run(**extra)
    gate = halt.split("-")[0]
    assert run.rc == 2 and run.mine(r"^halted by gate %s on host" % gate), run
    phases = ["preflight", "rollout", "verify", "smoke", "watch"]
    assert phases_entered(fleet) == phases[:phases.index(gate) + 1] + ["rollback", "finish"], run


def test_a_host_that_stops_after_its_wave_halts_the_next_waves_gate_and_no_later_wave_starts(fleet):
    hook = fleet.root / "after_wave.yml"
    hook.write_text(json.dumps([{
        "name": "Team | the canary's process dies after its wave",
        "ansible.builtin.command": {"argv": [sys.executable, "-c", STOP, str(fleet.hosts["h1"].base)]},
        "run_once": True, "delegate_to": "localhost", "changed_when": False,
        "when": "lockstep_waves_done | int == 1"}]))
    run = fleet.run(lockstep_hooks={"after_wave": str(hook)})
    assert run.rc == 2 and status(run) == "rolled_back", run
    assert run.mine(r"^halted by gate wave-2 on host h1: "), run
    # The wave that halted went back; the one after it never started.
    assert fleet.hosts["h4"].history() == [BEFORE], run
    assert {h: fleet.hosts[h].running() for h in HOSTS} == dict.fromkeys(HOSTS, BEFORE), run


def test_waves_set_where_serial_cannot_read_them_halt_before_a_batch_off_the_plan_switches(fleet):
    """``serial`` is templated without any host's variables: waves set in the inventory reach the plan but not the
    batches. The batch that differs from the plan is judged before any of its hosts is touched."""
    inventory = json.loads((fleet.root / "inventory.yml").read_text())
    inventory["all"]["children"]["app"]["vars"] = {"lockstep_waves": [2, "100%"]}
    (fleet.root / "inventory.yml").write_text(json.dumps(inventory))
    run = fleet.run(lockstep_waves=None)
    assert run.rc == 2 and status(run) == "rolled_back", run
    assert run.mine(r"^halted by gate switch on host h2: Ansible's serial made the batch \['h2'\] but the plan "
                    r"says \['h2', 'h3'\]"), run
    assert [fleet.hosts[h].history() for h in HOSTS[1:]] == [[BEFORE]] * 3, run
    assert fleet.hosts["h1"].running() == BEFORE, run


def test_old_releases_are_pruned_after_a_proven_release_and_never_after_a_halt(fleet):
    """Two releases kept, and an older one than both on every host: a halted release prunes nothing; a proven one
    removes the older one and keeps the release and the one before it."""
    for h in fleet.hosts.values():
        old = h.base / "releases" / "1.9.0"
        shutil.copytree(h.base / "releases" / BEFORE, old, symlinks=True)
        os.utime(old, (time.time() - 3600, time.time() - 3600))
    halted = fleet.run(lockstep_keep_releases=2, lockstep_smoke_commands=["false"])
    assert halted.rc == 2 and status(halted) == "rolled_back", halted
    assert all((h.base / "releases" / "1.9.0").is_dir() for h in fleet.hosts.values()), halted
    run = fleet.run(lockstep_keep_releases=2)
    assert run.rc == 0 and status(run) == "succeeded", run
    assert {h: sorted(os.listdir(fleet.hosts[h].base / "releases")) for h in HOSTS} == dict.fromkeys(
        HOSTS, [BEFORE, TARGET]), run


def team_copy(tmp_path, **keywords):
    """lockstep's release playbook as a team's own copy, with ``keywords`` set on every play."""
    with open(os.path.join(REPO, "playbooks", "release.yml")) as f:
        plays = yaml.safe_load(f)
    for play in plays:
        if "hosts" in play:
            play.update(keywords)
    team = tmp_path / "team-release.yml"
    team.write_text(yaml.safe_dump(plays, sort_keys=False))
    return str(team)


def test_a_bad_value_on_one_host_is_refused_before_any_host_is_touched(fleet, tmp_path):
    """The release's input is checked against every host's own values, in one task on the controller: a value set
    wrong for one host in the inventory refuses the release, naming that host, before any host changed; in a team's
    copy of the playbook that ignores errors too."""
    inventory = fleet.root / "inventory.yml"
    data = json.loads(inventory.read_text())
    data["all"]["children"]["app"]["hosts"]["h3"]["lockstep_keep_releases"] = "three"
    # A value that names each host's own address (which none of them sets) and a role's default is templated as
    # on that host: it is no error.
    data["all"]["vars"]["lockstep_health_path"] = "/health{{ '' if ansible_host and lockstep_version_field else '' }}"
    inventory.write_text(json.dumps(data))
    run = fleet.run(team_copy(tmp_path, ignore_errors=True))
    assert run.rc != 0 and status(run) == "refused", run
    said = run.mine(r"argument 'lockstep_keep_releases' is of type")
    assert said and all("(h3)" in line for line in said), run
    assert [fleet.hosts[h].history() for h in HOSTS] == [[BEFORE]] * 4, run


def test_a_teams_copy_with_ignore_errors_on_every_play_still_exits_non_zero_on_a_halt(fleet, tmp_path):
    """A play's ignore_errors reaches every task without a setting of its own: the run's exit is pinned."""
    run = fleet.run(team_copy(tmp_path, ignore_errors=True), lockstep_smoke_commands=["false"])
    assert run.rc == 2 and status(run) == "rolled_back", run
    assert {h: fleet.hosts[h].running() for h in HOSTS} == dict.fromkeys(HOSTS, BEFORE), run


def test_a_before_rollback_hook_that_fails_on_a_host_never_keeps_it_from_going_back(fleet):
    """The hook runs on each host about to go back; its failure on one host is said in the ledger, and that host
    goes back with the others (a host dropped from the rollback would stay on the release that halted)."""
    hook = fleet.root / "before_rollback.yml"
    hook.write_text(json.dumps([{"name": "Team | before the rollback", "ansible.builtin.command": "false",
                                 "when": "inventory_hostname == 'h2'"}]))
    run = fleet.run(lockstep_smoke_commands=["false"], lockstep_hooks={"before_rollback": str(hook)})
    assert run.rc == 2 and status(run) == "rolled_back", run
    assert {h: fleet.hosts[h].running() for h in HOSTS} == dict.fromkeys(HOSTS, BEFORE), run


def test_a_ledger_that_cannot_be_created_refuses_the_release_before_any_host_is_touched(fleet, tmp_path):
    """The ledger callback never stops a run itself: its records go on in a fallback file and the release's plan, an
    ordinary task, refuses. Nothing is touched, the lock is not taken, and the fallback holds the whole refusal."""
    from ansible_collections.lockstep.release.plugins.module_utils import ledger

    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    run = fleet.run(env={"LOCKSTEP_LEDGER_DIR": str(blocker / "ledger"), "TMPDIR": str(tmp)})
    assert run.rc != 0 and status(run) == "refused", run
    assert "lockstep ledger: cannot create ledger" in run.err, run
    assert run.mine(r"the ledger cannot be written: cannot create ledger"), run
    assert [fleet.hosts[h].history() for h in HOSTS] == [[BEFORE]] * 4, run
    assert fleet.lb.admin() == dict.fromkeys(HOSTS, 0), run
    assert not os.listdir(tmp_path / "lock"), run
    (fallback,) = tmp.glob("lockstep-ledger-fallback-*.jsonl")
    records = ledger.read_records(str(fallback))
    assert [r["event"] for r in records[:2]] == ["ledger_fallback", "release_started"], records[:2]
    assert records[-1]["event"] == "release_finished" and records[-1]["status"] == "refused", records[-1]
    assert records[-1]["ledger_broken"].startswith("cannot create ledger"), records[-1]


def test_a_fact_cache_kept_across_runs_never_carries_one_releases_record_into_the_next(fleet, tmp_path):
    """A team's persistent fact cache (jsonfile) keeps no release record: the next run starts from its own."""
    facts = tmp_path / "facts"
    cache = {"ANSIBLE_CACHE_PLUGIN": "jsonfile", "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(facts)}
    refused = fleet.run(env=cache, lockstep_version="9.9.9")
    assert refused.rc != 0 and status(refused) == "refused", refused
    # The record is a run's own fact (set_fact), never cached: the cache holds nothing of the refused run's.
    assert "__lockstep_record" not in "".join(p.read_text() for p in facts.glob("*")), list(facts.glob("*"))
    run = fleet.run(env=cache)
    assert run.rc == 0 and status(run) == "succeeded", run
    assert {h: fleet.hosts[h].running() for h in HOSTS} == dict.fromkeys(HOSTS, TARGET), run
