#!/usr/bin/python
# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: plan
short_description: Check a release's inputs on the controller and compute its waves
version_added: "0.1.0"
description:
  - Runs on the controller before any host is contacted; it checks the version string, the artifact and its manifest (sha256
    of the artifact checked against the manifest), the group and the wave spec.
  - Returns the plan - the manifest, the batches Ansible's C(serial) will make, and the run's identity (user,
    controller, PID) used by the release lock.
options:
  version:
    description: The version to release; a plain string usable as a directory name.
    type: str
    required: true
  artifact_dir:
    description: Directory on the controller holding artifacts and manifests.
    type: path
    required: true
  artifact_name:
    description: Artifact file name, C({version}) is replaced.
    type: str
    required: true
  manifest_name:
    description: Manifest file name, C({version}) is replaced.
    type: str
    required: true
  group:
    description: Name of the inventory group that is the fleet.
    type: str
    required: true
  group_hosts:
    description: Hosts of that group.
    type: list
    elements: str
    required: true
  canary:
    description: Size of the canary wave.
    type: raw
    default: 1
  waves:
    description: Wave sizes after the canary - host counts or percentages of the fleet.
    type: raw
    required: true
  flags_file:
    description:
      - The flags file inside the artifact (relative to its root). When set, the manifest's C(flags) and
        C(retired_flags) must agree with it exactly, or the release is refused (check C(flag-manifest)). The
        flag-reuse gate trusts manifests, so a manifest that lies about its flags is refused like a missing one.
    type: str
    default: ""
  lb:
    description:
      - The load balancer (C(lockstep_lb)). C(haproxy) needs a load balancer host (I(lb_hosts)) and
        I(haproxy_socket); C(tasks) needs I(lb_tasks), a task file on the controller; C(none) needs nothing and the
        plan says that nothing will be drained.
    type: str
    choices: [haproxy, tasks, none]
    default: haproxy
  lb_tasks:
    description: The load balancer task file, with I(lb=tasks).
    type: str
    default: ""
  haproxy_socket:
    description: HAProxy's admin socket, with I(lb=haproxy).
    type: str
    default: ""
  lb_hosts:
    description: The hosts of the load balancer group.
    type: list
    elements: str
    default: []
  lock_host:
    description: Where the release lock lives; named in the plan.
    type: str
    default: localhost
extends_documentation_fragment:
  - lockstep.release.controller
"""

EXAMPLES = r"""
- name: Check inputs and plan the waves
  lockstep.release.plan:
    version: "2.1.0"
    artifact_dir: artifacts
    artifact_name: order-router-{version}.tar.gz
    manifest_name: order-router-{version}.manifest.json
    group: app
    group_hosts: "{{ groups['app'] }}"
    waves: ["25%", "100%"]
  run_once: true
"""

RETURN = r"""
lockstep_plan:
  description: Run id, version, manifest, artifact path, serial, waves (lists of hosts), user, controller, pid.
  returned: success
  type: dict
  sample: {"version": "2.1.0", "waves": [["h1"], ["h2", "h3"]]}
"""
