# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that turn per-host registered results into the fleet-wide maps lockstep's gates take."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.utils.display import Display

from ansible_collections.lockstep.release.plugins.module_utils.release_record import write
from ansible_collections.lockstep.release.plugins.plugin_utils.waves import WaveSpecError, serial_list


def _paired(hosts, results):
    """``(host, result)`` for each host and its result (``results`` in the order of ``hosts``; a host without one,
    or whose value is not a result, pairs with None)."""
    results = list(results or [])
    for i, host in enumerate(hosts or []):
        res = results[i] if i < len(results) else None
        yield host, res if isinstance(res, Mapping) else None


def host_results(hosts, results, key=None):
    """``{host: result[key]}`` for every host whose result succeeded. ``results``: each host's registered result, in
    the order of ``hosts`` (``hosts | map('extract', hostvars, 'name') | map('default', none)``)."""
    out = {}
    for host, res in _paired(hosts, results):
        if res is not None and not res.get("failed") and not res.get("skipped"):
            out[host] = res.get(key) if key else res
    return out


def host_failures(hosts, results):
    """``{host: message}`` for every host whose result failed (``results`` as for ``host_results``)."""
    out = {}
    for host, res in _paired(hosts, results):
        if res is not None and res.get("failed"):
            out[host] = res.get("msg") or "failed"
    return out


# What the release reads of a deploy call's result once the wave is over: whether the host switched, failed or was
# lost mid-call, and what it said. Kept per host in the release record, which every later task reads.
SWITCH_KEYS = ("switched", "changed", "failed", "skipped", "msg", "previous_version", "lockstep_unreachable",
               "lockstep_never_connected")


def switch_outcomes(hosts, results):
    """``{host: outcome}``: of each host's deploy result (``results`` in the order of ``hosts``; a host without one
    was not switched: ``{"skipped": true}``), only SWITCH_KEYS."""
    out = {}
    for host, res in _paired(hosts, results):
        res = res if res is not None else {"skipped": True}
        out[host] = {k: res[k] for k in SWITCH_KEYS if k in res}
    return out


def switched_hosts(results, hosts):
    """Hosts whose ``current`` symlink their deploy call moved (even if the call failed afterwards), and hosts whose
    connection dropped during the call: nobody knows whether they switched, so they count as changed. ``results``:
    ``{host: deploy result}``, as the release record keeps them (``switches``, ``switches_back``)."""
    out = []
    for h in hosts:
        res = (results or {}).get(h) or {}
        if res.get("switched") or (res.get("lockstep_unreachable") and not res.get("lockstep_never_connected")):
            out.append(h)
    return out


def unknown_hosts(results, hosts):
    """Hosts whose deploy call lost its connection: changed-unknown. ``results`` as for ``switched_hosts``."""
    return [h for h in hosts if ((results or {}).get(h) or {}).get("lockstep_unreachable")
            and not ((results or {}).get(h) or {}).get("lockstep_never_connected")]


def lb_managed(hosts, lb_before, ours=()):
    """The hosts lockstep may drain and put back: servers it found in the backend and not set aside by an operator
    (MAINT or DRAIN at preflight stays as found), or that lockstep itself left drained (``ours``)."""
    out = []
    for h in hosts or []:
        status = str((lb_before or {}).get(h, {}).get("status", "")) if h in (lb_before or {}) else None
        if h in (ours or ()) or (status is not None and not status.startswith(("MAINT", "DRAIN"))):
            out.append(h)
    return out


def lb_track(drained, servers, after):
    """Servers lockstep holds drained, after a load balancer step on ``servers`` that left the backend as ``after``
    (the step's ``servers`` result). Only what HAProxy confirmed counts: a server is held once HAProxy shows it out
    of service, and released once HAProxy shows it serving again."""
    held = list(drained or [])
    for name in servers or []:
        info = (after or {}).get(name)
        if info is None:
            continue
        if info.get("serving") and name in held:
            held.remove(name)
        elif not info.get("serving") and name not in held:
            held.append(name)
    return held


def lb_confirmed(servers, after, status="MAINT"):
    """The servers HAProxy's own answer shows in ``status``: what a summary may claim was done."""
    return [n for n in servers or [] if str(((after or {}).get(n) or {}).get("status", "")).startswith(status)]


_ASKED = {"drained": "drained (not serving)", "maint": "in MAINT (not serving)", "ready": "serving"}


def lb_result(backends, op, servers, source="the task file"):
    """A task-file load balancer's answer (``lockstep_lb_backends``: server -> ``{status, serving[, addr]}``, or
    server -> status) checked against the step asked for and shaped like lockstep.release.haproxy's result. A
    server missing from the answer, or not in the state asked for, is the step's ``lockstep_lb_error``: lockstep
    never claims a drain or a return to service the load balancer did not confirm."""
    out = {"lb": "tasks", "servers": {}, "serving": []}
    if not isinstance(backends, dict):
        msg = ("%s did not set lockstep_lb_backends (a dict: server name -> {status, serving}) after %s"
               % (source, op))
        return dict(out, msg=msg, lockstep_lb_error=msg)
    for name, info in backends.items():
        info = {"status": info} if isinstance(info, str) else dict(info or {})
        status = str(info.get("status", "")).upper()
        serving = info.get("serving", status.startswith("UP"))
        serving = serving if isinstance(serving, bool) else str(serving).lower() in ("true", "yes", "1", "on")
        out["servers"][str(name)] = dict(info, status=status, serving=serving)
    out["serving"] = sorted(n for n, i in out["servers"].items() if i["serving"])
    problems = []
    unknown = [n for n in servers or [] if n not in out["servers"]]
    if unknown:
        problems.append("the load balancer has no server named %s" % ", ".join(unknown))
    if op in _ASKED:
        want = op == "ready"
        wrong = [n for n in servers or [] if n in out["servers"] and out["servers"][n]["serving"] != want]
        if wrong:
            problems.append("servers %s not %s after %s" % (", ".join(wrong), _ASKED[op], op))
    if problems:
        out["lockstep_lb_error"] = "%s: %s" % (source, "; ".join(problems))
    out["msg"] = out.get("lockstep_lb_error") or "%s: %s %s" % (source, op, ", ".join(servers or []) or "(query)")
    return out


def wave_index(waves, batch):
    """Position of ``batch`` in the planned waves (len(waves) when it is not one of them)."""
    batch = list(batch or [])
    for i, wave in enumerate(waves or []):
        if list(wave) == batch:
            return i
    return len(waves or [])


def pending_hosts(states, hosts, version):
    """Hosts that do not already run ``version`` from a valid active release: the ones a wave must change.
    Skipping the others is what makes re-running a release change nothing. ``states``: each host's release state
    at preflight (the release record's ``states``)."""
    out = []
    for h in hosts:
        state = (states or {}).get(h) or {}
        if not (state.get("active_version") == version and state.get("consistent")):
            out.append(h)
    return out


def previous_release(states, hosts):
    """The release to roll back to: the newest release older than the fleet's active one that every host of
    ``hosts`` keeps with valid content (``states``: each host's release state). None when there is none."""
    from ansible_collections.lockstep.release.plugins.module_utils.release_state import version_key

    states = [(states or {}).get(h) for h in hosts]
    states = [s for s in states if s]
    if not states or len(states) != len(hosts):
        return None
    actives = [s.get("active_version") for s in states if s.get("active_version")]
    if not actives:
        return None
    active = max(set(actives), key=actives.count)
    common = None
    for s in states:
        kept = {r["version"] for r in s.get("releases", []) if r.get("valid")}
        common = kept if common is None else common & kept
    older = [v for v in common or () if version_key(v) < version_key(active)]
    return max(older, key=version_key) if older else None


def before_versions(states, hosts):
    """Each host's active version at preflight (None on a bare host; ``states``: each host's release state): where a
    host that did not change must still be, and where a host that changed goes back to, also when the fleet
    started mixed."""
    return {h: ((states or {}).get(h) or {}).get("active_version") for h in hosts}


def halt_message(gate, fallback):
    """The reason a gate halted, for one readable line: its first host's message (the gate and host are named
    beside it), plus how many more hosts it halted on; ``fallback`` when the failure was not a gate's."""
    halted = (gate or {}).get("halted") or []
    if not halted:
        return fallback
    more = [h.get("host") for h in halted[1:]]
    return halted[0].get("message", fallback) + (" (and %d more: %s)" % (len(more), ", ".join(more)) if more else "")


def judgement(cause, phase, gate, host):
    """The release record's ``halt`` for a gate or step that did not pass, the one judgement of every phase
    (roles/common/tasks/halt.yml, and the rollout wave's end, which writes it with the wave's count): the gate that
    halted (the gate's report's name, else a deploy check's, else ``gate``), its first halted host (else ``host``,
    the host that met the failure) and the reason. ``cause``: the gate's registered result, or a failed task's."""
    cause = cause or {}
    failed_gate = cause.get("lockstep_gate") or {}
    halted = failed_gate.get("halted") or [{"host": host}]
    return {"phase": phase, "gate": failed_gate.get("gate") or cause.get("lockstep_check") or gate,
            "host": halted[0].get("host") or host,
            "message": halt_message(failed_gate, cause.get("msg") or "failed")}


def expect_versions(hosts, done, target, before):
    """Expected version per host: ``target`` for hosts in ``done``, ``before`` (one version, or a map of host to
    version) for the others."""
    done = set(done or [])
    return {h: (target if h in done else (before.get(h) if isinstance(before, dict) else before)) for h in hosts}


def service_addresses(hostvars, hosts, var="lockstep_service_url"):
    """``{host: "ip:port"}`` from each host's service URL: the address its load balancer entry must point at."""
    from urllib.parse import urlsplit

    out = {}
    for h in hosts:
        url = urlsplit(str(hostvars[h].get(var) or ""))
        if url.hostname:
            out[h] = "%s:%s" % (url.hostname, url.port or (443 if url.scheme == "https" else 80))
    return out


def host_urls(hostvars, hosts, path="", var="lockstep_service_url"):
    return {h: "%s%s" % (str(hostvars[h][var]).rstrip("/"), path) for h in hosts}


def host_values(hostvars, hosts, var, default=None, key=None):
    """``{host: value}``: each host's own ``var`` (its inventory, facts and extra vars: ``hostvars``), else
    ``default`` (what the task sees: the play's and roles' value); with ``key``, that key of the value, for the hosts
    whose value has it. Read in one task for every host, where a condition on each host would cost the controller a
    task per host."""
    out = {}
    for h in hosts:
        value = hostvars[h].get(var, default)
        if key is None:
            out[h] = value
        elif isinstance(value, Mapping) and key in value:
            out[h] = value[key]
    return out


def prune_hosts(hosts, states, keeps, version):
    """Hosts that keep more releases than their ``keeps`` (host -> lockstep_keep_releases) once ``version`` is on:
    ``states`` is each host's registered release state (``lockstep.release.state``) in the order of ``hosts``."""
    out = []
    for host, res in _paired(hosts, states):
        releases = ((res or {}).get("lockstep_state") or {}).get("releases") or []
        others = [r for r in releases if not (isinstance(r, Mapping) and r.get("version") == version)]
        if len(others) + 1 > int((keeps or {}).get(host, 0)):
            out.append(host)
    return out


def serial(canary, waves):
    """The rollout play's ``serial``: the canary and the waves the plan accepts, else one batch of every host.

    Ansible templates ``serial`` before any task runs and crashes on a value it cannot read (a traceback, exit
    250, no status): the plan refuses such waves with its own message, and the waves play then skips every task
    of its single batch, so the refusal ends as a refusal.
    """
    try:
        return serial_list(canary, waves)
    except (WaveSpecError, TypeError, ValueError):
        return ["100%"]


def record(current, change=None):
    """The release record after one write (``change``: ``{set, add, reset}``), checked against its schema
    (plugins/module_utils/release_record.py). Never raises: a refused write halts the release instead, and says so."""
    change = change or {}
    new, error = write(current, change.get("set"), change.get("add"), bool(change.get("reset")))
    if error:
        Display().warning(error)
    return new


class FilterModule:
    def filters(self):
        return {
            "serial": serial,
            "host_results": host_results,
            "host_failures": host_failures,
            "expect_versions": expect_versions,
            "switched_hosts": switched_hosts,
            "switch_outcomes": switch_outcomes,
            "unknown_hosts": unknown_hosts,
            "lb_managed": lb_managed,
            "lb_track": lb_track,
            "lb_confirmed": lb_confirmed,
            "lb_result": lb_result,
            "wave_index": wave_index,
            "before_versions": before_versions,
            "pending_hosts": pending_hosts,
            "previous_release": previous_release,
            "halt_message": halt_message,
            "judgement": judgement,
            "host_urls": host_urls,
            "host_values": host_values,
            "prune_hosts": prune_hosts,
            "service_addresses": service_addresses,
            "record": record,
        }
