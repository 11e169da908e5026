"""The operator's tools (verify.yml, halt.yml, resume.yml, bin/lockstep audit) run for real against the fleet."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request

from release_helpers import REPO, env, release

HOSTS = ["h1", "h2", "h3", "h4"]


def fleet_on_2_1_0(fleet, hosts=4):
    """A uniform 2.1.0 fleet that still keeps 1.0.0 on disk (the rollback target), as a release leaves it."""
    fleet.up(hosts=hosts, version="1.0.0")
    fleet.install("2.1.0")  # switches current; the running 1.0.0 processes are left alone
    for host in fleet.hosts:
        in_host(fleet, host, "/srv/order-router/current/bin/ctl restart >/dev/null")
    deadline = time.monotonic() + 20
    while {h["name"]: h.get("version") for h in fleet.status()["hosts"]} != {h: "2.1.0" for h in fleet.hosts}:
        assert time.monotonic() < deadline, fleet.status()
        time.sleep(0.1)


def playbook(tmp_path, name, extra=None):
    return release(tmp_path, None, extra=extra, playbook=name)


def audit_records(run):
    return [r for r in run.records if r.get("event") == "audit"]


def lockstep(tmp_path, *args, input=None):
    return subprocess.run([os.path.join(REPO, "bin", "lockstep"), *args], cwd=REPO, env=env(tmp_path),
                          capture_output=True, text=True, timeout=60, input=input)


def frontend_status(path="/health"):
    try:
        with urllib.request.urlopen("http://127.0.0.1:8000" + path, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def in_host(fleet, host, script):
    proc = fleet.exec(host, "sh", "-c", script)
    assert proc.returncode == 0, (host, script, proc.stdout, proc.stderr)
    return proc
