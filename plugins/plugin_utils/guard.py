# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side helpers shared by lockstep's action plugins."""

from __future__ import annotations

import re

from ansible import context
from ansible.errors import AnsibleConnectionFailure
from ansible.plugins.action import ActionBase

from ansible_collections.lockstep.release.plugins.plugin_utils.secrets import action_secrets, scrub_text

# ssh's own words when it never got a session: the module cannot have run. Anything else (a session that closed,
# a broken pipe, a timeout) may have come after the module started changing the host.
NEVER_CONNECTED = re.compile(r"connect to host \S+ port \d+: |Could not resolve hostname|Host key verification failed")


def selection_problem():
    """Why this ansible-playbook run may not change a host, or None: a task selection (``--tags``,
    ``--skip-tags always``, ``--start-at-task``, ``--step``; AWX's job tags too) leaves out lockstep's gates and
    rollback while the tasks it keeps still switch hosts, and a run whose tasks all skip would report success."""
    args = context.CLIARGS
    used = []
    tags = [t for t in (args.get("tags") or ()) if t != "all"]
    if tags:
        used.append("--tags %s" % ",".join(tags))
    # lockstep's own tasks carry no tag but "always": skipping another tag (molecule's "notest") skips none of them.
    skipped = sorted(set(args.get("skip_tags") or ()) & {"always", "all"})
    if skipped:
        used.append("--skip-tags %s" % ",".join(skipped))
    if args.get("start_at_task"):
        used.append("--start-at-task %r" % args["start_at_task"])
    if args.get("step"):
        used.append("--step")
    if not used:
        return None
    return ("refused before touching any host: %s would run part of the release without its gates and rollback; "
            "lockstep runs every task of its playbooks (selection)" % " ".join(used))


class GuardedAction(ActionBase):
    """Run the same-named module, turning an unreachable host into a failed result.

    Ansible drops an unreachable host from the rest of the play and from every later play without failing the
    others; a block's rescue never sees it. A release must not lose a host that way, so every lockstep task that
    touches a host reports "unreachable" as an ordinary failure that the phase's rescue handles, and says whether
    ssh never got a session (``lockstep_never_connected``: the module did not run) or lost one (it may have).
    """

    def run_guarded(self, module_args, task_vars, module_name=None):
        refused = selection_problem()
        if refused:
            return dict(failed=True, changed=False, msg=refused, lockstep_check="selection")
        try:
            result = self._execute_module(module_name=module_name or self._task.action, module_args=module_args,
                                          task_vars=task_vars)
        except AnsibleConnectionFailure as e:
            msg = str(e.message or e)
            result = dict(failed=True, changed=False, lockstep_unreachable=True, lockstep_check="reachability",
                          lockstep_never_connected=bool(NEVER_CONNECTED.search(msg)), msg="host unreachable: %s" % msg)
        # A restart command or a version URL that carries a token never comes back in a message.
        return scrub_text(result, action_secrets(task_vars))

    # (argument spec, function(validated args, check_mode) -> result): the module's own work, run in the worker when
    # the task's host is the controller itself (see ``runs_here``), where a module process would cost a Python
    # start and ansible's module_utils for what the worker can do at once.
    HERE = None

    def runs_here(self):
        """Whether the task's host is this controller, as the user running Ansible: the local connection (a
        delegated task's is its delegate's) and no become, where a module would run as this same user here."""
        return (self.HERE is not None and getattr(self._connection, "transport", None) == "local"
                and getattr(self._connection, "become", None) is None)

    def run_here(self, task_vars):
        refused = selection_problem()
        if refused:
            return dict(failed=True, changed=False, msg=refused, lockstep_check="selection")
        spec, function = self.HERE
        dummy, args = self.validate_argument_spec(argument_spec=spec)
        result = function(args, bool(self._task.check_mode))
        # What a module's result says of its call (AnsibleModule adds it): callbacks read a step's arguments there.
        result.setdefault("invocation", {"module_args": args})
        return scrub_text(result, action_secrets(task_vars))

    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        if self.runs_here():
            return self.run_here(task_vars)
        return self.run_guarded(self._task.args, task_vars)
