#!/usr/bin/python
# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: input
short_description: Check a role's argument spec against every host's own values, in one task
version_added: "0.3.0"
description:
  - Run once on the controller by the preflight phase, as its first task. Checks the options of one entry point of
    a role's C(meta/argument_specs.yml) against the values each named host sets itself (its inventory and the run's
    extra vars), over what the task sees (the role's defaults).
  - It does what Ansible's own check of a role's arguments does, for the whole play in one task, where Ansible's
    check costs a forked worker per host.
  - Each error is reported once, naming its hosts unless every host has it. Fails on any error, before any host is
    contacted; the ledger records that as a refusal by gate C(input).
options:
  spec_file:
    description: The role's argument spec file (C(meta/argument_specs.yml)).
    type: path
    required: true
  entry_point:
    description: The entry point whose options are checked.
    type: str
    default: main
  hosts:
    description: The hosts whose values are checked.
    type: list
    elements: str
    required: true
extends_documentation_fragment:
  - lockstep.release.controller
"""

EXAMPLES = r"""
- name: The release's input, checked for every host of the play
  lockstep.release.input:
    spec_file: "{{ role_path }}/meta/argument_specs.yml"
    hosts: "{{ ansible_play_hosts_all }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
argument_errors:
  description: What is wrong, one message per error, with the hosts it applies to unless it applies to every host.
  returned: on failure
  type: list
  elements: str
  sample: ["value of lockstep_lb must be one of: haproxy, tasks, none, got: nginx"]
"""
