# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ledger callback's summary part: what the playbook reported (its ``set_stats``), the per-host rows, the
release's end record, the JUnit file, and the run's custom stats scrubbed for the callbacks after the ledger."""

from __future__ import annotations

import os
import tempfile

from ansible.module_utils.common.text.converters import to_text

from ansible_collections.lockstep.release.plugins.module_utils.ledger import scrub

# What a release playbook reports through set_stats (roles/finish), read back by the ledger.
STATUS_KEYS = ("lockstep_status", "lockstep_version_before", "lockstep_version_after", "lockstep_halted_by",
               "lockstep_hosts", "lockstep_found_dead", "lockstep_rehearsal")


def scrub_custom_stats(stats, secrets):
    """Every custom stat (the playbook's ``set_stats``) with no secret in it, for the callbacks that come after."""
    custom = getattr(stats, "custom", None)
    if not isinstance(custom, dict) or not secrets:
        return
    for host in list(custom):
        custom[host] = scrub(custom[host], secrets)


def reported(stats):
    """What the playbook reported through ``set_stats`` (STATUS_KEYS), the run's own (``aggregate: false``) over
    any host's."""
    custom = getattr(stats, "custom", None) or {}
    data = {}
    for host in sorted(k for k in custom if k != "_run"):
        values = custom.get(host) or {}
        for k in STATUS_KEYS:
            if k in values:
                data.setdefault(k, values[k])
    run = custom.get("_run") or {}
    data.update({k: v for k, v in run.items() if k in STATUS_KEYS})
    return data


def _row():
    return {"before": None, "after": None, "phase": None, "result": None}


def final_hosts(seen, playbook_hosts, stats):
    """Per host ``{before, after, phase, result}``: what the ledger saw (``seen``), each processed host's result,
    and the playbook's own word (``playbook_hosts``, its ``lockstep_hosts``), which wins."""
    hosts = {h: dict(v) for h, v in seen.items()}
    for host in sorted(getattr(stats, "processed", {}) or {}):
        entry = hosts.setdefault(host, _row())
        if entry["result"] is None:
            s = stats.summarize(host)
            if s.get("unreachable"):
                entry["result"] = "unreachable"
            elif s.get("failures"):
                entry["result"] = "failed"
            else:
                entry["result"] = "ok"
    reported = playbook_hosts
    if isinstance(reported, dict) and reported:
        # The playbook named its fleet: a host outside it with no version and nothing wrong (a load balancer,
        # the controller) is not a row.
        hosts = {h: v for h, v in hosts.items() if h in reported or v.get("before") is not None
                 or v.get("after") is not None or v.get("result") not in (None, "ok")}
        for host, values in reported.items():
            if isinstance(values, dict):
                entry = hosts.setdefault(host, _row())
                for key in ("before", "after", "phase", "result"):
                    # The playbook's word, None included: a bare host had nothing before.
                    if key in values:
                        entry[key] = values[key] if values[key] != "" else None
    return hosts


def write_junit(path, gates, summary, secrets):
    """The JUnit XML file: one test case per host per gate (a halt is its failure), one ``lockstep.release`` case
    per host with its final result; 0600 whatever the umask, scrubbed of ``secrets`` (a set of strings)."""
    from junitparser import Error, Failure, JUnitXml, TestCase, TestSuite

    suites = {}
    seen = {}
    for gate in gates:
        name = str(gate.get("gate") or "gate")
        suite = suites.get(name)
        if suite is None:
            suite = suites[name] = TestSuite(f"lockstep.gate.{name}")
        halted = {}
        for h in gate.get("halted") or []:
            if isinstance(h, dict) and h.get("host") is not None:
                halted[str(h["host"])] = h.get("message") or gate.get("message") or "halted"
        gate_hosts = [str(h) for h in (gate.get("hosts") or {})]
        for host in sorted(set(gate_hosts) | set(halted)):
            key = (name, host)
            seen[key] = seen.get(key, 0) + 1
            case_name = host if seen[key] == 1 else f"{host} #{seen[key]}"
            case = TestCase(case_name, classname=f"lockstep.gate.{name}")
            if host in halted:
                case.result = [Failure(message=to_text(halted[host]), type_="gate_halted")]
            suite.add_testcase(case)
    release = TestSuite("lockstep.release")
    for host, h in sorted((summary.get("hosts") or {}).items()):
        case = TestCase(host, classname="lockstep.release")
        result = h.get("result")
        if result in ("failed", "rollback_failed"):
            case.result = [Failure(message="host result {} (phase {})".format(result, h.get("phase")),
                                   type_=str(result))]
        elif result == "unreachable":
            case.result = [Error(message="host unreachable", type_="unreachable")]
        release.add_testcase(case)
    xml = JUnitXml("lockstep status {}".format(summary.get("status")))
    for name in sorted(suites):
        xml.add_testsuite(suites[name])
    xml.add_testsuite(release)
    xml.update_statistics()
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # 0600 whatever the umask: written to a private temporary file (mkstemp) in the same directory, then renamed
    fd, tmp = tempfile.mkstemp(prefix=".lockstep-junit-", suffix=".xml", dir=os.path.dirname(path))
    os.close(fd)
    try:
        xml.write(tmp, pretty=True)
        with open(tmp, "rb") as f:
            text = f.read().decode("utf-8")
        scrubbed = scrub(text, secrets)
        if scrubbed != text:
            with open(tmp, "wb") as f:
                f.write(scrubbed.encode("utf-8"))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
