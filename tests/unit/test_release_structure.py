"""What silently disables safety is refused by construction (issue 19, item 3).

In a play, a task that fails on a host outside a ``rescue`` drops that host from every later play of the run (the
rollback's included); a failing ``run_once`` task fails its whole batch the same way (measured in
../shared/engine-spike). So inside the release's phases every task that can fail sits in a block with a rescue
that records the halt, or is an action that reports instead of failing (a gate with ``halt: false``, the outcome).
A new task that breaks this fails here, before any fleet sees it."""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys

import yaml
from ansible.release import __version__ as ansible_version
from conftest import _clean_env

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The roles a release runs (playbooks/release.yml and rollback.yml); the audit and the kill switch refuse with
# plain asserts on purpose, before they touch anything.
PLAYBOOKS = ("playbooks/release.yml", "playbooks/rollback.yml")
PHASES = ("preflight", "rollout", "verify", "smoke", "watch", "rollback", "finish", "common")
# Actions that cannot fail a host on their own: they set, say, include or report.
REPORTING = {
    "ansible.builtin.set_fact", "ansible.builtin.debug", "ansible.builtin.meta", "ansible.builtin.set_stats",
    "ansible.builtin.include_role", "ansible.builtin.include_tasks", "ansible.builtin.import_role",
    "ansible.builtin.import_tasks", "ansible.builtin.validate_argument_spec",
    # Decides the status from its arguments and never fails (plugins/action/outcome.py).
    "lockstep.release.outcome",
}
# Unprotected on purpose, each for its reason: (file, task name).
REFUSAL = ("preflight refuses before anything changed: its run_once steps stop every host there on purpose; the host "
           "that ran the step is rescued and records the refusal, and finish gives the lock back from it")
PREFLIGHT = "roles/preflight/tasks/main.yml"
ALLOWED = {
    ("roles/finish/tasks/unlock.yml", "Finish | after_release hook"):
        "the operator's hook, after the lock is given back: its failure fails the run, and only the verdict follows, "
        "on any host left",
    ("roles/finish/tasks/verdict.yml", "Finish | the release did not succeed"):
        "the run's non-zero exit, the last task of the last play: nothing comes after it to drop a host from",
    (PREFLIGHT, "Preflight | the release's input, checked for every host"): REFUSAL,
    (PREFLIGHT, "Preflight | plan - check inputs on the controller before any host is contacted"): REFUSAL,
    (PREFLIGHT, "Preflight | take the fleet's release lock"): REFUSAL,
    (PREFLIGHT, "Preflight | fleet completeness, load balancer, integrity, disk and mixed-fleet gates"): REFUSAL,
    (PREFLIGHT, "Preflight | baseline - the fleet as it is passes the smoke checks"): REFUSAL,
}
TASK_KEYS = {"name", "when", "vars", "register", "delegate_to", "delegate_facts", "run_once", "become", "tags",
             "loop", "loop_control", "changed_when", "failed_when", "no_log", "notify", "environment", "args",
             "any_errors_fatal", "ignore_errors", "check_mode", "throttle", "until", "retries", "delay",
             "become_user", "timeout", "listen"}


def action_of(task):
    keys = [k for k in task if k not in TASK_KEYS]
    assert len(keys) == 1, task
    return keys[0]


def own_files(role, name):
    """The task files of ``role`` a name may be: itself, or for a name templated around a literal part (``lb_{{
    lockstep_lb }}.yml``) every file it can render to. A name that is all template is the operator's (a hook)."""
    if "{{" not in name:
        return [name]
    pattern = re.sub(r"\{\{.*?\}\}", "*", name)
    if pattern.strip("*") in ("", ".yml"):
        return []
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(REPO, "roles", role, "tasks", pattern)))


def included(task, role):
    """``[(role, file), ...]`` that an include of lockstep's own task files may include, or [] (a user's hook, say)."""
    for action in ("ansible.builtin.include_tasks", "ansible.builtin.import_tasks"):
        if action in task:
            return [(role, n) for n in own_files(role, str(task[action]))]
    target = task.get("ansible.builtin.include_role") or task.get("ansible.builtin.import_role")
    if isinstance(target, dict) and str(target.get("name", "")).startswith("lockstep.release."):
        included_role = target["name"].rsplit(".", 1)[1]
        return [(included_role, n) for n in own_files(included_role, "%s.yml" % target.get("tasks_from", "main"))]
    return []


def unprotected(tasks, path, protected=False, role=None, follow=None, once=False):
    """``(path, name, action)`` of every task that can fail outside a rescue, and of every ``run_once`` task that
    can fail at all: a rescue saves only the host that ran it, and the batch's other hosts vanish from every later
    play (see ``test_a_rescue_does_not_save_the_batch_of_a_failed_run_once_task``). ``follow(role, file,
    protected)`` walks the task files it includes, in the context it includes them."""
    for task in tasks or []:
        if "block" in task:
            inner = once or bool(task.get("run_once"))
            yield from unprotected(task["block"], path, protected or bool(task.get("rescue")), role, follow, inner)
            yield from unprotected(task.get("rescue"), path, protected, role, follow, inner)
            yield from unprotected(task.get("always"), path, protected, role, follow, inner)
            continue
        action = action_of(task)
        targets = included(task, role)
        for target in targets if follow else []:
            # A run_once include includes its tasks for one host only: a failure among them is that host's.
            yield from follow(target[0], target[1], protected)
        args = task[action] if isinstance(task[action], dict) else {}
        # An include of the operator's own task file (a hook: its name is a template) can fail like any task.
        operators = action == "ansible.builtin.include_tasks" and not targets
        if (action in REPORTING and not operators) or args.get("halt") is False:
            continue
        if protected and not (once or task.get("run_once")):
            continue
        yield path, task.get("name"), action


def release_tasks():
    """Every task of the release's phases, each in the context the playbooks reach it: from each role's
    ``main.yml`` and the task files the release's playbooks import (``stage``, ``plan``, the hooks, ``prune``,
    ``verdict`` ...), through every include."""
    seen = set()

    def follow(role, name, protected):
        if (role, name, protected) in seen:
            return
        seen.add((role, name, protected))
        path = os.path.join("roles", role, "tasks", name)
        with open(os.path.join(REPO, path)) as f:
            yield from unprotected(yaml.safe_load(f), path, protected, role, follow)

    for role in PHASES:
        # Every entry point a role declares (main, and for common the load balancer interface's lb).
        with open(os.path.join(REPO, "roles", role, "meta", "argument_specs.yml")) as f:
            entries = yaml.safe_load(f)["argument_specs"]
        for entry in entries:
            if os.path.exists(os.path.join(REPO, "roles", role, "tasks", "%s.yml" % entry)):
                yield from follow(role, "%s.yml" % entry, False)
    for path in PLAYBOOKS:
        with open(os.path.join(REPO, path)) as f:
            for play in yaml.safe_load(f):
                for task in play.get("tasks") or []:
                    for target in included(task, None):
                        if target[0] in PHASES:
                            yield from follow(target[0], target[1], False)
    # Every task file of the phases is reached from an entry point: none escapes the scan.
    files = {(role, os.path.basename(p)) for role in PHASES
             for p in glob.glob(os.path.join(REPO, "roles", role, "tasks", "*.yml"))}
    assert files <= {(role, name) for role, name, _ in seen}, files - {(r, n) for r, n, _ in seen}


def test_every_task_of_a_release_that_can_fail_is_rescued_or_reports():
    found = [(path, name, action) for path, name, action in release_tasks() if (path, name) not in ALLOWED]
    assert found == [], "tasks that can fail outside a rescue, dropping hosts from the rollback: %s" % found


def test_the_net_finds_what_it_is_for():
    """The scan itself: an unrescued deploy, a failing run_once step, a rescue that fails on its own."""
    tasks = [
        {"name": "deploy", "lockstep.release.deploy": {"state": "active"}},
        {"name": "gate", "lockstep.release.gate": {"gate": "x"}, "run_once": True},
        {"name": "gate reports", "lockstep.release.gate": {"gate": "x", "halt": False}, "run_once": True},
        {"block": [{"name": "rescued", "lockstep.release.deploy": {}}],
         "rescue": [{"name": "rescue fails", "ansible.builtin.fail": {"msg": "x"}}]},
        {"block": [{"name": "no rescue", "ansible.builtin.command": "true"}]},
        {"name": "a hook", "ansible.builtin.include_tasks": "{{ lockstep_hooks.x }}"},
        {"name": "our own file", "ansible.builtin.include_tasks": "lb.yml"},
        {"block": [{"name": "once, rescued", "ansible.builtin.command": "true", "run_once": True},
                   {"name": "once, reports", "lockstep.release.gate": {"halt": False}, "run_once": True}],
         "rescue": [{"name": "noted", "ansible.builtin.debug": {}}]},
        {"run_once": True, "block": [{"name": "once by its block", "ansible.builtin.assert": {"that": []}}],
         "rescue": [{"name": "noted", "ansible.builtin.debug": {}}]},
    ]
    assert [name for _, name, _ in unprotected(tasks, "t.yml")] == [
        "deploy", "gate", "rescue fails", "no rescue", "a hook", "once, rescued", "once by its block"]


def test_a_rescue_does_not_save_the_batch_of_a_failed_run_once_task(tmp_path):
    """What the scan relies on, on this ansible-core: from 2.17 a failing run_once task is rescued on the host that
    ran it while the play's other hosts vanish from every later play; the same failure inside a run_once include
    fails that host alone (how roles/common/lb.yml and roles/finish/tasks/lock.yml run)."""
    (tmp_path / "fails.yml").write_text(json.dumps([{"name": "fails", "ansible.builtin.command": "false"}]))
    rescue = [{"name": "rescued", "ansible.builtin.debug": {"msg": "rescued {{ inventory_hostname }}"}}]
    later = {"name": "later", "hosts": "all", "gather_facts": False,
             "tasks": [{"name": "later", "ansible.builtin.debug": {"msg": "later {{ inventory_hostname }}"}}]}

    def run(step):
        play = {"name": "step", "hosts": "all", "gather_facts": False,
                "tasks": [{"block": [dict(step, run_once=True)], "rescue": rescue}]}
        (tmp_path / "play.yml").write_text(json.dumps([play, later]))
        (tmp_path / "hosts.yml").write_text(json.dumps({"all": {"hosts": dict.fromkeys(("a", "b", "c"), {}), "vars": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}))
        proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "hosts.yml",
                               "play.yml"], capture_output=True, text=True, timeout=120, cwd=str(tmp_path),
                              env=_clean_env(str(tmp_path)))
        return proc.stdout + proc.stderr

    out = run({"name": "fails", "ansible.builtin.command": "false"})
    assert '"rescued a"' in out and '"later a"' in out, out
    if tuple(int(part) for part in ansible_version.split(".")[:2]) >= (2, 17):
        assert '"later b"' not in out and '"later c"' not in out, out
    else:  # 2.16 fails the task on every host of the batch, each rescued: a halt recorded, the rollback still runs
        assert all('"rescued %s"' % h in out and '"later %s"' % h in out for h in "abc"), out
    out = run({"name": "fails", "ansible.builtin.include_tasks": "fails.yml"})
    assert '"rescued a"' in out and '"rescued b"' not in out, out
    assert all('"later %s"' % h in out for h in "abc"), out


def lb_steps(tasks):
    """Every task of ``tasks`` (blocks and rescues walked) that includes a load balancer step's file."""
    for task in tasks or []:
        for part in ("block", "rescue", "always"):
            yield from lb_steps(task.get(part))
        target = task.get("ansible.builtin.include_role") or {}
        own = task.get("ansible.builtin.include_tasks") or ""
        if str(target.get("tasks_from", "") if isinstance(target, dict) else "").startswith("lb") or \
                str(own).startswith("lb_"):
            yield task


def test_every_load_balancer_step_runs_once_for_the_play():
    """A load balancer step is the load balancer's, not a host's: included run_once, its tasks run for one host. Left
    per host (the kill switch's, the audit's and resume's were, for a while), an operator's task file ran from every
    host at once and raced with itself (seen: the AWX workflow's halt failing on a half-written state). Inside, a
    task file's own tasks must not be run_once themselves: a failing run_once task drops its batch (above)."""
    found = []
    for path in sorted(glob.glob(os.path.join(REPO, "roles", "*", "tasks", "*.yml"))):
        with open(path) as f:
            for task in lb_steps(yaml.safe_load(f)):
                found.append((os.path.relpath(path, REPO), task.get("name")))
                assert task.get("run_once") is True, found[-1]
    # The waves' two, the rehearsal's put-back, the rollback's two, preflight's, finish's, ...
    assert len(found) >= 11, found
    with open(os.path.join(REPO, "roles", "common", "tasks", "lb_tasks.yml")) as f:
        assert "run_once" not in json.dumps(yaml.safe_load(f)), "lb_tasks.yml: a failing run_once task drops its batch"
