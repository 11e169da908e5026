# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for lockstep.release.audit: the fleet audit's HTTP layer and its verdict, on the controller."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.lockstep.release.plugins.plugin_utils.audit import format_audit, judge, message, probe_fleet
from ansible_collections.lockstep.release.plugins.plugin_utils.secrets import scrubbed


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    ARGS = dict(
        urls=dict(type="dict", required=True),
        base=dict(type="str"),
        probes=dict(type="dict"),
        layers=dict(type="list", elements="str", default=["http", "ssh"]),
        states=dict(type="dict", default={}),
        errors=dict(type="dict", default={}),
        lb_servers=dict(type="dict"),
        lb_error=dict(type="str"),
        lock=dict(type="dict"),
        expect=dict(type="str"),
        service=dict(type="str", default="running", choices=["running", "stopped"]),
        drained_ok=dict(type="bool", default=False),
        settle=dict(type="float", default=0.0),
        timeout=dict(type="float", default=2.0),
        report=dict(type="bool", default=True),
        gate=dict(type="str", default="audit"),
        halt=dict(type="bool", default=True),
    )

    @scrubbed
    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        dummy, a = self.validate_argument_spec(argument_spec=self.ARGS)
        bad_layers = sorted(set(a["layers"]) - {"http", "ssh"})
        if bad_layers or not a["layers"]:
            return {"failed": True, "changed": False,
                    "msg": "layers must be http and/or ssh, got %s" % (", ".join(a["layers"]) or "none")}
        # A verdict reuses the probes of the HTTP layer that ran first: the HTTP layer is judged on what it saw.
        probes = a["probes"] if a["probes"] is not None else probe_fleet(a["urls"], a["timeout"], a["settle"])
        hosts = sorted(a["urls"])
        audit = judge(hosts, a["urls"], probes, base=a["base"], states=a["states"], errors=a["errors"],
                      layers=a["layers"], lb_servers=a["lb_servers"], lb_error=a["lb_error"], lock=a["lock"],
                      expect=a["expect"], service=a["service"], drained_ok=a["drained_ok"])
        msg = message(audit)
        result = {"changed": False, "failed": a["halt"] and not audit["passed"], "msg": msg, "probes": probes}
        if a["report"]:
            audit["table"] = format_audit(audit)
            result["lockstep_audit"] = audit
            result["lockstep_gate"] = {
                "gate": a["gate"],
                "passed": audit["passed"],
                "hosts": {h: {"ok": r.get("ok"), "running": r.get("running"), "active": r.get("active")}
                          for h, r in audit["hosts"].items()},
                "halted": audit["problems"],
                "message": msg,
            }
        else:
            result["passed"] = audit["passed"]
        return result
