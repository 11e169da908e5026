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
  - The flag-reuse gate (Knight Capital's root cause) - refuses when a flag name would be read with a different
    meaning by the release and any version that runs or is active on a host now (the rollback target among them),
    or when a name one version retired comes back in a later one. Declarations come from the manifests kept on the
    hosts, else from I(manifest_dir) on the controller.
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
  lb:
    description: The load balancer mode (C(lockstep_lb)), recorded in the gate.
    type: str
    default: haproxy
  lb_servers:
    description:
      - Servers of the backend as the load balancer reported them (M(lockstep.release.haproxy) or a task-file
        implementation). Omitted when there is no load balancer; the serving-backend check then has no second
        source, and the gate's message says so.
    type: dict
  lb_error:
    description:
      - The load balancer's error when it did not answer the query (its step's C(lockstep_lb_error)). Refuses the
        release (C(load-balancer)), since which hosts serve traffic cannot be known and no wave could be drained.
    type: str
  lb_addresses:
    description:
      - Host name to the C(ip:port) its backend server must point at (from its service URL). A backend entry named
        like a host but pointing elsewhere refuses the release.
    type: dict
    default: {}
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
  manifest_dir:
    description: Directory on the controller with the manifests of other versions (for versions no host keeps).
    type: path
  manifest_name:
    description: Manifest file name in I(manifest_dir); C({version}) is replaced.
    type: str
  interrupted:
    description:
      - The record an interrupted run left next to the release lock (C(run_id), C(version), C(drained)), from
        M(lockstep.release.haproxy). When it names this release's version and every host holds only the old
        version or this one, the mixed fleet is that run's own and the release continues it.
    type: dict
  allow_flag_reuse:
    description:
      - Let a release or rollback proceed although a flag would change meaning (recorded in the ledger). Only for
        an operator who knows every client stopped sending the flag; requires I(flag_reuse_reason).
    type: bool
    default: false
  flag_reuse_reason:
    description: Why reusing the flag is safe; required with I(allow_flag_reuse).
    type: str
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
flag_verdict:
  description: One line on the flag-reuse gate, shown in check mode too.
  returned: always
  type: str
  sample: "flags consistent: rli across 1.0.0, 2.1.0"
befores:
  description: Host to the version it goes back to if the release halts (the old version for every host of a
    continued release).
  returned: always
  type: dict
  sample: {"h1": "1.0.0"}
found:
  description: Host to the version its process runs now (or holds active, when nothing answers).
  returned: always
  type: dict
  sample: {"h1": "2.1.0"}
reports:
  description: Release label to the version its service reports, for kept releases and the target whose manifest
    declares another C(service_version) than their label.
  returned: always
  type: dict
  sample: {"1.4.2-data7": "1.4.2"}
inherited:
  description: Hosts an interrupted run of this release already put on it (rolled back with the others on a halt).
  returned: always
  type: list
  elements: str
  sample: ["h1"]
before_flags:
  description: Flags the fleet's current release introduced (its manifest's C(since) is that version).
  returned: always
  type: list
  elements: str
  sample: ["rli"]
partial:
  description: Whether this is an allowed partial release.
  returned: always
  type: bool
  sample: false
"""
