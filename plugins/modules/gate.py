#!/usr/bin/python
# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gate
short_description: Check that every host runs the version it should
version_added: "0.1.0"
description:
  - A fleet gate, run once on the controller. For each host, compares the expected version with the gathered
    release state (on disk, and the running process started from the active release) and/or with what the service
    reports on its version URL, probed concurrently from the controller.
  - Fails naming the gate and the first host that is wrong.
options:
  halt:
    description:
      - Fail when the gate does not pass. With C(false) the result says C(passed=false) and the caller records the
        halt (lockstep's roles do, so that no C(run_once) failure drops hosts from the rest of the run).
    type: bool
    default: true
  gate:
    description: Name of the gate, for messages and the ledger.
    type: str
    required: true
  expect:
    description: Host name to expected version (null - no release expected).
    type: dict
    required: true
  states:
    description: Host name to C(lockstep_state); a host listed in I(expect) but missing here did not report.
    type: dict
    default: {}
  state_hosts:
    description:
      - Hosts that must appear in I(states); the others are judged by their version URL alone. Default - every
        host of I(expect) when I(states) is given.
    type: list
    elements: str
  version_urls:
    description:
      - Host name to version URL to probe from the controller. The answer is the version as plain text, or a JSON
        object with it in the field the URL's fragment names (C(http://h1:8080/version#build.version); no fragment -
        C(version)). The fragment is never sent to the service.
    type: dict
    default: {}
  wave:
    description: Wave progress to publish as C(lockstep_wave) when the gate passes.
    type: dict
  reports:
    description:
      - Release label to the version its service reports, for releases whose manifest declares a
        C(service_version) other than their label; a version URL that answers it proves the label. Releases
        named in I(states) add their own.
    type: dict
    default: {}
  stopped:
    description:
      - Hosts expected to serve nothing (a halted first release's, which has nothing to go back to). Such a host
        passes when no process runs from its state and its version URL does not answer, whatever stays on disk
        (nothing is deleted); I(expect)'s value for it is not used.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - lockstep.release.controller
"""

EXAMPLES = r"""
- name: Every host reports 2.1.0
  lockstep.release.gate:
    gate: verify
    expect: "{{ dict(groups['app'] | zip(groups['app'] | map('extract', hostvars, 'x') | map('default', '2.1.0'))) }}"
    state_hosts:
    description:
      - Hosts that must appear in I(states); the others are judged by their version URL alone. Default - every
        host of I(expect) when I(states) is given.
    type: list
    elements: str
  version_urls: "{{ urls }}"
  run_once: true
"""

RETURN = r"""
lockstep_gate:
  description: Gate result (C(gate), C(passed), C(hosts), C(halted), C(message)).
  returned: always
  type: dict
  sample: {"gate": "verify", "passed": true}
lockstep_wave:
  description: The wave progress, when I(wave) was given and the gate passed.
  returned: when wave is given
  type: dict
  sample: {"index": 1, "count": 3, "done": 1, "total": 8}
"""
