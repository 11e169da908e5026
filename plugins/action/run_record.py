# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for lockstep.release.run_record: the same guard as lockstep.release.haproxy (an unreachable lock host is
a failure, or with ``halt: false`` a reported ``lockstep_lb_error``, never a dropped host)."""

from __future__ import annotations

from ansible_collections.lockstep.release.plugins.action.haproxy import ActionModule as _HAProxyAction


class ActionModule(_HAProxyAction):
    HERE = None  # its own module always (haproxy's step is not this module's work)
