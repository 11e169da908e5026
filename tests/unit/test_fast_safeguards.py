"""Safeguards whose proof was only a fleet test (tests/mutate_safeguards.py), each proven here without the fleet.

Real parts throughout: modules run as Ansible runs them, action plugins and the ledger callback inside a real
``ansible-playbook`` on localhost, services are stdlib HTTP servers on 127.0.0.1, the load balancer a real HAProxy on
a Unix socket, host states are what the real state module reads from releases staged by the real deploy module.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import time

import pytest
from conftest import REPO, _clean_env, call_module

from ansible_collections.lockstep.release.plugins.module_utils import ledger
from ansible_collections.lockstep.release.plugins.module_utils.haproxy_api import servers
from ansible_collections.lockstep.release.plugins.plugin_utils.audit import judge, message

PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def closed_port():
    """A port on 127.0.0.1 that nothing listens on (the kernel chose it, then it was given back)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --- smoke commands (plugins/modules/run.py) -----------------------------------------------------------------------

def test_a_smoke_command_that_exits_non_zero_fails_the_check_and_stops_the_rest(run_module, tmp_path):
    never = tmp_path / "ran-after-the-failure"
    rc, res = run_module("run", {"commands": ["true", "echo broken >&2; exit 3", "touch %s" % never]})
    assert rc != 0 and res["failed"] is True, res
    assert res["msg"] == "smoke command 'echo broken >&2; exit 3' exited 3: broken", res
    assert [(r["cmd"], r["rc"]) for r in res["results"]] == [("true", 0), ("echo broken >&2; exit 3", 3)], res
    assert not never.exists()
    rc, res = run_module("run", {"commands": ["true", "test 1 -eq 1"]})
    assert rc == 0 and not res.get("failed"), res


# --- the unreachable guard (plugins/plugin_utils/guard.py) ---------------------------------------------------------

def test_an_unreachable_host_is_a_failed_result_the_rescue_sees_never_a_host_dropped_from_the_play(run_play):
    # ssh to a port nothing listens on: Ansible would mark the host unreachable and drop it from the play, past every
    # rescue (the assertions below would never run). The guard makes it an ordinary failure that names the cause.
    unreachable = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": closed_port()}
    run_play(({"lockstep.release.run": {"commands": ["true"]}, "vars": unreachable}, [
        "out is failed",
        "out.lockstep_unreachable",
        "out.lockstep_check == 'reachability'",
        "out.lockstep_never_connected",  # ssh never got a session: the module did not run
        "out.msg.startswith('host unreachable: ')",
    ]))


# --- the plan's input (plugins/action/plan.py) ---------------------------------------------------------------------

def plan_task(artifact_dir, version="2.1.0", **args):
    return {"lockstep.release.plan": dict({
        "version": version, "artifact_dir": str(artifact_dir), "artifact_name": "order-router-{version}.tar.gz",
        "manifest_name": "order-router-{version}.manifest.json", "group": "app", "group_hosts": ["h1", "h2", "h3"],
        "waves": ["100%"], "lb": "none"}, **args)}


@pytest.fixture
def artifact_dir(artifacts, tmp_path):
    """The real 2.1.0 artifact and its manifest, in a directory of their own."""
    out = tmp_path / "artifacts"
    out.mkdir()
    tarball, manifest = artifacts["2.1.0"]
    shutil.copy(tarball, out)
    (out / "order-router-2.1.0.manifest.json").write_text(json.dumps(manifest))
    return out


def test_a_misspelt_lockstep_variable_is_refused_never_left_to_its_default(run_play, artifact_dir):
    run_play((plan_task(artifact_dir), [
        "out is failed",
        "'refused before touching any host: unknown variable(s): lockstep_wave (did you mean lockstep_waves?)' "
        "in out.msg",
        "out.lockstep_gate.gate == 'input'",
    ]), args=("-e", "lockstep_wave=['50%', '100%']"))
    run_play((plan_task(artifact_dir), ["out is not failed"]), args=("-e", "lockstep_canary=1"))


def test_a_manifest_that_lies_about_the_flags_of_its_own_artifact_is_refused(run_play, tmp_path, artifact_dir):
    lying = tmp_path / "lying"
    lying.mkdir()
    shutil.copy(artifact_dir / "order-router-2.1.0.tar.gz", lying)
    manifest = json.loads((artifact_dir / "order-router-2.1.0.manifest.json").read_text())
    manifest["flags"] = [dict(f, meaning="something else") if f["name"] == "rli" else f for f in manifest["flags"]]
    (lying / "order-router-2.1.0.manifest.json").write_text(json.dumps(manifest))
    run_play(
        (plan_task(lying, flags_file="flags.json"), [
            "out is failed",
            "'and the artifact\\'s own flags file disagree: flag rli: manifest says \\'something else\\'' in out.msg",
            "'(flag-manifest)' in out.msg",
        ]),
        (plan_task(artifact_dir, flags_file="flags.json"), ["out is not failed"]),
    )


# --- the audit (plugins/plugin_utils/audit.py, through lockstep.release.audit) --------------------------------------

def version_route(version, directory=None, pid=100):
    return 200, {"version": version, "directory": directory, "pid": pid}


def test_the_audit_names_a_process_that_runs_another_version_than_the_fleet(run_play, http_service):
    svc = http_service({"/h1/version": version_route("2.1.0", pid=101), "/h2/version": version_route("2.1.0", pid=102),
                        "/h3/version": version_route("2.0.0", pid=103)})
    urls = {h: "%s/%s/version" % (svc.url, h) for h in ("h1", "h2", "h3")}
    run_play(({"lockstep.release.audit": {"urls": urls, "layers": ["http"]}}, [
        "out is failed",
        "out.lockstep_audit.version == '2.1.0'",
        "out.lockstep_gate.halted == [{'host': 'h3', 'message': 'process 103 runs 2.0.0, the fleet runs 2.1.0'}]",
    ]), ({"lockstep.release.audit": {"urls": urls, "layers": ["http"], "expect": "2.0.0"}}, [
        "out is failed",
        "out.lockstep_gate.halted | map(attribute='host') | list == ['h1', 'h2']",
    ]))


def test_the_audit_names_a_process_started_from_outside_the_release_tree(run_play, http_service, tmp_path):
    base = tmp_path / "srv" / "order-router"
    inside = str(base / "releases" / "2.1.0")
    outside = str(tmp_path / "home" / "ops" / "order-router-2.1.0")
    svc = http_service({"/h1/version": version_route("2.1.0", inside, 101),
                        "/h2/version": version_route("2.1.0", outside, 102)})
    urls = {h: "%s/%s/version" % (svc.url, h) for h in ("h1", "h2")}
    run_play(({"lockstep.release.audit": {"urls": urls, "layers": ["http"], "base": str(base)}}, [
        "out is failed",
        "out.lockstep_gate.halted == [{'host': 'h2', 'message': 'process 102 was started from %s, outside the "
        "release tree (expected %s)'}]" % (outside, inside),
    ]), ({"lockstep.release.audit": {"urls": {"h1": urls["h1"]}, "layers": ["http"], "base": str(base)}}, [
        "out is not failed",
    ]))


def test_a_halt_is_confirmed_only_when_no_host_answers_and_every_stop_succeeded(run_play, http_service):
    svc = http_service({"/h2/version": version_route("2.1.0", pid=202)})
    gone = "http://127.0.0.1:%d/version" % closed_port()
    urls = {"h1": gone, "h2": svc.url + "/h2/version", "h3": gone}
    stopped = {"urls": urls, "layers": ["http"], "service": "stopped", "gate": "halt"}
    run_play(({"lockstep.release.audit": dict(stopped, errors={"h3": "ctl stop exited 1"})}, [
        "out is failed",
        "out.lockstep_gate.halted | map(attribute='host') | list == ['h2', 'h3']",
        "out.lockstep_gate.halted[0].message.startswith('not confirmed stopped: still answers on http://127.0.0.1:')",
        "'(version 2.1.0, pid 202)' in out.lockstep_gate.halted[0].message",
        "out.lockstep_gate.halted[1].message == 'not confirmed stopped: stop failed: ctl stop exited 1'",
        "out.msg.startswith('halt not confirmed on h2, h3: ')",
    ]), ({"lockstep.release.audit": dict(stopped, urls={"h1": gone, "h3": gone})}, [
        "out is not failed",
        "out.lockstep_audit.table.startswith('LOCKSTEP HALT: every host stopped and out of the load balancer')",
    ]))


@pytest.fixture
def haproxy_backend(tmp_path):
    """``haproxy_backend({server: "ip:port"}) -> admin socket``: a real HAProxy whose backend ``app`` lists those
    servers (no health checks: each serves), with nothing bound on TCP."""
    started = []

    def start(backend):
        if shutil.which("haproxy") is None:
            pytest.fail("haproxy is not installed (make setup installs it)")
        sock = tmp_path / "haproxy-admin.sock"
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text("global\n    stats socket %s mode 600 level admin\ndefaults\n    mode http\n"
                       "    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n"
                       "frontend f\n    bind unix@%s/front.sock\n    default_backend app\nbackend app\n%s" % (
                           sock, tmp_path, "".join("    server %s %s\n" % s for s in sorted(backend.items()))))
        started.append(subprocess.Popen(["haproxy", "-f", str(cfg)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 5
        while not sock.exists():
            assert time.monotonic() < deadline, "haproxy did not start"
            time.sleep(0.05)
        return str(sock)

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(timeout=5)


def test_the_audit_names_a_backend_haproxy_serves_that_the_inventory_does_not_know(run_play, http_service,
                                                                                   haproxy_backend):
    svc = http_service({"/h1/version": version_route("2.1.0"), "/h2/version": version_route("2.1.0")})
    addr = svc.url.split("//", 1)[1]
    lb = servers(haproxy_backend({"h1": addr, "h2": addr, "h9": "127.0.0.1:9"}), "app")
    assert lb["h9"]["serving"], lb
    urls = {h: "%s/%s/version" % (svc.url, h) for h in ("h1", "h2")}
    run_play(({"lockstep.release.audit": {"urls": urls, "layers": ["http"], "lb_servers": lb}}, [
        "out is failed",
        "out.lockstep_gate.halted == [{'host': 'h9', 'message': 'HAProxy serves traffic to h9 (127.0.0.1:9), which "
        "is not in the inventory group'}]",
    ]), ({"lockstep.release.audit": {"urls": urls, "layers": ["http"],
                                     "lb_servers": {h: s for h, s in lb.items() if h != "h9"}}}, [
        "out is not failed",
    ]))


def host_state(staged_template, where, tamper=False):
    """The real state module's ``lockstep_state`` of a host base holding the real 2.0.0 and 2.1.0 staged by the
    deploy module, 2.1.0 active; with ``tamper``, a file of the active release edited on the host."""
    base = where / "srv" / "order-router"
    shutil.copytree(staged_template, base, symlinks=True)
    os.symlink("releases/2.1.0", base / "current")
    if tamper:
        (base / "releases" / "2.1.0" / "routing.py").write_text("# edited on the host\n")
    rc, res = call_module(where, "state", {"base": str(base), "flags_file": "flags.json"})
    assert rc == 0, res
    return res["lockstep_state"]


def test_the_audit_names_an_active_release_that_fails_its_manifest_even_on_every_host_alike(staged_template,
                                                                                            tmp_path):
    # The same edit on every host: the fleet agrees with itself, so only the manifest can tell.
    states = {h: host_state(staged_template, tmp_path / h, tamper=True) for h in ("h1", "h2")}
    audit = judge(["h1", "h2"], {}, {}, states=states, layers=("ssh",))
    assert not audit["passed"], audit
    assert {p["host"] for p in audit["problems"]} == {"h1", "h2"}, audit
    for p in audit["problems"]:
        assert p["message"].startswith("active release 2.1.0 does not match its manifest: "), p
    clean = {h: host_state(staged_template, tmp_path / ("clean-" + h)) for h in ("h1", "h2")}
    assert judge(["h1", "h2"], {}, {}, states=clean, layers=("ssh",))["passed"]


def test_the_audit_names_a_host_that_does_not_report_over_ssh(staged_template, tmp_path):
    states = {"h1": host_state(staged_template, tmp_path / "h1")}
    errors = {"h2": "host unreachable: ssh: connect to host 127.0.0.12 port 22: Connection refused"}
    audit = judge(["h1", "h2"], {}, {}, states=states, errors=errors, layers=("ssh",))
    assert audit["problems"] == [{"host": "h2", "message": "does not report over SSH: " + errors["h2"]}], audit
    assert message(audit).startswith("fleet audit failed on h2: "), audit
    assert judge(["h1"], {}, {}, states=states, layers=("ssh",))["passed"]


# --- gates (plugins/action/gate.py) --------------------------------------------------------------------------------

def test_a_gate_reads_the_version_a_release_declares_its_service_reports_as_that_release(run_play, http_service):
    # Release 2.1.0-pkg2 packages a service that reports 7.3.1 (its manifest's service_version, kept in the state).
    svc = http_service({"/h1/version": (200, {"version": "7.3.1"}), "/h2/version": (200, {"version": "7.3.0"})})
    urls = {h: "%s/%s/version" % (svc.url, h) for h in ("h1", "h2")}
    state = {"active_version": "2.1.0-pkg2", "active_valid": True,
             "running": {"version": "2.1.0-pkg2", "from_active": True, "pid": 100},
             "releases": [{"version": "2.1.0-pkg2", "service_version": "7.3.1", "valid": True}]}
    run_play(({"lockstep.release.gate": {"gate": "wave", "expect": {"h1": "2.1.0-pkg2"}, "states": {"h1": state},
                                         "version_urls": urls}}, [
        "out is not failed",
        "out.lockstep_gate.hosts.h1.reported_version == '7.3.1'",
    ]), ({"lockstep.release.gate": {"gate": "wave", "expect": {"h1": "2.1.0-pkg2", "h2": "2.1.0-pkg2"},
                                    "state_hosts": [], "version_urls": urls,
                                    "reports": {"2.1.0-pkg2": "7.3.1"}}}, [
        "out is failed",
        "out.lockstep_gate.halted == [{'host': 'h2', 'message': 'reports 7.3.0 (expected 2.1.0-pkg2)'}]",
    ]))


# --- the release lock (plugins/modules/lock.py) --------------------------------------------------------------------

def test_the_runs_outcome_is_on_disk_when_its_lock_is_free(run_module, tmp_path):
    path = tmp_path / "lib" / "lockstep" / "release.lock"
    owner = {"user": "alice", "controller": socket.gethostname(), "pid": os.getpid(), "version": "2.1.0"}
    rc, res = run_module("lock", {"path": str(path), "run_id": "run-1", "owner": owner})
    assert rc == 0 and path.exists(), res
    rc, res = run_module("lock", {"path": str(path), "run_id": "run-1", "state": "released",
                                  "outcome": {"status": "rolled_back", "serving": "2.0.0"}})
    assert rc == 0 and res["changed"] is True, res
    assert not path.exists()
    outcome = json.loads((tmp_path / "lib" / "lockstep" / "release.lock.outcome").read_text())
    assert {k: outcome[k] for k in ("status", "serving", "run_id", "version")} == {
        "status": "rolled_back", "serving": "2.0.0", "run_id": "run-1", "version": "2.1.0"}, outcome
    assert outcome["finished"].endswith("Z"), outcome


# --- the ledger callback (plugins/callback/ledger.py) --------------------------------------------------------------

def ledger_env(work, **extra):
    env = _clean_env(str(work))
    env = {k: v for k, v in env.items() if not k.startswith("LOCKSTEP_")}
    env.update(ANSIBLE_CALLBACKS_ENABLED="lockstep.release.ledger", LOCKSTEP_LEDGER_DIR=str(work / "ledger"),
               LOCKSTEP_LEDGER_ANCHOR_DIR=str(work / "anchors"), TMPDIR=str(work / "tmp"))
    (work / "tmp").mkdir(exist_ok=True)
    env.update(extra)
    return env


def ledger_records(work):
    (path,) = sorted((work / "ledger").glob("*.jsonl"))
    return ledger.read_records(str(path))


def write_playbook(work, plays):
    path = work / "play.yml"
    path.write_text(json.dumps(plays))
    return str(path)


def test_ansibles_own_argument_check_of_a_role_ends_as_a_refusal(tmp_path):
    # A role checked against lockstep's own argument spec (the release's input), given a load balancer it has not.
    role = tmp_path / "roles" / "release_input"
    for part in ("meta", "tasks", "defaults"):
        (role / part).mkdir(parents=True)
    shutil.copy(os.path.join(REPO, "roles", "preflight", "meta", "argument_specs.yml"), role / "meta")
    shutil.copy(os.path.join(REPO, "roles", "common", "defaults", "main.yml"), role / "defaults")  # the specs' defaults
    (role / "tasks" / "main.yml").write_text("- name: role task\n  ansible.builtin.debug:\n    msg: role-task-ran\n")
    playbook = write_playbook(tmp_path, [{"name": "release", "hosts": "localhost", "gather_facts": False,
                                          "roles": ["release_input"]}])
    proc = subprocess.run([PLAYBOOK, "-i", "localhost,", "-c", "local", playbook, "-e", "lockstep_version=2.1.0",
                           "-e", "lockstep_base=/srv/order-router", "-e", "lockstep_lb=nginx"],
                          capture_output=True, text=True, timeout=120, cwd=str(tmp_path), env=ledger_env(tmp_path))
    assert proc.returncode != 0 and "role-task-ran" not in proc.stdout, proc.stdout + proc.stderr
    finished = ledger_records(tmp_path)[-1]
    assert finished["event"] == "release_finished", finished
    assert finished["status"] == "refused", finished
    assert finished["halted_by"]["gate"] == "input" and finished["halted_by"]["host"] == "controller", finished
    assert finished["halted_by"]["message"].startswith("refused before touching any host: "), finished
    assert "lockstep_lb" in finished["halted_by"]["message"] and "nginx" in finished["halted_by"]["message"], finished


def test_a_first_release_records_that_its_hosts_had_nothing_before(tmp_path, staged_template):
    # The host was bare when the release started; later states see the new release. The playbook's word (set_stats:
    # before none) is the record's, not the first version the callback happened to see.
    staged = tmp_path / "staged" / "order-router"
    shutil.copytree(staged_template, staged, symlinks=True)
    os.symlink("releases/2.1.0", staged / "current")
    state = "lockstep.release.state"
    playbook = write_playbook(tmp_path, [{"name": "release", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "state before", state: {"base": str(tmp_path / "bare" / "order-router")}},
        {"name": "state after", state: {"base": str(staged)}},
        {"name": "report", "ansible.builtin.set_stats": {"data": {
            "lockstep_status": "succeeded", "lockstep_version_before": None, "lockstep_version_after": "2.1.0",
            "lockstep_hosts": {"localhost": {"before": None, "after": "2.1.0", "phase": "finish", "result": "ok"}}}}},
    ]}])
    proc = subprocess.run([PLAYBOOK, "-i", "localhost,", "-c", "local", "-e",
                           "ansible_python_interpreter=%s" % sys.executable, playbook],
                          capture_output=True, text=True, timeout=120, cwd=str(tmp_path), env=ledger_env(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = ledger_records(tmp_path)
    assert [ledger.state_version(r["state"]) for r in records if r["event"] == "host_state"] == [None, "2.1.0"]
    finished = records[-1]
    assert finished["event"] == "release_finished" and finished["version_before"] is None, finished
    assert finished["hosts"]["localhost"]["before"] is None, finished["hosts"]
    assert finished["hosts"]["localhost"]["after"] == "2.1.0", finished["hosts"]


def test_a_ledger_that_breaks_mid_release_falls_back_and_the_run_goes_on(tmp_path):
    # Once the run holds the release lock, stopping would strand it: the records go on in a fallback file instead.
    go, started = tmp_path / "go", tmp_path / "started"
    lock = tmp_path / "lock" / "release.lock"
    playbook = write_playbook(tmp_path, [{"name": "release", "hosts": "localhost", "gather_facts": False, "tasks": [
        {"name": "take the lock", "lockstep.release.lock": {"path": str(lock), "run_id": "run-1",
                                                            "owner": {"user": "ci", "version": "2.1.0"}}},
        # Says when its module runs: its worker has written the module's file by then, with no limit on its size.
        {"name": "the disk fills up", "ansible.builtin.command": {"argv": [
            "sh", "-c", 'touch "$1"; i=0; while [ ! -e "$2" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done',
            "sh", str(started), str(go)]}},
        {"name": "a failure the ledger must record", "ansible.builtin.fail": {"msg": "recorded-failure"},
         "ignore_errors": True},
        {"name": "after the break", "ansible.builtin.debug": {"msg": "task-after-the-break-ran"}},
    ]}])
    # Big enough that every record after the break fits in the fallback file, which is held to the same size.
    padding = "x" * 8192
    proc = subprocess.Popen([PLAYBOOK, "-i", "localhost,", "-c", "local", "-e",
                             "ansible_python_interpreter=%s" % sys.executable, "-e", "padding=" + padding, playbook],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(tmp_path),
                            env=ledger_env(tmp_path))
    try:
        deadline = time.monotonic() + 60
        # The lock's record is in the ledger once the next task's module runs (Ansible's linear strategy handles a
        # task's results before it starts the next). A limit set earlier would reach that task's worker, forked
        # after it, and fail its module's file instead of the ledger.
        while not (lock.exists() and started.exists()):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
            time.sleep(0.05)
        (path,) = sorted((tmp_path / "ledger").glob("*.jsonl"))
        # The controller can no longer grow any file past the ledger's size: the next record cannot be appended.
        size = os.path.getsize(path)
        resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (size, size))
        go.write_text("")
        out = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "task-after-the-break-ran" in out, out
    said = " ".join(out.split())  # ansible-core 2.16 wraps an error at the terminal's width
    assert "records continue in" in said and "stopping the release" not in said, out
    (fallback,) = (tmp_path / "tmp").glob("lockstep-ledger-fallback-*.jsonl")
    records = ledger.read_records(str(fallback))
    assert records[0]["event"] == "ledger_fallback" and records[0]["ledger"] == str(path), records[0]
    assert any(r["event"] == "host_failed" and r["message"] == "recorded-failure" for r in records), records
    assert records[-1]["event"] == "release_finished" and records[-1]["ledger_broken"].startswith(
        "cannot append to ledger"), records[-1]
