# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter ``lockstep.release.proven_wrong``: which hosts a fleet audit proves serve what the fleet must not serve.

``playbooks/verify.yml`` publishes it as the ``lockstep_audit_proof`` artifact; the AWX release workflow's kill
switch (``awx/halt_proven.yml``) takes out those hosts and no other (``plugin_utils/audit.py`` ``proven_wrong``).
"""

from __future__ import annotations

from ansible_collections.lockstep.release.plugins.plugin_utils.audit import proven_wrong


class FilterModule:
    def filters(self):
        return {"proven_wrong": proven_wrong}
