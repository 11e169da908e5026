# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet audit's judgement: what every host runs, compared with the fleet, the load balancer and the lock.

Stdlib only, shared by the ``lockstep.release.audit`` action (inside ``playbooks/verify.yml``, ``halt.yml`` and
``resume.yml``) and by ``bin/lockstep audit --http`` (the fast standalone HTTP layer, which must not pay for
Ansible's start-up).
"""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from urllib.parse import urlsplit

from ansible_collections.lockstep.release.plugins.module_utils.release_state import parse_version
from ansible_collections.lockstep.release.plugins.plugin_utils.http import fan_out, request, safe_url

HEADERS = ("host", "running", "active", "content", "flags", "from_active", "lb", "verdict")


def probe(url, timeout=2.0):
    """What a host's process says about itself: ``{reachable, version, sha256, content_sha256, directory, pid}``.

    The minimum is a version (plain text, or the JSON field named by the URL's fragment, default ``version``); the
    other keys are None unless the service reports them.
    """
    url, dummy, field = url.partition("#")
    resp = request(url, timeout=timeout)
    if resp.status != 200:
        return {"reachable": False, "error": resp.describe()}
    version, data, problem = parse_version(resp.body, field or None)
    if version is None:
        return {"reachable": False, "error": problem}
    out = {"reachable": True, "error": None}
    for key in ("sha256", "content_sha256", "directory", "pid"):
        out[key] = (data or {}).get(key)
    out["version"] = version
    return out


def probe_fleet(urls, timeout=2.0, settle=0.0):
    """Probe every host concurrently; with ``settle`` seconds, probe again the hosts that did not answer until
    they do or the time is up (a service just started needs a moment to bind its port)."""
    probes = fan_out(lambda u: probe(u, timeout), urls, workers=256)
    deadline = time.monotonic() + settle
    while settle and time.monotonic() < deadline:
        missing = {h: urls[h] for h, p in probes.items() if not p["reachable"]}
        if not missing:
            break
        time.sleep(0.2)
        probes.update(fan_out(lambda u: probe(u, timeout), missing, workers=256))
    return probes


def _netloc(url):
    try:
        parts = urlsplit(url)
        return "%s:%s" % (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except ValueError:
        return None


def _majority(values):
    """The most common value (ties: the one seen first in host order), or None."""
    counted = Counter(v for v in values if v is not None)
    if not counted:
        return None
    top = max(counted.values())
    return next(v for v in values if v is not None and counted[v] == top)


def lock_holder(lock):
    """The lock's holder in one line, and whether its process is known dead (only provable from its controller)."""
    if not lock:
        return None, False
    dead = False
    if lock.get("controller") == socket.gethostname():
        try:
            os.kill(int(lock.get("pid")), 0)
        except ProcessLookupError:
            dead = True
        except (OSError, TypeError, ValueError):
            pass
    who = "release of %s by %s@%s (pid %s, run %s) since %s" % (
        lock.get("version"), lock.get("user"), lock.get("controller"), lock.get("pid"), lock.get("run_id"),
        lock.get("started"))
    return who, dead


def judge(hosts, urls, probes, base=None, states=None, errors=None, layers=("http", "ssh"), lb_servers=None,
          lb_error=None, lock=None, expect=None, service="running", drained_ok=False):
    """The audit of a fleet. Returns ``{"passed", "version", "hosts": {host: row}, "problems": [{host, message}],
    "lb", "lock", "layers"}``; every problem names its host (or the load balancer server, or the lock).

    ``service="stopped"`` judges a halted fleet instead: no host may still answer, and no server may serve.
    """
    states = states or {}
    errors = errors or {}
    ssh = "ssh" in layers
    problems = []
    rows = {}

    def bad(host, message, row=True):
        problems.append({"host": host, "message": message})
        if row:
            rows.setdefault(host, {"host": host, "problems": []})["problems"].append(message)

    def label(host):
        # What the process reports, in release labels: a release whose service reports another version than its
        # label (its manifest's service_version) is known by its label once the host's state names it.
        p, run = probes.get(host) or {}, ((states.get(host) or {}).get("running") or {})
        if p.get("version") is not None and p.get("version") == run.get("reported_version"):
            return run.get("version")
        return p.get("version")

    if service == "running":
        seen = [label(h) for h in hosts] if "http" in layers else [
            (states.get(h) or {}).get("running_version") for h in hosts]
        version = expect or _majority(seen)
        if ssh:
            content = _majority([(states.get(h) or {}).get("active_content_sha256") for h in hosts])
            flags = _majority([_flag_names((states.get(h) or {}).get("flags")) for h in hosts])
    else:
        version = content = flags = None

    for host in hosts:
        p = probes.get(host) or {"reachable": False, "error": "not probed"}
        st = states.get(host)
        run = (st or {}).get("running") or {}
        row = rows.setdefault(host, {"host": host, "problems": []})
        if "http" in layers:
            row.update(running=label(host), pid=p.get("pid"), directory=p.get("directory"))
            if label(host) != p.get("version"):
                row["reported"] = p.get("version")
        else:
            row.update(running=run.get("version"), pid=run.get("pid"), directory=run.get("directory"))
        if st is not None:
            row.update(active=st.get("active_version"), content=st.get("active_content_sha256"),
                       flags=_flag_names(st.get("flags")), from_active=run.get("from_active"),
                       active_valid=st.get("active_valid"))
        if service == "stopped":
            why = []
            if p.get("reachable"):
                why.append("still answers on %s (version %s, pid %s)" % (
                    safe_url(urls.get(host)), p.get("version"), p.get("pid")))
            if host in errors:
                why.append("stop failed: %s" % errors[host])
            if why:
                bad(host, "not confirmed stopped: %s" % "; ".join(why))
            continue
        # HTTP layer: what the process says about itself, from the controller.
        if "http" not in layers:
            pass
        elif not p.get("reachable"):
            bad(host, "does not report over HTTP: %s" % p.get("error"))
        else:
            if version is not None and label(host) != version:
                bad(host, "process %s runs %s, the fleet runs %s" % (p.get("pid"), p.get("version"), version))
            # Only a service that reports its start directory can be judged on it here; the SSH layer asks /proc.
            if base and p.get("directory") is not None:
                tree = os.path.join(base, "releases", str(label(host)))
                if os.path.normpath(str(p.get("directory"))) != tree:
                    bad(host, "process %s was started from %s, outside the release tree (expected %s)" % (
                        p.get("pid"), p.get("directory"), tree))
        if not ssh:
            continue
        # SSH layer: what only the host can tell (the release on disk, its content, the kernel's view of the pid).
        if st is None:
            bad(host, "does not report over SSH: %s" % errors.get(host, "no state"))
            continue
        if st.get("active_version") is None:
            bad(host, "no active release (%s)" % (st.get("active_problem") or "current points nowhere"))
        elif version is not None and st.get("active_version") != version:
            bad(host, "active release is %s, the fleet runs %s" % (st.get("active_version"), version))
        if st.get("active_version") is not None and not st.get("active_valid"):
            bad(host, "active release %s does not match its manifest: %s" % (
                st.get("active_version"), st.get("active_problem")))
        elif content is not None and st.get("active_content_sha256") != content:
            bad(host, "active release content %s differs from the fleet's %s" % (
                str(st.get("active_content_sha256"))[:12], content[:12]))
        for rel in st.get("releases") or []:
            if not rel.get("valid") and rel.get("path") != st.get("active_path"):
                bad(host, "kept release %s does not match its manifest: %s" % (rel.get("version"),
                                                                               rel.get("problem")))
        if run.get("reachable") and not run.get("from_active"):
            bad(host, "process %s was not started from the active release %s (cwd %s)" % (
                run.get("pid"), st.get("active_path"), run.get("cwd")))
        if flags is not None and _flag_names(st.get("flags")) != flags:
            bad(host, "flags in effect %s differ from the fleet's %s" % (
                _flag_names(st.get("flags")) or "-", flags or "-"))

    lb = {}
    if lb_error:
        bad("load-balancer", "the load balancer did not answer: %s" % lb_error, row=False)
    if lb_servers is not None:
        where = {h: _netloc(urls[h]) for h in hosts if h in urls}
        for name, srv in sorted(lb_servers.items()):
            status = srv.get("status") or "?"
            lb[name] = status
            if name in rows:
                rows[name]["lb"] = status
            if name not in where:
                if srv.get("serving"):
                    bad(name, "HAProxy serves traffic to %s (%s), which is not in the inventory group" % (
                        name, srv.get("addr")))
                continue
            if srv.get("addr") and where[name] and srv.get("addr") != where[name]:
                bad(name, "HAProxy sends %s's traffic to %s, the inventory says %s"
                    % (name, srv.get("addr"), where[name]))
            if service == "stopped":
                if srv.get("serving"):
                    bad(name, "still served by HAProxy (status %s)" % status)
            elif not drained_ok and not srv.get("serving"):
                bad(name, "left %s in HAProxy (takes no traffic)" % status)
        for host in hosts:
            if host not in lb_servers:
                bad(host, "not in the load balancer's backend")
    holder, dead = lock_holder(lock)
    if holder:
        bad("release-lock", "release lock held: %s%s" % (
            holder, " - that process is gone: a dead run (bin/lockstep lock show|break)" if dead else ""), row=False)

    for row in rows.values():
        row["ok"] = not row["problems"]
    return {
        "passed": not problems,
        "version": version,
        "service": service,
        "layers": list(layers),
        "hosts": rows,
        "problems": problems,
        "lb": lb,
        "lock": dict(lock, holder=holder, dead=dead) if lock else None,
    }


def _flag_names(flags):
    """The names of the flags a release reads, enabled ones only, as one comparable string."""
    if isinstance(flags, dict) and isinstance(flags.get("flags"), (dict, list)):
        flags = flags["flags"]
    if isinstance(flags, dict):
        return ",".join(sorted(k for k, v in flags.items() if not (isinstance(v, dict) and v.get("enabled") is False)))
    if isinstance(flags, list):
        return ",".join(sorted(str(f.get("name") if isinstance(f, dict) else f) for f in flags))
    return None


def _cell(value):
    if value is None or value == "":
        return "-"
    if value is True:
        return "yes"
    if value is False:
        return "NO"
    return str(value).replace("\n", " ")


def format_audit(audit):
    """The audit as one table for people (deterministic: no times), then one line per problem."""
    ok = audit.get("passed")
    title = "LOCKSTEP FLEET AUDIT (%s): %s, version %s" % (
        "+".join(audit.get("layers") or []) or "-", "PASSED" if ok else "FAILED", _cell(audit.get("version")))
    if audit.get("service") == "stopped":
        title = "LOCKSTEP HALT: %s" % ("every host stopped and out of the load balancer" if ok else "NOT CONFIRMED")
    rows = []
    hosts = audit.get("hosts") or {}
    for name in sorted(hosts, key=_host_order):
        r = hosts[name]
        content = r.get("content")
        rows.append([name, r.get("running"), r.get("active"), content[:12] if content else None, r.get("flags"),
                     r.get("from_active"), r.get("lb") or (audit.get("lb") or {}).get(name),
                     "ok" if r.get("ok") else "DRIFT"])
    cells = [list(HEADERS)] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(HEADERS))]
    lines = [title]
    for n, row in enumerate(cells):
        lines.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    for p in audit.get("problems") or []:
        lines.append("%s: %s" % (p["host"], p["message"]))
    lock = audit.get("lock")
    if not lock:
        lines.append("release lock: free")
    return "\n".join(lines)


def _host_order(name):
    digits = "".join(c for c in name if c.isdigit())
    return (name.rstrip("0123456789"), int(digits) if digits else -1, name)


def message(audit):
    """One line naming every host that is not right, for the failing task and the exit of ``bin/lockstep``."""
    if audit.get("passed"):
        return "fleet audit passed: %d host(s) run %s" % (len(audit.get("hosts") or {}), audit.get("version"))
    names = []
    for p in audit["problems"]:
        if p["host"] not in names:
            names.append(p["host"])
    what = "halt not confirmed on" if audit.get("service") == "stopped" else "fleet audit failed on"
    found = "; ".join("%s: %s" % (p["host"], p["message"]) for p in audit["problems"])
    return "%s %s: %s" % (what, ", ".join(names), found)


# --- what an audit proves: the AWX release workflow's kill switch (awx/controller.yml, awx/halt_proven.yml) ------

# The release outcomes (lockstep_status) after which the release itself names the version every host must serve
# (lockstep_version_after: the one it went back to). Any other outcome proves nothing about which version is
# right: refused (nothing changed), failed (the census disagrees and no version is named as right), stopped (a
# first release: there is no version to go back to), succeeded or partial, and no outcome at all (a job cancelled
# or dead before it could report, possibly still holding the lock).
PROOF_OUTCOMES = ("rolled_back", "rollback_failed")


def _strict_majority(values):
    """The value more hosts have than any other (None on a tie or when there is none)."""
    top = Counter(v for v in values if v is not None).most_common(2)
    if not top or (len(top) == 2 and top[0][1] == top[1][1]):
        return None
    return top[0][0]


def proven_wrong(audit, outcome=None, expected=None, taken_out=(), lb="haproxy", release_hosts=None):
    """Which hosts a fleet audit PROVES serve a version or content the fleet must not serve, and why the other
    problems prove nothing. Pure: the AWX release workflow halts only the hosts it returns (never the service).

    ``audit``: ``judge()``'s result (None when the audit did not conclude); ``outcome``, ``expected``,
    ``taken_out`` and ``release_hosts``: the failed release's ``lockstep_status``, ``lockstep_version_after``,
    ``lockstep_killed_hosts`` and ``lockstep_hosts`` (its AWX artifacts; a host's ``before`` is the version it ran
    before the release, which a fleet allowed to start mixed goes back to); ``lb``: ``lockstep_lb`` ("none": every
    answering host serves).

    A host is proven wrong only when all of this holds: the release reported an outcome of ``PROOF_OUTCOMES`` and
    named the version the fleet must serve; no release lock is held; the host's process answers, with another
    version (nor the one it ran before the release), or with that version started from a release whose content
    fails its manifest or differs from the rest of the fleet's; the load balancer sends the host traffic, or the
    release itself took it out (an operator's MAINT or DRAIN is never touched); and a host is left serving that
    version right. A held lock, MAINT/DRAIN, a host that does not answer, an unreadable load balancer, flags, kept
    releases or addresses are never proof.

    Returns ``{"hosts": {host: why}, "none_because": why or None, "not_proof": [{host, message}], "outcome",
    "expected"}``; ``hosts`` is empty whenever ``none_because`` says why.
    """
    from ansible_collections.lockstep.release.plugins.module_utils.haproxy_api import serving

    problems = list((audit or {}).get("problems") or [])
    out = {"hosts": {}, "none_because": None, "not_proof": problems, "outcome": outcome, "expected": expected}

    def nothing(why):
        out["none_because"] = why
        return out

    if not audit or audit.get("service") != "running":
        return nothing("the audit of the running fleet did not conclude: it proves nothing")
    if outcome not in PROOF_OUTCOMES:
        return nothing("the release reported %s: only %s name the version every host must serve" % (
            "no outcome (cancelled, or ended before it could report)" if not outcome else outcome,
            " or ".join(PROOF_OUTCOMES)))
    if not expected:
        return nothing("the release named no version the fleet must serve (lockstep_version_after)")
    if audit.get("lock"):
        return nothing("a release lock is held (%s): the fleet belongs to that run, or to the one cut short, and "
                       "nothing is proof until an operator clears it" % (audit["lock"].get("holder") or "?"))
    lb_status = audit.get("lb") or {}
    taken_out = set(taken_out or ())

    def in_traffic(host):
        if lb == "none":
            return True
        status = lb_status.get(host)  # none when the load balancer could not be read: then nobody is known to serve
        return bool(status) and serving(str(status))

    answering = {h: r for h, r in (audit.get("hosts") or {}).items() if r.get("running") is not None}
    content = _strict_majority([r.get("content") for r in answering.values() if r.get("running") == expected
                                and r.get("active") == expected and r.get("from_active") and r.get("active_valid")])
    proven = {}
    for host, r in sorted(answering.items()):
        if not (in_traffic(host) or host in taken_out):
            continue  # out of traffic by someone else's hand (MAINT, DRAIN, down, not in the backend)
        own = ((release_hosts or {}).get(host) or {}).get("before")
        if r["running"] != expected and r["running"] != own:
            proven[host] = "serves %s (pid %s); the %s release left the fleet on %s" % (
                r["running"], r.get("pid"), outcome, expected)
        elif r.get("from_active") and r.get("active") == expected:
            if r.get("active_valid") is False:
                proven[host] = "serves %s from a release whose content does not match its manifest" % expected
            elif content is not None and r.get("content") and r["content"] != content:
                proven[host] = "serves %s with content %s, the rest of the fleet %s" % (
                    expected, str(r["content"])[:12], content[:12])
    right = [h for h, r in answering.items() if h not in proven and r["running"] == expected and in_traffic(h)]
    if proven and not right:
        return nothing("taking out %s would leave no host serving %s: the whole service is a person's decision" % (
            ", ".join(sorted(proven)), expected))
    if not proven:
        return nothing("no host serves a version or content other than %s" % expected)
    out["hosts"] = proven
    out["not_proof"] = [p for p in problems if p["host"] not in proven]
    return out
