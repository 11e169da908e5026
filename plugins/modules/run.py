#!/usr/bin/python
# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: run
short_description: Run check commands on a host in one module call
version_added: "0.1.0"
description:
  - Runs each command with C(/bin/sh -c) in order and fails on the first that exits non-zero, with its output.
  - Used for smoke commands. Its action plugin turns an unreachable host into a failed result, so a host that
    disappears during smoke halts the release instead of being dropped from the play.
  - Commands are checks and must not change the host; in check mode they are not run.
options:
  commands:
    description: Shell commands that must each exit 0.
    type: list
    elements: str
    required: true
  timeout:
    description: Seconds each command may take.
    type: float
    default: 30
extends_documentation_fragment:
  - lockstep.release.host
"""

EXAMPLES = r"""
- name: The service answers on its own host
  lockstep.release.run:
    commands:
      - curl -fsS http://127.0.0.1:8080/health
"""

RETURN = r"""
results:
  description: One entry per command run, with C(cmd), C(rc), C(stdout) and C(stderr).
  returned: always
  type: list
  elements: dict
  sample: [{"cmd": "true", "rc": 0, "stdout": "", "stderr": ""}]
"""

import subprocess

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec=dict(
            commands=dict(type="list", elements="str", required=True),
            timeout=dict(type="float", default=30),
        ),
        supports_check_mode=True,
    )
    results = []
    if module.check_mode:
        module.exit_json(changed=False, results=results, msg="check mode: commands not run")
    for cmd in module.params["commands"]:
        try:
            proc = subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, text=True,
                                  timeout=module.params["timeout"], check=False)
            entry = dict(cmd=cmd, rc=proc.returncode, stdout=proc.stdout[-2000:], stderr=proc.stderr[-2000:])
        except subprocess.TimeoutExpired:
            entry = dict(cmd=cmd, rc=-1, stdout="", stderr="timed out after %ss" % module.params["timeout"])
        results.append(entry)
        if entry["rc"] != 0:
            module.fail_json(msg="smoke command %r exited %d: %s" % (cmd, entry["rc"], entry["stderr"].strip()),
                             results=results)
    module.exit_json(changed=False, results=results)


if __name__ == "__main__":
    main()
