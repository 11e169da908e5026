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

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.lockstep.release.plugins.module_utils.haproxy_api import HAProxyError, servers, set_states
from ansible_collections.lockstep.release.plugins.module_utils.run_record import read_record, update_record

HAPROXY_STATE = {"drained": "drain", "ready": "ready", "maint": "maint"}


def settled(state, info):
    if state == "drained":
        return info["scur"] == 0
    if state == "ready":
        # A server without health checks ("no check") is up as soon as it is enabled.
        return info["serving"]
    return True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type="path", required=True),
            backend=dict(type="str", required=True),
            servers=dict(type="list", elements="str", default=[]),
            state=dict(type="str", default="query", choices=["drained", "ready", "maint", "query"]),
            wait=dict(type="bool", default=True),
            timeout=dict(type="float", default=30),
            halt=dict(type="bool", default=True),
            record=dict(type="path"),
            run_id=dict(type="str"),
            version=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    recorded = {}

    def fail(msg, changed=False, **extra):
        if p["halt"]:
            module.fail_json(msg=msg, **extra)
        # Reported, not raised: the caller makes every host of the wave fail on it (a failing run_once task would
        # drop the play's other hosts, the ones to roll back among them, from the rest of the run).
        module.exit_json(changed=changed, msg=msg, lockstep_lb_error=msg, **extra)

    def record(now):
        if p["record"] and p["state"] != "query" and p["servers"] and not module.check_mode:
            recorded["lockstep_record"] = update_record(p["record"], p["run_id"], p["version"], p["state"],
                                                        p["servers"], now)
        elif p["record"]:
            recorded["lockstep_record"] = read_record(p["record"])
        return recorded

    started = time.monotonic()
    try:
        before = servers(p["socket"], p["backend"])
        if "*" in p["servers"]:
            # The kill switch takes out every server the backend has, including ones no inventory knows.
            p["servers"] = sorted(before)
        unknown = sorted(set(p["servers"]) - set(before))
        if unknown:
            fail("backend %s has no server named %s" % (p["backend"], ", ".join(unknown)), servers=before)
        changed = False
        if p["state"] != "query" and p["servers"] and not module.check_mode:
            set_states(p["socket"], p["backend"], p["servers"], HAPROXY_STATE[p["state"]])
            changed = True
            deadline = started + p["timeout"]
            while p["wait"]:
                now = servers(p["socket"], p["backend"])
                pending = [n for n in p["servers"] if not settled(p["state"], now[n])]
                if not pending:
                    break
                if time.monotonic() > deadline:
                    fail("HAProxy servers %s not %s after %ss" % (
                        ", ".join(pending), p["state"], p["timeout"]), changed=True, servers=now, **record(now))
                time.sleep(0.1)
        after = servers(p["socket"], p["backend"])
        record(after)
    except HAProxyError as e:
        fail(str(e))
    except OSError as e:
        fail("lockstep's drain record %s: %s" % (p["record"], e))
    module.exit_json(changed=changed, servers=after, serving=sorted(n for n, s in after.items() if s["serving"]),
                     elapsed=round(time.monotonic() - started, 3), **recorded)


if __name__ == "__main__":
    main()
