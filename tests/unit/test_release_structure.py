"""What silently disables safety is refused by construction (issue 19, item 3).

In a play, a task that fails on a host outside a ``rescue`` drops that host from every later play of the run (the
rollback's included); a failing ``run_once`` task fails its whole batch the same way (measured in
../shared/engine-spike). So inside the release's phases every task that can fail sits in a block with a rescue
that records the halt, or is an action that reports instead of failing (a gate with ``halt: false``, the outcome).
A new task that breaks this fails here, before any fleet sees it."""

from __future__ import annotations

import glob
import os

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The roles a release runs (playbooks/release.yml and rollback.yml); the audit and the kill switch refuse with
# plain asserts on purpose, before they touch anything.
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
ALLOWED = {
    ("roles/finish/tasks/main.yml", "Finish | the release did not succeed"):
        "the run's non-zero exit, the last task of the last play: nothing comes after it to drop a host from",
}
TASK_KEYS = {"name", "when", "vars", "register", "delegate_to", "delegate_facts", "run_once", "become", "tags",
             "loop", "loop_control", "changed_when", "failed_when", "no_log", "notify", "environment", "args",
             "any_errors_fatal", "ignore_errors", "check_mode", "throttle", "until", "retries", "delay",
             "become_user", "timeout", "listen"}


def action_of(task):
    keys = [k for k in task if k not in TASK_KEYS]
    assert len(keys) == 1, task
    return keys[0]


def included(task, role):
    """``(role, file)`` of a static include of lockstep's own task files, or None (a user's hook, say)."""
    if "ansible.builtin.include_tasks" in task:
        name = task["ansible.builtin.include_tasks"]
        return None if "{{" in str(name) else (role, name)
    target = task.get("ansible.builtin.include_role") or task.get("ansible.builtin.import_role")
    if isinstance(target, dict) and str(target.get("name", "")).startswith("lockstep.release."):
        return target["name"].rsplit(".", 1)[1], "%s.yml" % target.get("tasks_from", "main")
    return None


def unprotected(tasks, path, protected=False, role=None, follow=None):
    """``(path, name, action)`` of every task that can fail outside a rescue; ``follow(role, file, protected)``
    walks the task files it includes, in the context it includes them."""
    for task in tasks or []:
        if "block" in task:
            yield from unprotected(task["block"], path, protected or bool(task.get("rescue")), role, follow)
            yield from unprotected(task.get("rescue"), path, protected, role, follow)
            yield from unprotected(task.get("always"), path, protected, role, follow)
            continue
        action = action_of(task)
        target = included(task, role)
        if target and follow:
            yield from follow(target[0], target[1], protected)
        args = task[action] if isinstance(task[action], dict) else {}
        if protected or action in REPORTING or args.get("halt") is False:
            continue
        yield path, task.get("name"), action


def release_tasks():
    """Every task of the release's phases, each in the context the playbooks reach it: from each role's
    ``main.yml`` and the entry points the playbooks include (``stage``, ``plan``), through every include."""
    seen = set()

    def follow(role, name, protected):
        if (role, name, protected) in seen:
            return
        seen.add((role, name, protected))
        path = os.path.join("roles", role, "tasks", name)
        with open(os.path.join(REPO, path)) as f:
            yield from unprotected(yaml.safe_load(f), path, protected, role, follow)

    for role in PHASES:
        if os.path.exists(os.path.join(REPO, "roles", role, "tasks", "main.yml")):
            yield from follow(role, "main.yml", False)
    yield from follow("rollout", "stage.yml", False)
    yield from follow("rollback", "plan.yml", False)
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
    ]
    assert [name for _, name, _ in unprotected(tasks, "t.yml")] == ["deploy", "gate", "rescue fails", "no rescue"]
