# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for lockstep.release.lock: runs the module on the lock's host, or its step in the worker when that host is
the controller itself (``GuardedAction.runs_here``); if the lock's host is unreachable, the result is an ordinary
failure, so Ansible does not drop the play's hosts (the ones to roll back among them)."""

from __future__ import annotations

from ansible_collections.lockstep.release.plugins.module_utils.lock_step import ARGUMENT_SPEC, step
from ansible_collections.lockstep.release.plugins.plugin_utils.guard import GuardedAction


class ActionModule(GuardedAction):
    _requires_connection = True
    # The lock on the controller (the fleet's load balancer host, by default): a few file operations in the worker.
    HERE = (ARGUMENT_SPEC, step)
