# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One load balancer step through HAProxy's runtime API: what the lockstep.release.haproxy module does, as a function
of its validated parameters, so that its action can run it in the worker when the load balancer host is the
controller itself (a module process there costs a Python start and ansible's module_utils for a few socket
writes)."""

from __future__ import annotations

import time

from ansible_collections.lockstep.release.plugins.module_utils.haproxy_api import HAProxyError, servers, set_states
from ansible_collections.lockstep.release.plugins.module_utils.run_record import read_record, update_record

ARGUMENT_SPEC = dict(
    socket=dict(type="path", required=True),
    backend=dict(type="str", required=True),
    servers=dict(type="list", elements="str", default=[]),
    state=dict(type="str", default="query", choices=["drained", "ready", "maint", "query"]),
    wait=dict(type="bool", default=True),
    timeout=dict(type="float", default=30),
    halt=dict(type="bool", default=True),
    record=dict(type="path"),
    run_id=dict(type="str"),
    version=dict(type="str"),
)

HAPROXY_STATE = {"drained": "drain", "ready": "ready", "maint": "maint"}


class _Done(Exception):
    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


def settled(state, info):
    if state == "drained":
        return info["scur"] == 0
    if state == "ready":
        # A server without health checks ("no check") is up as soon as it is enabled.
        return info["serving"]
    return True


def step(p, check_mode):
    """The step's result: the module's return values, with ``failed=True`` and ``msg`` when it failed (only with
    ``halt``; otherwise the error is ``lockstep_lb_error`` of a result that did not fail)."""
    try:
        return _step(dict(p), check_mode)
    except _Done as done:
        return done.result


def _step(p, check_mode):
    recorded = {}

    def fail(msg, changed=False, **extra):
        if p["halt"]:
            raise _Done(dict(failed=True, changed=changed, msg=msg, **extra))
        # Reported, not raised: the caller makes every host of the wave fail on it (a failing run_once task would
        # drop the play's other hosts, the ones to roll back among them, from the rest of the run).
        raise _Done(dict(changed=changed, msg=msg, lockstep_lb_error=msg, **extra))

    def record(now):
        if p["record"] and p["state"] != "query" and p["servers"] and not check_mode:
            recorded["lockstep_record"] = update_record(p["record"], p["run_id"], p["version"], p["state"],
                                                        p["servers"], now)
        elif p["record"]:
            recorded["lockstep_record"] = read_record(p["record"])
        return recorded

    started = time.monotonic()
    try:
        before = servers(p["socket"], p["backend"])
        if "*" in p["servers"]:
            # The kill switch takes out every server the backend has, including ones no inventory knows.
            p["servers"] = sorted(before)
        unknown = sorted(set(p["servers"]) - set(before))
        if unknown:
            fail("backend %s has no server named %s" % (p["backend"], ", ".join(unknown)), servers=before)
        changed = False
        if p["state"] != "query" and p["servers"] and not check_mode:
            set_states(p["socket"], p["backend"], p["servers"], HAPROXY_STATE[p["state"]])
            changed = True
            deadline = started + p["timeout"]
            while p["wait"]:
                now = servers(p["socket"], p["backend"])
                pending = [n for n in p["servers"] if not settled(p["state"], now[n])]
                if not pending:
                    break
                if time.monotonic() > deadline:
                    fail("HAProxy servers %s not %s after %ss" % (
                        ", ".join(pending), p["state"], p["timeout"]), changed=True, servers=now, **record(now))
                time.sleep(0.1)
        after = servers(p["socket"], p["backend"])
        record(after)
    except HAProxyError as e:
        fail(str(e))
    except OSError as e:
        fail("lockstep's drain record %s: %s" % (p["record"], e))
    return dict(changed=changed, servers=after, serving=sorted(n for n, s in after.items() if s["serving"]),
                elapsed=round(time.monotonic() - started, 3), **recorded)
