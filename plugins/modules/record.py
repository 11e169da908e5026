#!/usr/bin/python
# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: record
short_description: Write the release record, the one typed record of a release run, checked against its schema
version_added: "0.3.0"
description:
  - The release record holds what one phase of a release hands the next - the plan, the fleet's version before
    (per host), the hosts changed, the halt, the servers drained. It is kept on the controller as the fact
    C(__lockstep_record) of C(localhost) (read it as C(hostvars['localhost'].ansible_facts.__lockstep_record)), and
    this action is the only way it is written. docs/CONTRACTS.md documents it field by field.
  - Every value is checked against the record's schema (C(plugins/module_utils/release_record.py)) - an unknown field,
    or a value of another type, is refused and nothing of the write is kept.
  - The first halt wins - a C(halt) set while one is recorded is kept as it was (the result says so in C(kept)).
  - Never fails - it runs as a C(run_once) step, whose failure would drop the batch's other hosts from every later
    play. A refused write halts the release instead (gate C(record)) - a refusal before any host changed, a
    rollback after; once halted, the refusal is added to the rollback's notes.
  - Runs on the controller only and supports check mode (the record is the run's own and changes no host - check
    mode records the plan it would follow).
  - Use it with C(delegate_to=localhost), C(delegate_facts=true) and C(run_once=true), so that the record lands on
    C(localhost) once. A persistent fact cache keeps the record of each run; the release starts a new one first.
options:
  set:
    description: Fields to replace, by name.
    type: dict
    default: {}
  add:
    description: Items to append to a list field, or keys to merge into a dict field, by name.
    type: dict
    default: {}
  reset:
    description: Start a new record (every field at its value in a new record, no halt) before I(set) and I(add).
    type: bool
    default: false
extends_documentation_fragment:
  - lockstep.release.controller
"""

EXAMPLES = r"""
- name: Start the run's record
  lockstep.release.record:
    reset: true
  delegate_to: localhost
  delegate_facts: true
  run_once: true

- name: Count a wave done
  lockstep.release.record:
    set:
      wave_index: "{{ hostvars['localhost'].ansible_facts.__lockstep_record.wave_index + 1 }}"
    add:
      done: "{{ ansible_play_batch }}"
  delegate_to: localhost
  delegate_facts: true
  run_once: true

- name: Halt the release (the first halt wins)
  lockstep.release.record:
    set:
      halt: {phase: verify, gate: verify, host: h3, message: h3 serves 1.0.0}
  delegate_to: localhost
  delegate_facts: true
  run_once: true
"""

RETURN = r"""
fields:
  description: The fields this write set or added to.
  returned: success
  type: list
  elements: str
  sample: [done, wave_index]
kept:
  description: Fields a write did not replace (a second halt).
  returned: when a halt was recorded already
  type: list
  elements: str
  sample: [halt]
lockstep_record_error:
  description: Why the schema refused the write; the record then holds a halt of gate C(record) instead.
  returned: when the write was refused
  type: str
  sample: "the release record refused a write: the release record's wave_index must be a count (0 or more), not 'x'"
ansible_facts:
  description: The whole record after the write, as C(__lockstep_record).
  returned: always
  type: dict
  sample: {__lockstep_record: {before: 1.0.0, done: [h1], wave_index: 1, run: {run_id: 20261205T051500-4242-2.1.0}}}
"""
