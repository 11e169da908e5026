# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for lockstep.release.preflight: may this release start at all?

Runs once on the controller over every host's gathered state and the load balancer's view, and refuses before
anything changes. Every check runs, so the refusal lists every reason, and names the first.
"""

from __future__ import annotations

import json
import os

from ansible.plugins.action import ActionBase

from ansible_collections.lockstep.release.plugins.module_utils.release_record import slim_states
from ansible_collections.lockstep.release.plugins.plugin_utils.flags import conflicts, declared
from ansible_collections.lockstep.release.plugins.plugin_utils.gates import gate_result, service_versions
from ansible_collections.lockstep.release.plugins.plugin_utils.secrets import scrubbed


def flag_sources(target, states, manifest_dir=None, manifest_name=None):
    """``{version: (declaration, hosts)}`` for every version active or running on a host: what can run during the
    release, and what a host goes back to if it rolls back. Declarations come from the manifest each host keeps,
    else from the controller's manifest of that version."""
    where, decl = {}, {}
    for host, st in states.items():
        kept = {r.get("version"): r for r in st.get("releases") or []}
        for version in {st.get("active_version"), (st.get("running") or {}).get("version")} - {None}:
            where.setdefault(version, set()).add(host)
            rel = kept.get(version)
            if rel and rel.get("flags") is not None and version not in decl:
                decl[version] = declared({"flags": rel["flags"], "retired_flags": rel.get("retired_flags")})
    for version in where:
        if version not in decl and manifest_dir and manifest_name:
            try:
                with open(os.path.join(manifest_dir, manifest_name.replace("{version}", version))) as f:
                    decl[version] = declared(json.load(f))
            except (OSError, ValueError):
                pass
    return {v: (decl.get(v), hosts) for v, hosts in where.items() if v != target}


def resumable(target, states, interrupted):
    """``(old version, hosts already on target)`` when the fleet is the mixed state that an interrupted run of this
    very release leaves: its record (left next to the lock) names ``target``, and every host holds and runs only the
    one old version or ``target``. None otherwise."""
    if not interrupted or interrupted.get("version") != target:
        return None
    seen = set()
    for st in states.values():
        seen |= {st.get("active_version"), (st.get("running") or {}).get("version")} - {None}
    old = seen - {target}
    if len(old) != 1 or any(st.get("bare") for st in states.values()):
        return None
    on_target = sorted(h for h, st in states.items() if target in (
        st.get("active_version"), (st.get("running") or {}).get("version")))
    return (old.pop(), on_target) if on_target else None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    ARGS = dict(
        group=dict(type="str", required=True),
        expected_hosts=dict(type="list", elements="str", required=True),
        run_hosts=dict(type="list", elements="str", required=True),
        limit=dict(type="str"),
        states=dict(type="dict", required=True),
        errors=dict(type="dict", default={}),
        lb=dict(type="str", default="haproxy"),
        lb_servers=dict(type="dict"),
        lb_error=dict(type="str"),
        lb_addresses=dict(type="dict", default={}),
        manifest=dict(type="dict", required=True),
        min_free_bytes=dict(type="int", default=0),
        allow_partial=dict(type="bool", default=False),
        partial_reason=dict(type="str"),
        allow_mixed_start=dict(type="bool", default=False),
        manifest_dir=dict(type="path"),
        manifest_name=dict(type="str"),
        interrupted=dict(type="dict"),
        allow_flag_reuse=dict(type="bool", default=False),
        flag_reuse_reason=dict(type="str"),
        canary_hosts=dict(type="list", elements="str", default=[]),
        rehearse=dict(type="bool", default=True),
        rehearse_reason=dict(type="str", default=""),
    )

    @scrubbed
    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        dummy, a = self.validate_argument_spec(argument_spec=self.ARGS)
        target = a["manifest"]["version"]
        halted, warnings, excluded = [], [], []
        hosts = {}
        partial_ok = a["allow_partial"] and bool((a["partial_reason"] or "").strip())

        # 1. Completeness: the inventory group is the fleet; every host of it must be in this run and report.
        for host in a["expected_hosts"]:
            state = a["states"].get(host)
            if host not in a["run_hosts"]:
                why = "left out of the run by --limit %s" % a["limit"] if a["limit"] else "not in this run"
            elif not state:
                why = "did not report its release state: %s" % a["errors"].get(host, "unreachable or failed")
            else:
                hosts[host] = {"version": state.get("active_version"),
                               "running_version": (state.get("running") or {}).get("version")}
                continue
            hosts[host] = {"excluded": why}
            excluded.append(host)
            if partial_ok:
                warnings.append("%s excluded: %s" % (host, why))
            else:
                halted.append((host, why + " (fleet-completeness; a partial release needs lockstep_allow_partial "
                                           "and lockstep_partial_reason)"))

        # 2. Second source of truth: whatever the load balancer sends traffic to must be a host of the group. A load
        # balancer that does not answer is no source: which hosts serve traffic cannot be known, and no wave could be
        # drained, so nothing may change.
        if a["lb_error"]:
            halted.append(("controller", "%s (load-balancer)" % a["lb_error"]))
        elif a["lb_servers"] is None:
            warnings.append("no load balancer (lockstep_lb: %s): nothing is drained, and which hosts serve traffic has "
                            "no second source; the inventory alone says which hosts make the fleet" % a["lb"])
        else:
            for name, server in sorted(a["lb_servers"].items()):
                if server.get("serving") and name not in a["expected_hosts"]:
                    halted.append((name, "serves traffic through the load balancer (%s) but is not in inventory "
                                         "group %s (load-balancer)" % (server.get("addr"), a["group"])))
                # A backend entry named like a host but pointing elsewhere sends that host's share of traffic to
                # a machine lockstep never checks.
                want = a["lb_addresses"].get(name)
                if want and name in a["expected_hosts"] and server.get("addr") and server.get("addr") != want:
                    halted.append((name, "its load balancer entry points at %s, not at the host's service %s "
                                         "(load-balancer address)" % (server.get("addr"), want)))

        reporting = {h: s for h, s in a["states"].items() if s and h in a["expected_hosts"]}
        # 3a. A state this login may not read or change is no state: a privilege problem, never a mixed fleet, and
        # never found halfway through a wave.
        for host, st in sorted(reporting.items()):
            if st.get("unreadable"):
                halted.append((host, "cannot read its release state as user %s: %s (privilege; lockstep_become: true "
                                     "reads it with become)" % (st.get("user"), "; ".join(st["unreadable"]))))
            elif st.get("writable") is False:
                halted.append((host, "user %s cannot write %s (privilege; lockstep_become: true changes it with "
                                     "become)" % (st.get("user"), st.get("base"))))
        reporting = {h: s for h, s in reporting.items() if not s.get("unreadable")}
        # 3. Each host's own truth: the release it claims is the release it holds, and is what runs.
        for host, st in sorted(reporting.items()):
            if st.get("active_version") and not st.get("active_valid"):
                halted.append((host, "active release %s is not what its manifest says: %s (release-integrity)" % (
                    st.get("active_version"), st.get("active_problem"))))
            for rel in st.get("releases", []):
                if rel["version"] == target and not (
                        rel["valid"] and rel["content_sha256"] == a["manifest"].get("content_sha256")):
                    halted.append((host, "releases/%s already exists with the wrong content (%s) (release-integrity)"
                                   % (target, rel["problem"] or "content differs from the artifact")))
            if st.get("disk_free_bytes", 0) < a["min_free_bytes"]:
                halted.append((host, "only %d bytes free, %d needed (disk)" % (
                    st.get("disk_free_bytes", 0), a["min_free_bytes"])))

        # 4. One fleet, one version: a fleet that is already mixed is how Knight started.
        seen = {}
        for host, st in sorted(reporting.items()):
            run = st.get("running") or {}
            if st.get("bare") and not run.get("reachable"):
                key = "nothing"
            elif st.get("consistent"):
                key = st.get("active_version")
            else:
                key = "%s on disk / %s running" % (st.get("active_version"), run.get("version"))
            seen.setdefault(key, []).append(host)
        before = None
        befores = {h: st.get("active_version") for h, st in reporting.items()}
        resumed = resumable(target, reporting, a["interrupted"])
        inherited = []
        if len(seen) > 1 or (seen and not all(st.get("consistent") or st.get("bare") for st in reporting.values())):
            story = "; ".join("%s: %s" % (k, ",".join(v)) for k, v in sorted(seen.items(), key=lambda kv: -len(kv[1])))
            majority = max(seen.items(), key=lambda kv: len(kv[1]))[0]
            odd = next((h for k, v in seen.items() if k != majority for h in v),
                       next(iter(reporting), "fleet"))
            if resumed:
                # The same release, interrupted (its controller died): the mix is its own, old and target only.
                before, inherited = resumed
                befores = dict.fromkeys(reporting, before)
                warnings.append("continuing release %s of run %s, interrupted with %s already on it (%s)" % (
                    target, a["interrupted"].get("run_id"), ", ".join(inherited), story))
            elif a["allow_mixed_start"]:
                warnings.append("fleet starts mixed (%s)" % story)
            else:
                halted.append((odd, "the fleet is already mixed (%s) (mixed-fleet; lockstep_allow_mixed_start "
                                    "overrides)" % story))
        if seen and not resumed:
            top = max(seen.items(), key=lambda kv: len(kv[1]))[0]
            before = None if top == "nothing" else top

        # 5. Flag reuse (Knight's root cause): one name, one meaning, in every version that can run together.
        others = flag_sources(target, reporting, a["manifest_dir"], a["manifest_name"])
        found = conflicts(target, declared(a["manifest"]), others)
        names = sorted((declared(a["manifest"]) or ({}, set()))[0])
        if found and a["allow_flag_reuse"] and (a["flag_reuse_reason"] or "").strip():
            verdict = "flag reuse ALLOWED by the operator (%s): %s" % (a["flag_reuse_reason"].strip(), found[0])
            warnings.append(verdict)
        elif found:
            verdict = "flag-reuse refused: " + found[0]
            first = sorted(next((h for v, (d, h) in others.items() if v in found[0]), None) or ["fleet"])[0]
            halted.append((first, "%s (flag-reuse; lockstep_allow_flag_reuse with lockstep_flag_reuse_reason "
                                  "overrides, only once no client sends the flag)" % "; ".join(found)))
        else:
            verdict = "flags consistent: %s across %s" % (
                ", ".join(names) or "no flags", ", ".join(sorted(set(others) | {target})))

        # 6. The rollback rehearsal (issue 20): on canary hosts that have a release to go back to.
        to_rehearse = [h for h in a["canary_hosts"] if befores.get(h) and befores.get(h) != target]
        if not a["rehearse"]:
            rehearsal = "rollback rehearsal OFF by the operator (%s)" % (a["rehearse_reason"] or "").strip()
            warnings.append(rehearsal)
        elif to_rehearse:
            rehearsal = ("the rollback is rehearsed on %s after its gate (back to %s, forward to %s again), before any "
                         "other host changes" % (", ".join(to_rehearse), befores[to_rehearse[0]], target))
        elif before is None:
            rehearsal = "no rollback rehearsal: a first release, there is nothing to go back to"
        else:
            rehearsal = "no rollback rehearsal: the canary already runs %s" % target

        result = gate_result("preflight", hosts, halted, extra_msg="; ".join(warnings) or None,
                             excluded=excluded, partial=bool(excluded) and partial_ok, flags=verdict,
                             lb=a["lb"] if a["lb_servers"] is not None else "none")
        result["before_version"] = before
        result["befores"] = befores
        result["states"] = slim_states(a["states"])  # the release record's: the one read of each host
        # What each host runs now: the baseline's smoke checks and a refusal's census expect exactly this.
        result["found"] = {h: (st.get("running") or {}).get("version") or st.get("active_version")
                           for h, st in reporting.items()}
        result["inherited"] = inherited
        result["excluded"] = excluded
        result["partial"] = bool(excluded) and partial_ok
        result["flag_verdict"] = verdict
        result["rehearse"] = bool(a["rehearse"] and to_rehearse)
        result["rehearsal"] = rehearsal
        # The flags the running release introduced: what a baseline or rollback smoke check exercises.
        before_decl = (others.get(before) or (None, None))[0] if before else None
        before_flags = (before_decl or ({}, set()))[0]
        result["before_flags"] = sorted(n for n, f in before_flags.items() if f.get("since") == before)
        result["reports"] = service_versions(a["states"].values(), target, a["manifest"])
        return result
