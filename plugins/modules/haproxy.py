#!/usr/bin/python
# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: haproxy
short_description: Drain, re-enable or list backend servers through HAProxy's runtime API
version_added: "0.1.0"
description:
  - Talks to HAProxy's admin stats socket (C(stats socket PATH level admin)) on the load balancer host.
  - C(state=drained) stops new traffic to the servers and, with I(wait), waits until their current sessions end.
  - C(state=ready) re-enables them and, with I(wait), waits until HAProxy's health check reports them up.
  - C(state=maint) takes them out completely (the kill switch for a host that cannot be verified).
  - C(state=query) changes nothing and lists every server of the backend with its status; lockstep uses it as a
    second source of truth for which hosts really serve traffic.
options:
  socket:
    description: Path of HAProxy's admin socket on the load balancer host.
    type: path
    required: true
  backend:
    description: Backend that holds the service's servers.
    type: str
    required: true
  servers:
    description:
      - Server names to act on (lockstep names them like the inventory hosts).
      - C(*) stands for every server of the backend, including servers no inventory knows (the kill switch).
    type: list
    elements: str
    default: []
  state:
    description: What to do with I(servers).
    type: str
    choices: [drained, ready, maint, query]
    default: query
  wait:
    description: Wait for sessions to end (drained) or for the server to be up (ready).
    type: bool
    default: true
  timeout:
    description: Seconds to wait.
    type: float
    default: 30
  halt:
    description:
      - Fail on an error. With C(false) the task succeeds and returns the error as C(lockstep_lb_error), for a
        C(run_once) task whose caller makes every host fail on it.
    type: bool
    default: true
  record:
    description:
      - A JSON file on the load balancer host (lockstep keeps it next to its release lock) that lists the servers
        lockstep itself drained and has not put back, with the I(run_id) and I(version) of the release. A
        controller that dies mid-release leaves it behind, so the next run tells lockstep's own drains from an
        operator's and recognises a fleet left mixed by that release. Updated only with what HAProxy confirmed;
        returned as C(lockstep_record).
    type: path
  run_id:
    description: Run that owns the drains written to I(record).
    type: str
  version:
    description: Version the run releases, written to I(record).
    type: str
extends_documentation_fragment:
  - lockstep.release.host
"""

EXAMPLES = r"""
- name: Drain this wave's hosts and wait for their connections to finish
  lockstep.release.haproxy:
    socket: /run/haproxy/admin.sock
    backend: order_router
    servers: "{{ ansible_play_batch }}"
    state: drained
  delegate_to: "{{ groups['lb'][0] }}"
  run_once: true

- name: Which servers really serve traffic?
  lockstep.release.haproxy:
    socket: /run/haproxy/admin.sock
    backend: order_router
  register: lb
"""

RETURN = r"""
servers:
  description: Every server of the backend after the call, with C(status), C(scur), C(addr) and C(serving).
  returned: always
  type: dict
  sample: {"h1": {"status": "UP", "scur": 0, "addr": "127.0.0.11:8080", "serving": true}}
serving:
  description: Names of the servers that receive traffic.
  returned: always
  type: list
  elements: str
  sample: ["h1", "h2"]
lockstep_lb_error:
  description: The error, when I(halt=false) and the load balancer could not do what was asked.
  returned: when halt is false and something failed
  type: str
  sample: HAProxy servers h3 not drained after 30s
lockstep_record:
  description: Content of I(record) after the call (null when there is none).
  returned: when record is set
  type: dict
  sample: {"run_id": "20261125T101500-4242-2.1.0", "version": "2.1.0", "drained": ["h2", "h3"]}
elapsed:
  description: Seconds spent.
  returned: always
  type: float
  sample: 0.4
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lockstep.release.plugins.module_utils.haproxy_step import ARGUMENT_SPEC, step


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    result = step(module.params, module.check_mode)
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
