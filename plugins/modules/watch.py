#!/usr/bin/python
# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: watch
short_description: Watch every host's Prometheus metrics after launch and halt on a threshold
version_added: "0.1.0"
description:
  - Scrapes every host's metrics URL concurrently from the controller, every I(interval) seconds for I(seconds),
    and fails on the first threshold breached or host that cannot be scraped.
  - Values are counter totals since the service started; a threshold with C(per) is a ratio of two counters.
options:
  halt:
    description:
      - Fail when the gate does not pass. With C(false) the result says C(passed=false) and the caller records the
        halt (lockstep's roles do, so that no C(run_once) failure drops hosts from the rest of the run).
    type: bool
    default: true
  metrics_urls:
    description: Host name to metrics URL.
    type: dict
    required: true
  thresholds:
    description: List of C(name), C(metric) (sample name), optional C(per) (denominator sample name), C(max),
      optional C(min_count) (minimum denominator before the ratio counts, default 1).
    type: list
    elements: dict
    default: []
  seconds:
    description: How long to watch; 0 scrapes once.
    type: float
    default: 0
  interval:
    description: Seconds between scrapes.
    type: float
    default: 2
  gate:
    description: Gate name.
    type: str
    default: watch
extends_documentation_fragment:
  - lockstep.release.controller
"""

EXAMPLES = r"""
- name: Watch for two minutes
  lockstep.release.watch:
    metrics_urls: {h1: "http://127.0.0.11:8080/metrics"}
    seconds: 120
    thresholds:
      - {name: error rate, metric: errors_total, per: requests_total, max: 0.01}
  run_once: true
"""

RETURN = r"""
lockstep_gate:
  description: Gate result (C(gate), C(passed), C(hosts), C(halted), C(message), C(scrapes)).
  returned: always
  type: dict
  sample: {"gate": "watch", "passed": true}
"""
