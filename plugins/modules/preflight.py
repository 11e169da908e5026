#!/usr/bin/python
# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: preflight
short_description: Decide on the controller whether a release may start
version_added: "0.1.0"
description:
  - Runs once over every host's gathered release state and the load balancer's view and refuses before anything
    changes.
  - Fleet completeness (a host of the group left out by C(--limit), unreachable or silent refuses, unless a
    partial release is allowed with a reason), the load balancer as a second source of truth (a serving backend
    unknown to the inventory refuses), release integrity (a directory whose content does not match its manifest,
    or a C(releases/VERSION) with the wrong content), free disk, and a fleet that is already mixed.
options:
  group:
    description: Inventory group name (for messages).
    type: str
    required: true
  expected_hosts:
    description: Every host of the group - the fleet.
    type: list
    elements: str
    required: true
  run_hosts:
    description: Hosts this run touches (after C(--limit)).
    type: list
    elements: str
    required: true
  limit:
    description: The C(--limit) in force, for messages.
    type: str
  states:
    description: Host name to C(lockstep_state) for every host that reported.
    type: dict
    required: true
  lb_servers:
    description: Servers of the backend as returned by M(lockstep.release.haproxy).
    type: dict
  manifest:
    description: Manifest of the release.
    type: dict
    required: true
  min_free_bytes:
    description: Free bytes every host needs.
    type: int
    default: 0
  allow_partial:
    description: Allow hosts of the group to be left out.
    type: bool
    default: false
  partial_reason:
    description: Why a partial release is acceptable; required with I(allow_partial).
    type: str
  allow_mixed_start:
    description: Allow a fleet that is already mixed.
    type: bool
    default: false
extends_documentation_fragment:
  - lockstep.release.controller
"""

EXAMPLES = r"""
- name: May the release start?
  lockstep.release.preflight:
    group: app
    expected_hosts: "{{ groups['app'] }}"
    run_hosts: "{{ ansible_play_hosts_all }}"
    states: "{{ states }}"
    manifest: "{{ plan.lockstep_plan.manifest }}"
  run_once: true
"""

RETURN = r"""
lockstep_gate:
  description: Gate result (C(gate), C(passed), C(hosts), C(halted), C(message)).
  returned: always
  type: dict
  sample: {"gate": "preflight", "passed": true}
before_version:
  description: The version the fleet runs now (null for a bare fleet).
  returned: always
  type: str
  sample: 1.0.0
excluded:
  description: Hosts left out of a partial release.
  returned: always
  type: list
  elements: str
  sample: []
partial:
  description: Whether this is an allowed partial release.
  returned: always
  type: bool
  sample: false
"""
