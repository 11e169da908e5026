# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for lockstep.release.haproxy: runs the module on the load balancer host, or its step in the worker when
that host is the controller itself (``GuardedAction.runs_here``). An unreachable load balancer is an ordinary
failure, or with ``halt: false`` a reported ``lockstep_lb_error``, never a reason for Ansible to drop the play's
hosts (the ones to roll back among them)."""

from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.lockstep.release.plugins.module_utils.haproxy_step import ARGUMENT_SPEC, step
from ansible_collections.lockstep.release.plugins.plugin_utils.guard import GuardedAction


class ActionModule(GuardedAction):
    _requires_connection = True
    # HAProxy on the controller (its runtime API a local socket): the step runs in the worker, no module process.
    HERE = (ARGUMENT_SPEC, step)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        if result.get("lockstep_unreachable") and not boolean(self._task.args.get("halt", True), strict=False):
            result.update(failed=False, lockstep_lb_error=result["msg"])
        return result
