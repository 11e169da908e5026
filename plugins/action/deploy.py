# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for lockstep.release.deploy: sends the artifact with the module call itself.

A small artifact travels base64-encoded inside the (pipelined) module arguments: one SSH round trip per host for
the whole stage. A large one is copied to the host's temp directory first. Either way the module checks its sha256
on the host against the manifest, and an unreachable host becomes a failed result.
"""

from __future__ import annotations

import base64
import os

from ansible.errors import AnsibleActionFail, AnsibleConnectionFailure

from ansible_collections.lockstep.release.plugins.plugin_utils.guard import GuardedAction

INLINE_MAX = 4 * 1024 * 1024


class ActionModule(GuardedAction):
    # False on purpose: True makes ActionBase.run() open a connection for a temp dir before run_guarded() can turn
    # an unreachable host into a failure. The rare large artifact makes its temp dir inside the guard below.
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super(GuardedAction, self).run(tmp, task_vars)
        args = dict(self._task.args)
        artifact = args.pop("artifact", None)
        if not artifact or args.get("state") != "staged" or self._task.check_mode:
            result.update(self.run_guarded(args, task_vars))
            return result
        path = self._find_needle("files", artifact) if not os.path.isabs(artifact) else artifact
        try:
            size = os.path.getsize(path)
        except OSError as e:
            raise AnsibleActionFail("artifact %s: %s" % (artifact, e)) from e
        if size <= INLINE_MAX:
            with open(path, "rb") as f:
                args["artifact_b64"] = base64.b64encode(f.read()).decode("ascii")
            result.update(self.run_guarded(args, task_vars))
            return result
        try:
            remote = self._connection._shell.join_path(self._make_tmp_path(), os.path.basename(path))
            self._transfer_file(path, remote)
            self._fixup_perms2((self._connection._shell.tmpdir, remote))
        except AnsibleConnectionFailure as e:
            result.update(failed=True, lockstep_unreachable=True, lockstep_check="reachability",
                          msg="host unreachable: %s" % (e.message or e))
            return result
        args["artifact_path"] = remote
        result.update(self.run_guarded(args, task_vars))
        self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
