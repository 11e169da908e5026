"""Run the real release playbook against the real local fleet and read back what happened."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from dataclasses import dataclass, field

from ansible_collections.lockstep.release.plugins.module_utils import ledger
from lockstep_fleet import fleet_lock  # noqa: F401 (the fixtures import it from here)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(REPO, ".venv", "bin")


# Tests watch for a moment only; the thresholds themselves stay the inventory's.
FAST = {"lockstep_watch_seconds": 0}
# Ansible's own per-task lines (`changed: [h1]`), for tests that read what each task did on each host.
DEFAULT_OUTPUT = {"ANSIBLE_STDOUT_CALLBACK": "default"}


@dataclass(repr=False)
class Run:
    rc: int
    out: str
    records: list = field(default_factory=list)

    @property
    def stats(self):
        for rec in reversed(self.records):
            if rec.get("event") == "status_reported":
                return rec.get("stats") or rec.get("data") or rec
        return {}

    @property
    def status(self):
        for rec in reversed(self.records):
            if rec.get("event") == "release_finished":
                return rec.get("status")
        return None

    def __repr__(self):
        return "rc=%s status=%s\n%s" % (self.rc, self.status, self.out[-6000:])


def env(tmp_path, **extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "LOCKSTEP_"))}
    e.update({
        "PATH": VENV_BIN + os.pathsep + e.get("PATH", ""),
        "ANSIBLE_CONFIG": os.path.join(REPO, "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        # A fresh ControlPersist directory per test: a master left by an earlier test never reaches a new fleet.
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / "cp"),
        "LOCKSTEP_LEDGER_DIR": str(tmp_path / "ledger"),
        # The ledger's anchors (its head, kept outside its directory) stay with the test, not in the home directory.
        "LOCKSTEP_LEDGER_ANCHOR_DIR": str(tmp_path / "anchors"),
    })
    e.update({k: str(v) for k, v in extra.items()})
    return e


def release_cmd(version, extra=None, limit=None, check=False, playbook="release.yml", inventory=None, args=()):
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), "-i", inventory or os.path.join(REPO, "inventory", "local"),
           os.path.join(REPO, "playbooks", playbook), "-e", json.dumps(dict(FAST, **(extra or {})))]
    if version is not None:
        cmd += ["-e", json.dumps({"lockstep_version": version})]
    if limit:
        cmd += ["--limit", limit]
    if check:
        cmd.append("--check")
    return cmd + list(args)


def records_in(tmp_path, before=()):
    directory = tmp_path / "ledger"
    if not directory.exists():
        return []
    files = sorted(p for p in os.listdir(directory) if p.endswith(".jsonl") and p not in before)
    return ledger.read_records(os.path.join(directory, files[-1])) if files else []


def ledgers(tmp_path):
    directory = tmp_path / "ledger"
    return set(os.listdir(directory)) if directory.exists() else set()


def release(tmp_path, version, extra=None, limit=None, check=False, timeout=600, playbook="release.yml",
            inventory=None, args=(), environ=None):
    before = ledgers(tmp_path)
    proc = subprocess.run(release_cmd(version, extra, limit, check, playbook, inventory, args), cwd=REPO,
                          env=env(tmp_path, **(environ or {})),
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return Run(proc.returncode, proc.stdout + proc.stderr, records_in(tmp_path, before))


def start_release(tmp_path, version, extra=None):
    """The release as a background process (for concurrent-release and kill tests)."""
    return subprocess.Popen(release_cmd(version, extra), cwd=REPO, env=env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)


def fleet_versions(fleet):
    """What every host really runs ({host: version reported by its process}) and has active on disk."""
    running = {h["name"]: h.get("version") for h in fleet.status()["hosts"]}
    on_disk = {}
    for host in running:
        proc = fleet.exec(host, "readlink", "/srv/order-router/current")
        on_disk[host] = os.path.basename(proc.stdout.strip()) if proc.returncode == 0 else None
    return running, on_disk


def assert_whole_fleet_on(fleet, version):
    running, on_disk = fleet_versions(fleet)
    assert set(running.values()) == {version}, running
    assert set(on_disk.values()) == {version}, on_disk


def lb_status(fleet):
    """``{server: status}`` of the order_router backend from HAProxy's own ``show stat`` (UP, DRAIN, MAINT...)."""
    import csv
    import io

    rows = csv.DictReader(io.StringIO(fleet.haproxy("show stat").lstrip("# ")))
    return {r["svname"]: r["status"] for r in rows if r["pxname"] == "order_router" and r["svname"] not in (
        "FRONTEND", "BACKEND")}


class Clients:
    """Clients sending orders (with one flag, or none) through HAProxy in the background, until stopped: the
    reports say how many requests failed while lockstep worked."""

    def __init__(self, fleet, flag=None, rate=20):
        self.fleet, self.flag, self.rate, self.reports = fleet, flag, rate, []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            self.reports.append(self.fleet.traffic(rate=self.rate, seconds=1, flag=self.flag))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=30)

    @property
    def succeeded(self):
        return sum(r["succeeded"] for r in self.reports)

    @property
    def failed(self):
        return sum(r["failed"] for r in self.reports)

    @property
    def errors(self):
        out = {}
        for r in self.reports:
            for k, v in r["errors"].items():
                out[k] = out.get(k, 0) + v
        return out
