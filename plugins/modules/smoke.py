#!/usr/bin/python
# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: smoke
short_description: Run HTTP smoke checks through the load balancer and on every host
version_added: "0.1.0"
description:
  - Runs on the controller; every check on every host at once. A check is one request or a list of I(steps) run in
    order (for a behavioural check, send an order, then ask the exchange what it received).
  - In strings, C({host}), C({url}) (the host's service URL), C({lb}), C({version}) (the release's label),
    C({service_version}) (the version its service reports, the label unless its manifest says otherwise) and
    C({run}) are replaced.
options:
  halt:
    description:
      - Fail when the gate does not pass. With C(false) the result says C(passed=false) and the caller records the
        halt (lockstep's roles do, so that no C(run_once) failure drops hosts from the rest of the run).
    type: bool
    default: true
  checks:
    description:
      - List of checks - C(name), C(per_host) (default true), and either C(steps) or one step's keys - C(url),
        C(method), C(headers), C(body), C(status), C(body_contains), C(json) (expected values, below).
      - >-
        C(json) maps keys of the JSON object the step's answer must be to the values expected there. A key is read
        like C(lockstep_version_field) - a dotted path into nested objects, so C({"build.release": "{version}",
        "status": "ok"}) checks C(body["build"]["release"]) and C(body["status"]). A key the object holds literally
        (C("app.version") in C({"app.version": "1.0"})) is read first, and only when it is absent is the key
        followed as a path. Lists are not indexed. An expected object or list is compared whole. A value passes
        when it equals the expected one or their strings do (C(1) passes for C("1")); an expected C(null) also
        passes when the key is missing. An answer that is not a JSON object fails every C(json) check.
      - C(headers) is a dict of HTTP headers sent with the request (a check's C(headers) go with each of its
        C(steps), a step's own override them), so that a token need not live in the URL - for example an
        C(Authorization) header of C(Bearer {{ vault_smoke_token }}). Placeholders are replaced in header values too. Header
        values are never echoed in the result or its messages (also when the service echoes them back, and when
        one is invalid); the ledger callback scrubs vault-encrypted values and values of secret-named variables
        from everything it records.
      - Credentials stay with the host they are meant for. Redirects are followed, but to another scheme, host or
        port none of the check's C(headers) goes (all of them, whatever their names), nor the URL's credentials;
        once dropped they stay dropped for the rest of the redirects. A redirect to the same origin keeps them.
      - A user and password in a C(url) (C(https://user:pw@host/...)) are sent as HTTP basic authentication (a
        C(headers) C(Authorization) wins) and follow the same rule. A URL is never quoted with its password or its
        query values - C(?token=abc) is written C(?token=********) in every message and result (and so in the
        ledger and the summary). A token in the path itself is not recognised; put it in a header.
      - An explicit retry policy per check, C(retries) (default 0, strict) and C(delay) (seconds, default 1), for a
        dependency that may fail transiently. Retries re-run every step, so give them to idempotent checks. A check
        that passes only on retry passes, and the gate's message and C(retried) say so (the ledger records it).
    type: list
    elements: dict
    default: []
  hosts:
    description: Host name to service URL.
    type: dict
    required: true
  lb_url:
    description: URL of the service through the load balancer.
    type: str
  per_host_only:
    description:
      - Run only the checks made on each host (C(per_host) true), none through the load balancer - the rollback
        rehearsal checks a drained canary, which the load balancer does not reach.
    type: bool
    default: false
  version:
    description: Version being checked.
    type: str
  flags:
    description: Flags the release introduces; a string that is exactly C({flags}) in a check becomes this list.
    type: list
    elements: str
    default: []
  versions:
    description: Host name to the version that host should run, where it differs from I(version) (a fleet that started mixed).
    type: dict
    default: {}
  reports:
    description: Release label to the version its service reports, where they differ; C({service_version}) is it.
    type: dict
    default: {}
  run_id:
    description: Unique id of this run (to make order ids unique).
    type: str
    default: smoke
  timeout:
    description: Seconds per request.
    type: float
    default: 10
  gate:
    description: Gate name.
    type: str
    default: smoke
extends_documentation_fragment:
  - lockstep.release.controller
"""

EXAMPLES = r"""
- name: Smoke
  lockstep.release.smoke:
    hosts: {h1: "http://127.0.0.11:8080"}
    lb_url: http://127.0.0.1:8000
    checks:
      - name: health through the load balancer
        per_host: false
        url: "{lb}/health"
      - name: the build every host reports, a nested value
        url: "{url}/about"
        json: {"build.release": "{version}", "status": "ok"}
      - name: admin status on every host, with a token in a header (not in the URL)
        url: "{url}/admin/status"
        headers:
          Authorization: "Bearer {{ vault_smoke_token }}"
  run_once: true
"""

RETURN = r"""
retried:
  description: Checks that passed only on retry, with the host and the number of retries used.
  returned: always (inside lockstep_gate)
  type: list
  elements: str
  sample: ["'exchange order' passed only on retry on h3 (1 of 2 allowed)"]
lockstep_gate:
  description: Gate result (C(gate), C(passed), C(hosts), C(halted), C(message)).
  returned: always
  type: dict
  sample: {"gate": "smoke", "passed": true}
"""
