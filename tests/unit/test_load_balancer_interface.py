"""The load balancer interface (docs/load-balancers.md) on the controller: a task file's answer checked
(``lb_result``), each ``lockstep_lb`` mode's own inputs refused before any host (``plan``), and a release without a
load balancer said in the preflight gate."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

from conftest import REPO, _clean_env
from test_release_preflight import FLEET, preflight

from ansible_collections.lockstep.release.plugins.filter.lockstep import lb_result

BACKENDS = {"h1": {"status": "UP", "serving": True}, "h2": "DRAIN", "h3": {"status": "MAINT", "serving": "false"}}


def test_a_query_is_shaped_like_haproxys_answer():
    out = lb_result(BACKENDS, "query", [])
    assert "lockstep_lb_error" not in out, out
    assert out["serving"] == ["h1"]
    assert out["servers"]["h2"] == {"status": "DRAIN", "serving": False}
    assert out["servers"]["h3"]["serving"] is False


def test_a_step_the_load_balancer_confirmed_passes():
    assert "lockstep_lb_error" not in lb_result(BACKENDS, "drained", ["h2", "h3"])
    assert "lockstep_lb_error" not in lb_result(BACKENDS, "ready", ["h1"])
    assert "lockstep_lb_error" not in lb_result(BACKENDS, "maint", ["h3"])


def test_a_step_not_confirmed_is_the_steps_error():
    out = lb_result(BACKENDS, "drained", ["h1", "h2"], "lb.yml")
    assert out["lockstep_lb_error"] == "lb.yml: servers h1 not drained (not serving) after drained", out
    out = lb_result(BACKENDS, "ready", ["h2"])
    assert "servers h2 not serving after ready" in out["lockstep_lb_error"], out


def test_a_server_missing_from_the_answer_is_an_error():
    out = lb_result(BACKENDS, "drained", ["h4"])
    assert "no server named h4" in out["lockstep_lb_error"], out


def test_no_answer_at_all_is_an_error():
    for answer in (None, "", ["h1"]):
        out = lb_result(answer, "query", [])
        assert "did not set lockstep_lb_backends" in out["lockstep_lb_error"], out
        assert out["servers"] == {} and out["serving"] == []


def test_without_a_load_balancer_the_gate_says_there_is_no_second_source(run_play):
    run_play((preflight(lb="none"), [
        "out.lockstep_gate.passed",
        "out.lockstep_gate.lb == 'none'",
        "'no load balancer' in out.lockstep_gate.message",
        "'no second source' in out.lockstep_gate.message",
    ]))


def plan(tmp_path, **lb):
    artifact = tmp_path / "1.0.0.tar.gz"
    artifact.write_bytes(b"not really a tarball, only its checksum is read")
    manifest = {"version": "1.0.0", "sha256": hashlib.sha256(artifact.read_bytes()).hexdigest()}
    (tmp_path / "1.0.0.manifest.json").write_text(json.dumps(manifest))
    return {"lockstep.release.plan": dict({
        "version": "1.0.0", "artifact_dir": str(tmp_path), "artifact_name": "{version}.tar.gz",
        "manifest_name": "{version}.manifest.json", "group": "app", "group_hosts": FLEET, "waves": ["100%"]}, **lb)}


def test_each_mode_needs_its_own_inputs_before_any_host(run_play, tmp_path):
    tasks = tmp_path / "lb.yml"
    tasks.write_text("---\n")
    run_play(
        (plan(tmp_path, lb="haproxy", lb_hosts=[], haproxy_socket="/run/haproxy.sock"), [
            "out is failed", "'no load balancer host' in out.msg", "'lockstep_lb: none' in out.msg"]),
        (plan(tmp_path, lb="haproxy", lb_hosts=["lb"]), [
            "out is failed", "'lockstep_haproxy_socket' in out.msg"]),
        (plan(tmp_path, lb="tasks", lb_tasks=str(tmp_path / "missing.yml")), [
            "out is failed", "'is not a task file' in out.msg"]),
        (plan(tmp_path, lb="tasks", lb_tasks=str(tasks)), [
            "out is not failed", "'load balancer: task file' in out.lockstep_plan.summary"]),
        (plan(tmp_path, lb="none", lock_host="localhost"), [
            "out is not failed", "'load balancer: none' in out.lockstep_plan.summary",
            "'lock on localhost' in out.lockstep_plan.summary"]),
    )


def test_the_documented_entry_point_does_one_step_as_the_phases_do(tmp_path):
    """``tasks_from: lb``, the entry point ansible-doc documents, includes the file lockstep's phases include
    (``lb_<lockstep_lb>``): one step, its answer in the release record, for a task-file load balancer and for none."""
    mine = tmp_path / "mylb.yml"
    mine.write_text(json.dumps([{"name": "my load balancer answers",
                                 "ansible.builtin.set_fact": {"lockstep_lb_backends": {"a": "DRAIN", "b": "UP"}}}]))
    step = {"ansible.builtin.include_role": {"name": "lockstep.release.common", "tasks_from": "lb"},
            "vars": {"lockstep_lb_tasks": str(mine), "__lockstep_lb_op": "drained", "__lockstep_lb_servers": ["a"]}}
    show = {"ansible.builtin.debug": {"msg": "STEP {{ hostvars['localhost'].__lockstep_record.lb_step | to_json }}"},
            "run_once": True}
    (tmp_path / "play.yml").write_text(json.dumps([
        {"name": mode, "hosts": "app", "gather_facts": False, "vars": {"lockstep_lb": mode}, "tasks": [step, show]}
        for mode in ("tasks", "none")]))
    (tmp_path / "hosts.yml").write_text(json.dumps({"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "children": {"app": {"hosts": {"a": {}, "b": {}}}}, "hosts": {"localhost": {}}}}))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "hosts.yml",
                           "play.yml"], capture_output=True, text=True, timeout=120, cwd=str(tmp_path),
                          env=_clean_env(str(tmp_path)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = [json.loads(line.split("STEP ", 1)[1].rstrip('"').replace('\\"', '"'))
             for line in proc.stdout.splitlines() if '"STEP ' in line]
    assert [s["lb"] for s in steps] == ["tasks", "none"], proc.stdout
    assert steps[0]["servers"]["a"] == {"status": "DRAIN", "serving": False} and "lockstep_lb_error" not in steps[0]
    assert steps[1]["servers"] == {} and "nothing drained" in steps[1]["msg"], steps[1]


def test_haproxy_away_from_the_lock_keeps_the_run_record_in_a_task_of_its_own(tmp_path):
    """The step's file (roles/common/vars/main.yml) as each role that includes a step sees it: HAProxy on the lock's
    host keeps the run record in its own call; on another host (the lock elsewhere; without a load balancer group,
    which only the interface's entry point meets, HAProxy's task runs on localhost) the run record needs its task,
    or the record next to the lock never learns what this run drained."""
    cases = [("haproxy", "lb", None, "haproxy"), ("haproxy", "lb", "a", "haproxy_lock_elsewhere"),
             ("haproxy", "nolb", None, "haproxy"), ("haproxy", "nolb", "a", "haproxy_lock_elsewhere"),
             ("tasks", "lb", "a", "tasks"), ("none", "lb", "a", "none")]
    load = {"ansible.builtin.include_role": {"name": "lockstep.release.common", "tasks_from": "lb_none",
                                             "public": True},
            "vars": {"__lockstep_lb_op": "query"}}
    plays = []
    for lb, group, lock, _ in cases:
        play_vars = {"lockstep_lb": lb, "lockstep_lb_group": group, **({"lockstep_lock_host": lock} if lock else {})}
        plays.append({"name": "case", "hosts": "localhost", "gather_facts": False, "vars": play_vars,
                      "tasks": [load, {"ansible.builtin.debug": {"msg": "FILE {{ __lockstep_lb_file }}."}}]})
    (tmp_path / "play.yml").write_text(json.dumps(plays))
    (tmp_path / "hosts.yml").write_text(json.dumps({"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "children": {"app": {"hosts": {"a": {}}}, "lb": {"hosts": {"lbhost": {}}}}, "hosts": {"localhost": {}}}}))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "hosts.yml",
                           "play.yml"], capture_output=True, text=True, timeout=120, cwd=str(tmp_path),
                          env=_clean_env(str(tmp_path)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    chosen = [line.split("FILE ", 1)[1].split(".", 1)[0] for line in proc.stdout.splitlines() if '"FILE ' in line]
    assert chosen == [want for *_, want in cases], proc.stdout
    for _, _, _, name in cases:
        assert os.path.exists(os.path.join(REPO, "roles", "common", "tasks", "lb_%s.yml" % name)), name
