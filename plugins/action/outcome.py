# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for lockstep.release.outcome: the release's one status, decided from what the run recorded and what the
final census found, never inferred from the absence of a recorded failure."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.lockstep.release.plugins.plugin_utils.secrets import scrubbed

STATUSES = ("succeeded", "partial", "refused", "stopped", "rolled_back", "rollback_failed", "failed")


def _hosts(census):
    return [h["host"] for h in (census or {}).get("halted") or [] if isinstance(h, dict) and "host" in h]


def decide(a):
    """``{status, message, failed, found_dead, version_after, serving, halted_by}`` from the action's arguments.

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
    }


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    ARGS = dict(
        version=dict(type="str", required=True),
        before=dict(type="raw"),
        halt=dict(type="dict"),
        changed=dict(type="list", elements="str", default=[]),
        census=dict(type="dict", default={}),
        check_mode=dict(type="bool", default=False),
        partial=dict(type="bool", default=False),
        first_hosts=dict(type="list", elements="str", default=[]),
        first_stopped=dict(type="list", elements="str", default=[]),
        killed_hosts=dict(type="list", elements="str", default=[]),
        unkilled_hosts=dict(type="list", elements="str", default=[]),
        unknown=dict(type="list", elements="str", default=[]),
        rollback_failed=dict(type="str", default=""),
        rollback_bad=dict(type="list", elements="str", default=[]),
        lb=dict(type="str", default="haproxy"),
        reports=dict(type="dict", default={}),
        ledger_broken=dict(type="str", default=""),
    )

    @scrubbed
    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        dummy, a = self.validate_argument_spec(argument_spec=self.ARGS)
        if a["before"] in ("", "None"):
            a["before"] = None  # ansible-core 2.16 and 2.18 render a None as ''
        outcome = decide(a)
        return {"changed": False, "lockstep_outcome": outcome, "msg": outcome["message"]}
