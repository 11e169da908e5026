# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for lockstep.release.gate: is every host on the version it should be on, on disk and running?"""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.lockstep.release.plugins.module_utils.release_state import parse_version
from ansible_collections.lockstep.release.plugins.plugin_utils.gates import gate_result, service_versions
from ansible_collections.lockstep.release.plugins.plugin_utils.http import fan_out, request
from ansible_collections.lockstep.release.plugins.plugin_utils.secrets import scrubbed


def _probe(url):
    # The JSON field that holds the version travels as the URL's fragment (".../version#build.version"): a fragment
    # is never sent to the service, and every version URL of a gate carries its own.
    url, dummy, field = url.partition("#")
    resp = request(url, timeout=5.0)
    if resp.status != 200:
        return {"reachable": False, "error": resp.describe()}
    version, data, problem = parse_version(resp.body, field or None)
    if version is None:
        return {"reachable": False, "error": problem}
    return {"reachable": True, "version": version, "directory": (data or {}).get("directory")}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    ARGS = dict(
        halt=dict(type="bool", default=True),
        gate=dict(type="str", required=True),
        expect=dict(type="dict", required=True),
        states=dict(type="dict", default={}),
        state_hosts=dict(type="list", elements="str"),
        version_urls=dict(type="dict", default={}),
        wave=dict(type="dict"),
        # {label: the version the service reports}, for releases that report another version than their label.
        reports=dict(type="dict", default={}),
        # Hosts of a halted first release: proven when nothing serves on them, whatever stays on disk.
        stopped=dict(type="list", elements="str", default=[]),
    )

    @scrubbed
    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGS)
        expect = args["expect"]
        reports = dict(service_versions(args["states"].values()), **args["reports"])
        probes = fan_out(_probe, {h: args["version_urls"][h] for h in expect if h in args["version_urls"]})
        hosts, halted = {}, []
        # Hosts whose on-disk state must be known; by default every host when states are given at all.
        state_hosts = set(args["state_hosts"] if args["state_hosts"] is not None else (
            expect if args["states"] or not args["version_urls"] else ()))
        for host in sorted(expect):
            want = expect[host]
            row = {"expected": want}
            problems = []
            state = args["states"].get(host)
            if host in args["stopped"]:
                row["expected"] = "stopped"
                run = (state or {}).get("running") or {}
                if run.get("reachable") or run.get("version"):
                    problems.append("process %s still answers, reporting %s" % (run.get("pid"), run.get("version")))
                if probes.get(host, {}).get("reachable"):
                    problems.append("still answers, reporting %s" % probes[host].get("version"))
                row["ok"] = not problems
                hosts[host] = row
                if problems:
                    halted.append((host, "%s (expected stopped: nothing to go back to)" % "; ".join(problems)))
                continue
            if state is not None:
                run = state.get("running") or {}
                row.update(version=state.get("active_version"), running_version=run.get("version"),
                           from_active=run.get("from_active"))
                if state.get("active_version") != want:
                    problems.append("%s on disk" % (state.get("active_version") or "nothing"))
                elif want is not None and not state.get("active_valid"):
                    problems.append("release content does not match its manifest (%s)" % state.get("active_problem"))
                if want is not None and not (run.get("version") == want and run.get("from_active")):
                    problems.append("process %s runs %s from %s" % (
                        run.get("pid"), run.get("version"), run.get("cwd") or run.get("error")))
            elif host in state_hosts:
                problems.append("did not report its state")
            if host in probes:
                p = probes[host]
                row["reported_version"] = p.get("version")
                if want is not None and p.get("version") not in {want, reports.get(want, want)}:
                    problems.append("reports %s" % (p.get("version") if p["reachable"] else p["error"]))
            row["ok"] = not problems
            hosts[host] = row
            if problems:
                halted.append((host, "%s (expected %s)" % ("; ".join(problems), want or "no release")))
        extra = {}
        if args["wave"]:
            extra["wave"] = args["wave"]
        result = gate_result(args["gate"], hosts, halted, halt=args["halt"], **extra)
        if args["wave"] and not halted:
            result["lockstep_wave"] = args["wave"]
        return result
