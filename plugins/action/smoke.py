# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for lockstep.release.smoke: HTTP smoke checks through the load balancer and on every host, concurrently."""

from __future__ import annotations

import time

from ansible.plugins.action import ActionBase

from ansible_collections.lockstep.release.plugins.module_utils.release_state import field_value
from ansible_collections.lockstep.release.plugins.plugin_utils.gates import gate_result
from ansible_collections.lockstep.release.plugins.plugin_utils.http import fan_out, hide, request, safe_url
from ansible_collections.lockstep.release.plugins.plugin_utils.secrets import scrubbed


def substitute(value, names):
    """Replace ``{host}``, ``{url}``, ``{lb}``, ``{version}``, ``{service_version}``, ``{run}`` in every string of a
    structure; a string that is exactly ``{flags}`` becomes the list of flags the release introduces."""
    if value == "{flags}":
        return list(names["flags"])
    if isinstance(value, str):
        for key, repl in names.items():
            value = value.replace("{%s}" % key, str(repl))
        return value
    if isinstance(value, list):
        return [substitute(v, names) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, names) for k, v in value.items()}
    return value


_MISSING = object()  # a key the answer lacks: compared as null, named "missing" when that is wrong


def check_step(step, timeout):
    resp = request(step["url"], method=step.get("method", "GET"), body=step.get("body"), timeout=timeout,
                   headers=step.get("headers"))
    want = int(step.get("status", 200))
    url = safe_url(step["url"])  # as messages quote it: no password, no query value
    if resp.status != want:
        return "%s %s: %s, expected HTTP %d" % (step.get("method", "GET"), url, resp.describe(), want)
    if step.get("body_contains") and step["body_contains"] not in resp.body:
        return "%s: body lacks %r" % (url, step["body_contains"])
    if step.get("json"):
        data = resp.json()
        if not isinstance(data, dict):
            return "%s: answer is not a JSON object, expected %s" % (url, ", ".join(
                "%s %r" % (key, value) for key, value in step["json"].items()))
        # Keys are read like lockstep_version_field: the literal key, else a dotted path into nested objects.
        for key, value in step["json"].items():
            got = field_value(data, key, _MISSING)
            if got is _MISSING and value is not None:
                return "%s: %s is missing, expected %r" % (url, key, value)
            got = None if got is _MISSING else got
            if got != value and str(got) != str(value):
                return "%s: %s is %r, expected %r" % (url, key, got, value)
    return None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    ARGS = dict(
        halt=dict(type="bool", default=True),
        checks=dict(type="list", elements="dict", default=[]),
        hosts=dict(type="dict", required=True),
        lb_url=dict(type="str"),
        version=dict(type="str"),
        # {label: the version the service reports}: {service_version} in a check (the label's own when absent).
        reports=dict(type="dict", default={}),
        versions=dict(type="dict", default={}),
        flags=dict(type="list", elements="str", default=[]),
        run_id=dict(type="str", default="smoke"),
        timeout=dict(type="float", default=10),
        gate=dict(type="str", default="smoke"),
        per_host_only=dict(type="bool", default=False),
    )

    @scrubbed
    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        dummy, a = self.validate_argument_spec(argument_spec=self.ARGS)
        jobs = {}
        for i, check in enumerate(a["checks"]):
            name = check.get("name") or "check %d" % (i + 1)
            if not check.get("per_host", True) and a["per_host_only"]:
                continue
            targets = a["hosts"].items() if check.get("per_host", True) else [("lb", a["lb_url"])]
            for host, url in targets:
                names = {"host": host, "url": url, "lb": a["lb_url"], "run": a["run_id"], "flags": a["flags"],
                         "version": a["versions"].get(host) or a["version"]}
                names["service_version"] = a["reports"].get(names["version"]) or names["version"]
                steps = check.get("steps") or [{k: v for k, v in check.items()
                                                if k not in ("name", "per_host", "retries", "delay")}]
                if check.get("steps") and check.get("headers"):  # the check's headers go with each of its steps
                    steps = [dict(step, headers=dict(check["headers"], **(step.get("headers") or {})))
                             for step in steps]
                jobs[(name, host)] = (substitute(steps, names), int(check.get("retries", 0)),
                                      float(check.get("delay", 1)))

        def run_check(job):
            # Steps of one check run in order (an order, then what the exchange saw of it). Strict by default: a
            # check retries only when it says so, and a pass on retry is reported as such.
            steps, retries, delay = job
            # Header values (a token) never reach a message, even when the service echoes them back.
            secret = [v for step in steps for v in (step.get("headers") or {}).values()]
            for attempt in range(retries + 1):
                problem = next((p for p in (check_step(step, a["timeout"]) for step in steps) if p), None)
                if problem is None or attempt == retries:
                    return (hide(problem, secret) if problem else problem), attempt
                time.sleep(delay)
            return problem, retries

        outcomes = fan_out(run_check, jobs)
        hosts, halted, retried = {}, [], []
        for (name, host), (problem, attempts) in sorted(outcomes.items()):
            hosts.setdefault(host, {})[name] = problem or ("ok after %d retr%s" % (
                attempts, "y" if attempts == 1 else "ies") if attempts else "ok")
            if problem:
                halted.append((host, "smoke check %r failed: %s" % (name, problem)))
            elif attempts:
                retried.append("%r passed only on retry on %s (%d of %d allowed)" % (
                    name, host, attempts, jobs[(name, host)][1]))
        return gate_result(a["gate"], hosts, halted, extra_msg="; ".join(retried) or None, checks=len(jobs),
                           retried=retried, halt=a["halt"])
