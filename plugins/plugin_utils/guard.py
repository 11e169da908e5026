# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller-side helpers shared by lockstep's action plugins."""

from __future__ import annotations

from ansible.errors import AnsibleConnectionFailure
from ansible.plugins.action import ActionBase


class GuardedAction(ActionBase):
    """Run the same-named module, turning an unreachable host into a failed result.

    Ansible drops an unreachable host from the rest of the play and from every later play without failing the
    others; a block's rescue never sees it. A release must not lose a host that way, so every lockstep task that
    touches a host reports "unreachable" as an ordinary failure that the phase's rescue handles.
    """

    def run_guarded(self, module_args, task_vars, module_name=None):
        try:
            return self._execute_module(module_name=module_name or self._task.action, module_args=module_args,
                                        task_vars=task_vars)
        except AnsibleConnectionFailure as e:
            return dict(failed=True, changed=False, lockstep_unreachable=True, lockstep_check="reachability",
                        msg="host unreachable: %s" % (e.message or e))

    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        return self.run_guarded(self._task.args, task_vars)
