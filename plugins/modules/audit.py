#!/usr/bin/python
# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: audit
short_description: Audit a fleet - is every host on one release, running it, and the only thing HAProxy serves?
version_added: "0.2.0"
description:
  - The fleet audit of C(playbooks/verify.yml), run once on the controller.
  - HTTP layer, no SSH - probes every host's version URL concurrently and checks that every process reports the
    fleet's version (I(expect), or the version most hosts run) and was started from its own release directory
    under C(I(base)/releases/).
  - The verdict adds the SSH layer's C(lockstep.release.state) results (I(states); a host in I(urls) without a
    state did not report) - the active release and its content against its manifest, kept releases, whether the
    process was started from the active release, the content checksum and the flags in effect against the rest of
    the fleet - and the load balancer (I(lb_servers)) - a serving server unknown to the inventory, a server whose
    address is not its host's, a host missing from the backend or left drained/in MAINT - and a release lock still
    held (I(lock)), named as a dead run when its process is gone.
  - With I(service=stopped) it judges a halted fleet instead (C(playbooks/halt.yml)) - no host may still answer and
    no server may still serve.
  - Names every host that is not right; fails unless I(halt=false).
options:
  urls:
    description: Host name to the version URL the controller probes; its keys are the fleet.
    type: dict
    required: true
  base:
    description: The service's base directory on the hosts; a process must report a start directory C(releases/VERSION) under it.
    type: str
  probes:
    description: The C(probes) of an earlier call (the HTTP layer); they are judged instead of probing again.
    type: dict
  layers:
    description: The layers the verdict covers; without C(ssh), I(states) are not required.
    type: list
    elements: str
    default: [http, ssh]
  states:
    description: Host name to C(lockstep_state) from C(lockstep.release.state).
    type: dict
    default: {}
  errors:
    description: Host name to the reason it did not report its state (unreachable, module failure).
    type: dict
    default: {}
  lb_servers:
    description: The C(servers) of a C(lockstep.release.haproxy) query of the service's backend.
    type: dict
  lb_error:
    description: Why the load balancer could not be queried.
    type: str
  lock:
    description: The content of the release lock file, when it exists.
    type: dict
  expect:
    description: The version every host must run. Default - the version most hosts report.
    type: str
  service:
    description: C(running) audits a serving fleet; C(stopped) confirms a halt.
    type: str
    choices: [running, stopped]
    default: running
  drained_ok:
    description: Servers drained or in MAINT are not a problem (C(playbooks/resume.yml) audits a halted fleet).
    type: bool
    default: false
  settle:
    description: Seconds to keep probing hosts that do not answer yet (a service just started).
    type: float
    default: 0
  timeout:
    description: Seconds each HTTP probe may take.
    type: float
    default: 2
  report:
    description: Return C(lockstep_audit) and C(lockstep_gate) (recorded by the ledger); C(false) for the HTTP layer's first pass.
    type: bool
    default: true
  gate:
    description: Name of the gate in C(lockstep_gate).
    type: str
    default: audit
  halt:
    description: Fail when the audit does not pass.
    type: bool
    default: true
extends_documentation_fragment:
  - lockstep.release.controller
"""

EXAMPLES = r"""
- name: Audit | HTTP layer (no SSH)
  lockstep.release.audit:
    urls: "{{ hostvars | lockstep.release.host_urls(groups['app'], '/version') }}"
    base: /srv/order-router
    layers: [http]
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
probes:
  description: Host name to what its process reported (C(reachable), C(version), C(directory), C(pid), C(error)...).
  returned: always
  type: dict
  sample: {"h1": {"reachable": true, "version": "2.1.0", "directory": "/srv/order-router/releases/2.1.0"}}
passed:
  description: Whether the audit passed, when I(report=false).
  returned: when report is false
  type: bool
  sample: true
lockstep_audit:
  description: >-
    The audit - C(passed), C(version), C(service), C(layers), C(hosts) (per host C(running), C(active),
    C(content), C(flags), C(from_active), C(lb), C(problems), C(ok)), C(problems) (list of C(host), C(message)),
    C(lb) (server to status), C(lock) and C(table) (the printed table). The ledger records it as an C(audit) record.
  returned: when report is true
  type: dict
  sample: {"passed": false, "version": "2.1.0", "problems": [{"host": "h3", "message": "process 9 runs 1.0.0, the fleet runs 2.1.0"}]}
lockstep_gate:
  description: The audit as a gate (C(gate), C(passed), C(hosts), C(halted), C(message)).
  returned: when report is true
  type: dict
  sample: {"gate": "audit", "passed": true}
"""
