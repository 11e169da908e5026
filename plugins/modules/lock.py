#!/usr/bin/python
# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lock
short_description: The fleet's release lock, one release at a time
version_added: "0.1.0"
description:
  - A lock file created atomically (C(O_CREAT|O_EXCL)) on one host shared by every release of a fleet (lockstep
    uses the load balancer host), holding the owner, the version being released and the start time.
  - C(state=acquired) takes the lock or fails, naming who holds it. A lock whose owner process is gone (same
    controller host, dead PID) is reported as stale with the command that clears it; it is never broken silently.
  - C(state=released) removes the lock only if I(run_id) owns it.
options:
  path:
    description: Path of the lock file.
    type: path
    required: true
  state:
    description: Take or give back the lock.
    type: str
    choices: [acquired, released]
    default: acquired
  run_id:
    description: Identifies this release run; only the owner can release.
    type: str
    required: true
  owner:
    description: Who and what holds the lock (user, controller host, controller PID, version...), stored in the lock.
    type: dict
    default: {}
  record:
    description:
      - The run record next to the lock (see M(lockstep.release.run_record)); removed with the lock on release when
        it no longer lists a drained server.
      - On C(state=acquired) it is read and returned as C(lockstep_record), what a run whose controller died left
        behind (its run id, version and drains), for the preflight to continue that release.
    type: path
  outcome:
    description:
      - With C(state=released), the outcome of the run that held the lock, written atomically next to the lock
        (C(<path>.outcome)) before the lock is removed, so whoever sees the lock free can already read what the
        run did (the guard judges the fleet against it, never against the run before).
      - Keys C(status) (the run's C(lockstep_status)) and C(serving) (the version every host must serve now,
        null when the run leaves that unknown); C(run_id), C(version) and C(finished) are added.
      - A C(refused) run changed nothing, so the C(serving) of the run before it is kept.
    type: dict
extends_documentation_fragment:
  - lockstep.release.host
"""

EXAMPLES = r"""
- name: Take the fleet's release lock
  lockstep.release.lock:
    path: /var/lib/lockstep/release.lock
    run_id: "{{ lockstep_run_id }}"
    owner: {user: "{{ lookup('ansible.builtin.env', 'USER') }}", version: "2.1.0"}
  delegate_to: "{{ groups['lb'][0] }}"
  run_once: true
"""

RETURN = r"""
lock:
  description: The lock's content (ours after acquiring; the holder's when refused).
  returned: always
  type: dict
  sample: {"run_id": "20261125T0900-1234", "version": "2.1.0", "started": "2026-11-25T09:00:00Z"}
stale:
  description: Whether a lock held by someone else belongs to a process that no longer exists.
  returned: always
  type: bool
  sample: false
lockstep_record:
  description: The run record found when acquiring (null when there is none).
  returned: when state is acquired and record is set
  type: dict
  sample: {"run_id": "20261125T101500-4242-2.1.0", "version": "2.1.0", "drained": ["h2"]}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lockstep.release.plugins.module_utils.lock_step import ARGUMENT_SPEC, step


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    result = step(module.params, module.check_mode)
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
