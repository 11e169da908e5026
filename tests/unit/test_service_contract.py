"""The service contract's minimum: a version (plain text or one JSON field), the process from the pidfile, and the
kernel's view of where that process was started; richer checks only when the service reports more.

The modules run as Ansible runs them, on the real 2.0.0 and 2.1.0 releases staged by the deploy module; processes
are real (``sleep`` started from a release directory), services are real HTTP servers.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from ansible_collections.lockstep.release.plugins.module_utils.release_state import parse_version


@pytest.mark.parametrize("body, field, version, problem", [
    (b"2.1.0\n", None, "2.1.0", None),                                 # plain text, as many services answer
    (b'"2.1.0"', None, "2.1.0", None),                                 # a JSON string
    (b'{"version": "2.1.0", "pid": 7}', None, "2.1.0", None),
    (b'{"build": {"version": "2.1.0"}}', "build.version", "2.1.0", None),
    (b'{"app_version": 3}', "app_version", "3", None),
    (b'{"app": {"about": {"version": "1.4"}}}', "app.about.version", "1.4", None),    # any depth
    (b'{"app.version": "7", "app": {"version": "8"}}', "app.version", "7", None),   # a literal dotted key first
    (b'{"app.version": null, "app": {"version": "8"}}', "app.version", None, "JSON answer has no version"),
    (b'{"build": ["2.1.0"]}', "build.0", None, "JSON answer has no version in field 'build.0'"),  # no list index
    (b'{"status": "ok"}', None, None, "JSON answer has no version in field 'version'"),
    (b'{"build": {"version": {"x": 1}}}', "build.version", None, "JSON answer has no version in field 'build.version'"),
    (b"<html>\n<body>It works</body>\n</html>\n", None, None, "answer is neither JSON nor a one-line"),
    (b"", None, None, "answer is neither JSON nor a one-line"),
    (b"[1, 2]", None, None, "JSON answer is a list"),
])
def test_parse_version(body, field, version, problem):
    got, _, why = parse_version(body, field)
    assert got == version
    assert (why or "").startswith(problem or "")
    assert (why is None) == (problem is None)


@pytest.fixture
def staged(staged_base):
    os.symlink("releases/2.1.0", staged_base / "current")
    return staged_base


@pytest.fixture
def process():
    """``process(cwd) -> Popen``: a real process started from ``cwd``; stopped at teardown."""
    procs = []

    def start(cwd):
        procs.append(subprocess.Popen(["sleep", "120"], cwd=str(cwd), stdin=subprocess.DEVNULL))
        return procs[-1]

    yield start
    for p in procs:
        p.kill()
        p.wait()


def _pidfile(base, pid):
    (base / "run").mkdir(exist_ok=True)
    (base / "run" / "svc.pid").write_text("%d\n" % pid)
    return str(base / "run" / "svc.pid")


def state(run_module, base, **args):
    rc, res = run_module("state", dict(base=str(base), **args))
    assert rc == 0, res
    return res["lockstep_state"]


def test_plain_text_version_and_pidfile_process_started_from_the_active_release(run_module, staged, http_service,
                                                                               process):
    svc = http_service({"/version": (200, "2.1.0\n")})
    proc = process(staged / "releases" / "2.1.0")
    st = state(run_module, staged, version_url=svc.url + "/version", pidfile=_pidfile(staged, proc.pid))
    run = st["running"]
    assert run["version"] == "2.1.0" and run["error"] is None
    assert run["pid"] == proc.pid and run["pid_source"] == "pidfile"
    assert run["cwd"] == str(staged / "releases" / "2.1.0")
    assert run["directory"] is None  # not reported, so not judged
    assert run["from_active"] is True and run["problem"] is None
    assert st["consistent"] is True


def test_pidfile_process_started_elsewhere_is_not_from_the_active_release(run_module, staged, http_service,
                                                                          process):
    svc = http_service({"/version": (200, "2.1.0")})
    proc = process(staged / "releases" / "2.0.0")  # the old release's process kept running
    st = state(run_module, staged, version_url=svc.url + "/version", pidfile=_pidfile(staged, proc.pid))
    assert st["running"]["from_active"] is False
    assert st["running"]["problem"] == "process %d runs in %s (exe %s), not from %s" % (
        proc.pid, staged / "releases" / "2.0.0", os.path.realpath("/usr/bin/sleep"), staged / "releases" / "2.1.0")
    assert st["consistent"] is False


def test_dead_pidfile_process_and_no_pidfile_prove_nothing(run_module, staged, http_service, process):
    svc = http_service({"/version": (200, "2.1.0")})
    proc = process(staged / "releases" / "2.1.0")
    proc.kill()
    proc.wait()
    st = state(run_module, staged, version_url=svc.url + "/version", pidfile=_pidfile(staged, proc.pid))
    assert st["running"]["from_active"] is False
    assert st["running"]["problem"] == "process %d (from the pidfile) is not running" % proc.pid
    st = state(run_module, staged, version_url=svc.url + "/version")
    assert st["running"]["from_active"] is False
    assert st["running"]["problem"].startswith("no process to check")
    assert st["consistent"] is False


def test_json_field_is_configurable_and_nested(run_module, staged, http_service, process):
    svc = http_service({"/status": (200, {"build": {"version": "2.1.0"}, "uptime": 3})})
    proc = process(staged / "releases" / "2.1.0")
    pidfile = _pidfile(staged, proc.pid)
    st = state(run_module, staged, version_url=svc.url + "/status", version_field="build.version", pidfile=pidfile)
    assert st["running_version"] == "2.1.0" and st["consistent"] is True
    # With the default field the same answer has no version: reachable, but nothing to match.
    st = state(run_module, staged, version_url=svc.url + "/status", pidfile=pidfile)
    assert st["running"]["reachable"] is True and st["running_version"] is None
    assert "no version in field 'version'" in st["running"]["error"]
    assert st["consistent"] is False


def test_richer_answer_is_also_checked(run_module, staged, http_service, process):
    """A service that reports its pid and start directory is checked on both, against the kernel."""
    proc = process(staged / "releases" / "2.1.0")
    claims = {"version": "2.1.0", "pid": proc.pid, "directory": str(staged / "releases" / "2.0.0")}
    svc = http_service({"/version": (200, claims)})
    st = state(run_module, staged, version_url=svc.url + "/version")
    assert st["running"]["pid_source"] == "service"
    assert st["running"]["from_active"] is False
    assert st["running"]["problem"].endswith("says it started from %s, not %s" % (
        staged / "releases" / "2.0.0", staged / "releases" / "2.1.0"))
    claims["directory"] = str(staged / "releases" / "2.1.0")
    st = state(run_module, staged, version_url=svc.url + "/version")
    assert st["consistent"] is True


# A supervisor that keeps only a pidfile: starts `sleep` from the resolved `current`, as a plain service would.
RESTART = r"""
import os, signal, subprocess, sys
base = sys.argv[1]
pidfile = os.path.join(base, "run", "svc.pid")
try:
    os.kill(int(open(pidfile).read()), signal.SIGTERM)
except (OSError, ValueError):
    pass
os.makedirs(os.path.dirname(pidfile), exist_ok=True)
p = subprocess.Popen(["sleep", "120"], cwd=os.path.realpath(os.path.join(base, "current")), start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
open(pidfile, "w").write(str(p.pid))
"""


def test_deploy_proves_a_plain_text_service(run_module, staged_base, http_service):
    base = staged_base
    pidfile = base / "run" / "svc.pid"

    def version(method, path, body):
        # What the process in the pidfile runs: the VERSION file of its working directory, as plain text.
        try:
            cwd = os.readlink("/proc/%s/cwd" % pidfile.read_text().strip())
            return 200, open(os.path.join(cwd, "VERSION")).read()
        except (OSError, ValueError):
            return 503, "not running"

    svc = http_service({"/version": version, "/health": (200, "ok")})
    args = dict(base=str(base), state="active", restart_command=[sys.executable, "-c", RESTART, str(base)],
                health_url=svc.url + "/health", version_url=svc.url + "/version", pidfile=str(pidfile), timeout=10)
    try:
        rc, res = run_module("deploy", dict(args, version="2.0.0"))
        assert rc == 0, res
        assert res["lockstep_state"]["consistent"] is True
        rc, res = run_module("deploy", dict(args, version="2.1.0"))
        assert rc == 0, res
        assert res["lockstep_state"]["running"]["cwd"] == str(base / "releases" / "2.1.0")
        # The pidfile names a process that stayed on 2.1.0 while current moved back: the switch is not proven.
        rc, res = run_module("deploy", dict(args, version="2.0.0", restart_command=["true"], timeout=2))
        assert rc != 0
        assert res["lockstep_check"] == "running-version"
        assert "answers 2.1.0" in res["msg"] and "not from %s" % (base / "releases" / "2.0.0") in res["msg"]
    finally:
        try:
            os.kill(int(pidfile.read_text()), signal.SIGTERM)
        except (OSError, ValueError):
            pass


def gate(expect, **extra):
    return {"lockstep.release.gate": dict({"gate": "wave", "expect": expect}, **extra)}


def test_gate_probes_plain_text_and_a_named_field(run_play, http_service):
    svc = http_service({
        "/h1/version": (200, "2.1.0\n"),
        "/h2/status": (200, {"build": {"version": "2.1.0"}}),
        "/h3/status": (200, {"build": {"version": "2.0.0"}}),
        "/h4/version": (200, json.dumps({"status": "ok"})),
    })
    urls = {"h1": svc.url + "/h1/version", "h2": svc.url + "/h2/status#build.version",
            "h3": svc.url + "/h3/status#build.version", "h4": svc.url + "/h4/version"}
    run_play((gate({h: "2.1.0" for h in urls}, version_urls=urls, halt=False), [
        "out.lockstep_gate.hosts.h1.reported_version == '2.1.0'",
        "out.lockstep_gate.hosts.h2.reported_version == '2.1.0'",
        "out.lockstep_gate.halted | map(attribute='host') | list == ['h3', 'h4']",
        "out.lockstep_gate.halted[0].message == 'reports 2.0.0 (expected 2.1.0)'",
        "'no version in field' in out.lockstep_gate.halted[1].message",
    ]))
    # The fragment never reaches the service.
    assert {r[1] for r in svc.requests} == {"/h1/version", "/h2/status", "/h3/status", "/h4/version"}
