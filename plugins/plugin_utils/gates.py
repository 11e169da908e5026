# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The result every lockstep gate returns, so the ledger, the summary and AWX read one shape."""

from __future__ import annotations

import os

# Set by the ledger callback when the ledger cannot be written mid-release (it continues in a fallback file). The
# callback cannot stop a release that already changed hosts without stranding them, so every gate that lets the
# release go FORWARD halts on it; the rollback's gates and the final census do not, so the fleet goes back.
LEDGER_BROKEN_ENV = "LOCKSTEP_LEDGER_BROKEN"
NOT_FORWARD = ("rollback", "final")


def gate_result(gate, hosts, halted, extra_msg=None, halt=True, **extra):
    """``halted`` is a list of ``(host, message)``; the gate passes when it is empty. With ``halt=False`` a gate
    that does not pass still returns normally: the role records the halt itself (a failing ``run_once`` task would
    make Ansible drop every other host of the play from the rest of the run)."""
    broken = os.environ.get(LEDGER_BROKEN_ENV)
    if broken and not str(gate).startswith(NOT_FORWARD):
        halted = list(halted) + [("controller", "the ledger cannot be written: %s (ledger)" % broken)]
    passed = not halted
    if passed:
        msg = "gate %s passed on %d host(s)" % (gate, len(hosts))
    else:
        first_host, first_msg = halted[0]
        more = " (and %d more: %s)" % (len(halted) - 1, ", ".join(h[0] for h in halted[1:])) if len(halted) > 1 else ""
        msg = "gate %s halted the release on %s: %s%s" % (gate, first_host, first_msg, more)
    if extra_msg:
        msg = "%s; %s" % (msg, extra_msg)
    result = {
        "changed": False,
        "failed": not passed and halt,
        "msg": msg,
        "lockstep_gate": {
            "gate": gate,
            "passed": passed,
            "hosts": hosts,
            "halted": [{"host": h, "message": m} for h, m in halted],
            "message": msg,
        },
    }
    result["lockstep_gate"].update(extra)
    return result


def service_versions(states, target=None, manifest=None):
    """``{label: version the service reports}`` for every release whose manifest says the service reports another
    version than the release's label (``service_version``), from the hosts' states (their kept releases) and the
    target's manifest. Empty for every release that reports its label, as most do."""
    out = {}
    for st in states:
        for rel in (st or {}).get("releases") or []:
            reported = rel.get("service_version")
            if reported and reported != rel.get("version"):
                out[rel["version"]] = reported
    if target and (manifest or {}).get("service_version") not in (None, "", target):
        out[target] = manifest["service_version"]
    return out
