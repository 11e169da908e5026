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
  record:
    description:
      - The release record (docs/CONTRACTS.md, "The release record", as C(lockstep.release.record) writes it) - the
        halt, the version before, the hosts changed (the rollback's plan when halted, else the hosts switched
        forward), the partial flag, a first release's hosts and those stopped, the hosts taken out
        and those that could not be, the hosts whose connection was lost mid-switch, why the rollback failed and the
        hosts it could not prove back, the versions services report, each host's state at preflight and its
        switches. A field it lacks counts as empty (not halted, nothing changed).
    type: dict
    default: {}
  census:
    description: The final census's registered result (C(msg), C(lockstep_gate)); not used in check mode.
    type: dict
    default: {}
  check_mode:
    description: The run is in check mode (nothing changed, no census needed).
    type: bool
    default: false
  hosts:
    description: The hosts of the fleet, in the order their results are listed.
    type: list
    elements: str
    default: []
  left_out:
    description: Hosts of the fleet this run did not reach (result C(excluded)).
    type: list
    elements: str
    default: []
  lb:
    description: The load balancer kind (C(none) words the message for a fleet without one).
    type: str
    default: haproxy
  ledger_broken:
    description: Why the ledger could not be written mid-release; empty - it could.
    type: str
    default: ""
  ledger_file:
    description:
      - The ledger this run writes, as the ledger callback names it (C(LOCKSTEP_LEDGER_FILE) in the controller's
        environment); empty - no ledger callback runs.
    type: str
    default: ""
extends_documentation_fragment:
  - lockstep.release.controller
"""

EXAMPLES = r"""
- name: The release's status
  lockstep.release.outcome:
    version: 2.1.0
    record: "{{ hostvars['localhost'].__lockstep_record }}"
    census: "{{ census }}"
    hosts: "{{ groups['app'] }}"
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
    hosts:
      description:
        - Each host of I(hosts) - C(before) (its version at preflight), C(after) (what its process reports in the
          final census), C(phase) (the last phase that changed it) and C(result) (C(released), C(changed),
          C(rolled_back), C(drained), C(found_dead), C(found_dead_drained), C(excluded) or C(unchanged)).
      type: dict
    ledger:
      description:
        - What AWX shows as the job's C(lockstep_ledger) artifact - C(path) (I(ledger_file)), C(status) and
          C(broken) (I(ledger_broken), null when the ledger was written to the end); null when neither is given.
      type: dict
  sample: {"status": "rolled_back", "failed": true, "found_dead": [], "version_after": "1.0.0", "serving": "1.0.0"}
msg:
  description: The same message.
  returned: always
  type: str
"""
