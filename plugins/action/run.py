# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for lockstep.release.run: runs the module; an unreachable host becomes a failed result."""

from __future__ import annotations

from ansible_collections.lockstep.release.plugins.plugin_utils.guard import GuardedAction


class ActionModule(GuardedAction):
    _requires_connection = True
