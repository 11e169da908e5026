# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for lockstep.release.lock: runs the module on the load balancer host; if that host is unreachable, the
result is an ordinary failure, so Ansible does not drop the play's hosts (the ones to roll back among them)."""

from __future__ import annotations

from ansible_collections.lockstep.release.plugins.plugin_utils.guard import GuardedAction


class ActionModule(GuardedAction):
    _requires_connection = True
