#!/usr/bin/python
# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: run_record
short_description: Keep the release's run record next to the fleet's lock, whatever the load balancer is
version_added: "0.2.0"
description:
  - The run record (C(<lockstep_lock_path>.run) on the lock's host) names the run that holds the fleet, the version
    it releases and the servers lockstep drained in the load balancer and has not put back yet. A controller that
    dies mid-release leaves it behind; the next run reads it with the lock (M(lockstep.release.lock) I(record)).
  - M(lockstep.release.haproxy) keeps it itself when HAProxy runs on the lock's host. This module keeps it for
    every other load balancer (a task-file implementation, or HAProxy on another host), after the load balancer
    step, from what the load balancer confirmed (I(after)).
options:
  path:
    description: The record file on the lock's host.
    type: path
    required: true
  state:
    description: The load balancer step that was done on I(servers).
    type: str
    choices: [drained, ready, maint]
    required: true
  servers:
    description: The servers of the step.
    type: list
    elements: str
    default: []
  after:
    description:
      - Every server of the backend after the step, as the load balancer reported it (server name to a dict with at
        least C(serving)). A server counts as drained by lockstep once it is reported not serving after
        C(drained), and no longer once it is reported serving after C(ready) (or put in MAINT).
    type: dict
    default: {}
  run_id:
    description: The run that owns the drains.
    type: str
  version:
    description: The version the run releases.
    type: str
  halt:
    description:
      - Fail on an error. With C(false) the task succeeds and returns the error as C(lockstep_lb_error) (the
        caller is a C(run_once) step that must not make Ansible drop the play's other hosts).
    type: bool
    default: true
extends_documentation_fragment:
  - lockstep.release.host
"""

EXAMPLES = r"""
- name: Record the servers lockstep drained, as the load balancer confirmed them
  lockstep.release.run_record:
    path: /var/lib/lockstep/app.lock.run
    state: drained
    servers: [h2, h3]
    after: {h1: {serving: true}, h2: {serving: false}, h3: {serving: false}}
    run_id: 20261125T101500-4242-2.1.0
    version: 2.1.0
  delegate_to: "{{ lockstep_lock_host }}"
  run_once: true
"""

RETURN = r"""
lockstep_record:
  description: Content of the record after the call.
  returned: success
  type: dict
  sample: {"run_id": "20261125T101500-4242-2.1.0", "version": "2.1.0", "drained": ["h2", "h3"]}
lockstep_lb_error:
  description: The error, when I(halt=false) and the record could not be written.
  returned: when halt is false and something failed
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lockstep.release.plugins.module_utils.run_record import read_record, update_record


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            state=dict(type="str", required=True, choices=["drained", "ready", "maint"]),
            servers=dict(type="list", elements="str", default=[]),
            after=dict(type="dict", default={}),
            run_id=dict(type="str"),
            version=dict(type="str"),
            halt=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if module.check_mode or not p["servers"]:
        module.exit_json(changed=False, lockstep_record=read_record(p["path"]))
    try:
        rec = update_record(p["path"], p["run_id"], p["version"], p["state"], p["servers"], p["after"])
    except OSError as e:
        msg = "lockstep's run record %s: %s" % (p["path"], e)
        if p["halt"]:
            module.fail_json(msg=msg)
        module.exit_json(changed=False, msg=msg, lockstep_lb_error=msg)
    module.exit_json(changed=True, lockstep_record=rec)


if __name__ == "__main__":
    main()
