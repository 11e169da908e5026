#!/usr/bin/python
# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: outcome
short_description: Decide a release's one status from what the run recorded and what the final census found
version_added: "2.3.0"
description:
  - Run once on the controller by the finish phase, after the final census. Returns the status that people,
    AWX workflows, the guard and the ledger read, the message a run that did not succeed exits with, and what the
    lock's outcome record says the fleet serves.
  - The statuses, in the order they are decided - C(refused) (halted before any host changed), C(stopped) (a
    halted first release, every host it changed stopped and taken out), C(rollback_failed) (a host the release
    changed could not be proven back), C(rolled_back), C(failed) (not halted, but the final census disagrees),
    C(partial) (a release with a recorded reason that left hosts out), C(succeeded).
  - A status is never inferred from the absence of a recorded failure - C(succeeded) needs the census to have
    passed.
  - Never fails itself, so that nothing after it is dropped; the finish phase fails the run on C(failed).
options:
  version:
    description: The release this run released (its label).
    type: str
    required: true
  before:
    description: The release the fleet ran before (null - a first release).
    type: raw
  halt:
    description: The halt the run recorded (C(phase), C(gate), C(host), C(message)); empty or null - not halted.
    type: dict
  changed:
    description: Hosts this release changed (or may have - a connection lost mid-switch).
    type: list
    elements: str
    default: []
  census:
    description: The final census's registered result (C(msg), C(lockstep_gate)); not used in check mode.
    type: dict
    default: {}
  check_mode:
    description: The run is in check mode (nothing changed, no census needed).
    type: bool
    default: false
  partial:
    description: The release was a partial one, with its reason recorded.
    type: bool
    default: false
  first_hosts:
    description: Changed hosts that had no release before them.
    type: list
    elements: str
    default: []
  first_stopped:
    description: Of I(first_hosts), those whose stop command succeeded.
    type: list
    elements: str
    default: []
  killed_hosts:
    description: Hosts the load balancer confirmed out (or, without one, whose stop command succeeded).
    type: list
    elements: str
    default: []
  unkilled_hosts:
    description: Hosts that should have been taken out and could not be.
    type: list
    elements: str
    default: []
  unknown:
    description: Hosts whose connection was lost during the switch.
    type: list
    elements: str
    default: []
  rollback_failed:
    description: Why the rollback could not be verified; empty - it could.
    type: str
    default: ""
  rollback_bad:
    description: Hosts the rollback could not prove back.
    type: list
    elements: str
    default: []
  lb:
    description: The load balancer kind (C(none) words the message for a fleet without one).
    type: str
    default: haproxy
  reports:
    description: Release label to the version its service reports, where they differ.
    type: dict
    default: {}
  ledger_broken:
    description: Why the ledger could not be written mid-release; empty - it could.
    type: str
    default: ""
extends_documentation_fragment:
  - lockstep.release.controller
"""

EXAMPLES = r"""
- name: The release's status
  lockstep.release.outcome:
    version: 2.1.0
    before: 1.0.0
    halt: "{{ hostvars['localhost'].ansible_facts.__lockstep_record.halt | default({}) }}"
    changed: "{{ hostvars['localhost'].ansible_facts.__lockstep_record.changed | default([]) }}"
    census: "{{ census }}"
  register: outcome
  delegate_to: localhost
  run_once: true

- name: Exit non-zero naming the gate and the host
  ansible.builtin.fail:
    msg: "{{ outcome.lockstep_outcome.message }}"
  when: outcome.lockstep_outcome.failed
"""

RETURN = r"""
lockstep_outcome:
  description: The run's outcome.
  returned: always
  type: dict
  contains:
    status:
      description: One of C(succeeded), C(partial), C(refused), C(stopped), C(rolled_back), C(rollback_failed),
        C(failed).
      type: str
    message:
      description: The line the run exits with when it did not succeed (gate, host and what was done about it).
      type: str
    failed:
      description: The run must exit non-zero.
      type: bool
    found_dead:
      description: Hosts found wrong that this release never changed.
      type: list
      elements: str
    version_after:
      description: The release the fleet runs now by this status.
      type: raw
    serving:
      description: What the service reports on every host now (the guard's expectation), null when nothing is.
      type: raw
    halted_by:
      description: The halt, or null.
      type: dict
  sample: {"status": "rolled_back", "failed": true, "found_dead": [], "version_after": "1.0.0", "serving": "1.0.0"}
msg:
  description: The same message.
  returned: always
  type: str
"""
