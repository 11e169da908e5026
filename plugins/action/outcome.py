# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for lockstep.release.outcome: the release's one status, its message and each host's result, decided from
the release record and what the final census found, never inferred from the absence of a recorded failure."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.lockstep.release.plugins.filter.lockstep import switched_hosts
from ansible_collections.lockstep.release.plugins.plugin_utils.secrets import scrubbed

STATUSES = ("succeeded", "partial", "refused", "stopped", "rolled_back", "rollback_failed", "failed")


def _hosts(census):
    return [h["host"] for h in (census or {}).get("halted") or [] if isinstance(h, dict) and "host" in h]


def host_outcomes(states, hosts, census, status, killed=(), excluded=(), dead=(), switches=None, switches_back=None):
    """Per host ``{"before", "after", "phase", "result"}`` for the ledger, the summary and AWX: the version before
    (``states``: each host's release state at preflight), the version its process reports now (final census), the
    last phase that changed it, and what happened to it. ``switches`` / ``switches_back``: the release record's deploy
    results, forward and back."""
    out = {}
    switched = set(switched_hosts(switches, hosts))
    rolled = set(switched_hosts(switches_back, hosts))
    for h in hosts:
        state = (states or {}).get(h) or {}
        after = ((census or {}).get(h) or {}).get("reported_version")
        if h in excluded:
            phase, result = "preflight", "excluded"
        elif h in dead:
            # Not lockstep's doing: a host it never changed that does not serve what it did before.
            phase, result = "census", "found_dead_drained" if h in killed else "found_dead"
        elif h in killed:
            phase, result = "rollback", "drained"
        elif h in rolled:
            phase, result = "rollback", "rolled_back"
        elif h in switched:
            phase, result = "finish", "released" if status in ("succeeded", "partial") else "changed"
        else:
            phase, result = "preflight", "unchanged"
        out[h] = {"before": state.get("running_version") or state.get("active_version"), "after": after,
                  "phase": phase, "result": result}
    return out


def decide(a):
    """``{status, message, failed, found_dead, version_after, serving, halted_by, hosts}`` from the action's arguments
    (the release record's fields flattened into them).

    Kept apart from the action so every status is unit-tested without Ansible: the order of the checks is the
    contract (docs/CONTRACTS.md, statuses)."""
    halt = a.get("halt") or None
    halted = halt is not None
    changed = list(a.get("changed") or [])
    census = a.get("census") or {}
    gate = census.get("lockstep_gate") or {}
    check_mode = bool(a.get("check_mode"))
    # Hosts the rollback's gate or the final census found wrong, split by whether this release changed them.
    wrong = []
    for host in list(a.get("rollback_bad") or []) + ([] if check_mode else _hosts(gate)):
        if host not in wrong:
            wrong.append(host)
    changed_wrong = [h for h in wrong if h in changed]
    # rollback_failed means a host lockstep changed could not be proven back, nothing else: a host found dead that
    # the release never changed is named beside the status, whatever the status.
    found_dead = [h for h in wrong if h not in changed] if halted else []
    first = list(a.get("first_hosts") or [])
    killed = list(a.get("killed_hosts") or [])
    first_ok = bool(first) and all(h in (a.get("first_stopped") or []) and h in killed for h in first) \
        and all(h in first for h in changed_wrong)
    if halted and not changed:
        status = "refused"
    elif halted and first_ok:
        status = "stopped"
    elif halted and (a.get("rollback_failed") or changed_wrong):
        status = "rollback_failed"
    elif halted:
        status = "rolled_back"
    elif not (check_mode or gate.get("passed")):
        status = "failed"
    elif a.get("partial"):
        status = "partial"
    else:
        status = "succeeded"

    version, before = a["version"], a.get("before")
    if status == "failed":
        head = "not halted, but the final census disagrees: %s" % census.get("msg", "no census")
    elif halted:
        head = "halted by gate %s on %s: %s" % (halt.get("gate"), halt.get("host"), halt.get("message"))
    else:
        head = "completed"
    details = []
    no_lb = a.get("lb") == "none"
    if status == "rolled_back":
        details.append("every changed host was rolled back to %s and verified" % before)
    if status == "stopped":
        details.append("first release: nothing to roll back to; stopped%s: %s" % (
            "" if no_lb else " and taken out of the load balancer", ", ".join(first)))
    if status == "rollback_failed":
        details.append("ROLLBACK FAILED (%s); %s: %s" % (
            a.get("rollback_failed") or census.get("msg"),
            "stopped, there is no load balancer (lockstep_stop_command succeeded)" if no_lb
            else "taken out of the load balancer (confirmed by it)", ", ".join(killed) or "none"))
    if a.get("unkilled_hosts"):
        details.append("could NOT be taken out of %s: %s" % (
            "service" if no_lb else "the load balancer", ", ".join(a["unkilled_hosts"])))
    if a.get("unknown"):
        details.append("connection lost during the switch (changed-unknown): %s" % ", ".join(a["unknown"]))
    if found_dead:
        out = [h for h in found_dead if h in killed]
        details.append("found dead, not changed by this release: %s%s" % (
            ", ".join(found_dead), " (taken out of the load balancer: %s)" % ", ".join(out) if out else ""))
    if a.get("ledger_broken"):
        details.append("LEDGER BROKEN: %s" % a["ledger_broken"])
    message = " | ".join(["lockstep %s: release of %s %s" % (status, version, head)] + details)

    proven = status in ("succeeded", "partial")
    reports = a.get("reports") or {}
    if proven:
        serving = reports.get(version, version)
    elif status in ("rolled_back", "refused") and before is not None:
        serving = reports.get(before, before)
    else:
        serving = None
    return {
        "status": status,
        "message": message,
        # A run that halted, disagrees with its census or lost its ledger never exits 0.
        "failed": bool(halted or status == "failed" or a.get("ledger_broken")),
        "found_dead": found_dead,
        "version_after": version if proven else before,
        "serving": serving,
        "halted_by": halt,
        "hosts": host_outcomes(a.get("states"), a.get("hosts") or [], gate.get("hosts"), status, killed,
                               a.get("left_out") or [], found_dead, a.get("switches"), a.get("switches_back")),
    }


def ledger_artifact(a, status):
    """``lockstep_ledger`` for AWX's artifacts: the ledger this run writes (the ledger callback names it in the
    controller's environment, which every worker inherits), the status, and where the records went when it broke;
    None when no ledger callback runs."""
    if not a.get("ledger_file") and not a.get("ledger_broken"):
        return None
    return {"path": a.get("ledger_file") or None, "status": status, "broken": a.get("ledger_broken") or None}


# What the outcome reads of the release record (docs/CONTRACTS.md), and its value when the record lacks it.
FROM_RECORD = dict(before=None, halt=None, partial=False, first_hosts=[], first_stopped=[], killed_hosts=[],
                   unkilled_hosts=[], unknown=[], rollback_failed="", rollback_bad=[], reports={}, states={},
                   switches={}, switches_back={})


def flatten(args):
    """``decide``'s arguments from the action's: the release record's fields beside the others, and the hosts the
    release changed (halted, the rollback's plan decided them; otherwise its switches say)."""
    a = dict(args)
    record = a.pop("record", None) or {}
    for name, default in FROM_RECORD.items():
        a[name] = record.get(name, default)
    if a["before"] in ("", "None"):
        a["before"] = None  # ansible-core 2.16 and 2.18 render a None as ''
    hosts = a.get("hosts") or []
    a["changed"] = list(record.get("changed") or []) if a["halt"] else switched_hosts(a["switches"], hosts)
    return a


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    ARGS = dict(
        version=dict(type="str", required=True),
        record=dict(type="dict", default={}),
        census=dict(type="dict", default={}),
        check_mode=dict(type="bool", default=False),
        hosts=dict(type="list", elements="str", default=[]),
        left_out=dict(type="list", elements="str", default=[]),
        lb=dict(type="str", default="haproxy"),
        ledger_broken=dict(type="str", default=""),
        ledger_file=dict(type="str", default=""),
    )

    @scrubbed
    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        dummy, a = self.validate_argument_spec(argument_spec=self.ARGS)
        outcome = decide(flatten(a))
        outcome["ledger"] = ledger_artifact(a, outcome["status"])
        return {"changed": False, "lockstep_outcome": outcome, "msg": outcome["message"]}
