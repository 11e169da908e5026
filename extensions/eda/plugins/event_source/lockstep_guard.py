# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""lockstep.release.lockstep_guard: an ansible-rulebook event source that keeps watching the fleet after a release.

Knight's servers sent 97 warning e-mails before the market opened and nobody read them; the flood began long after
the last release step. Every interval this source asks the fleet from the controller, with lockstep's own probes
and no SSH (one version probe and one metrics probe per host, all at once, plus HAProxy's ``show stat``), and puts
one event on the queue per fault it finds:

- ``not-released``: a serving host runs a version, or content, that the last successful release (the ledger's
  newest ``release_finished`` with status ``succeeded``) did not put there;
- ``not-uniform``: without such a release, a serving host runs another version than the rest of the fleet;
- ``threshold``: a serving host breaches one of the release's own watch thresholds (``lockstep_watch_thresholds``);
- ``unknown-backend``: HAProxy serves a server that the inventory does not know.

Each event says whether its host can be isolated (``scope: host``, with ``meta.hosts`` naming it, which limits a
``run_playbook`` action to it) or not (``scope: service``: no healthy serving host would be left, the fleet has no
majority to tell right from wrong, or the offender is no inventory host). Hosts HAProxy already sends nothing are
not judged: they are out of traffic. While a release holds the lock (``lockstep_lock_path``) nothing is emitted at
all: a release is mixed on purpose.

The lock (and the outcome next to it) and HAProxy are read where they are kept: on the controller in process; on
``lockstep_lock_host`` / the load balancer's host, when Ansible does not reach it with the local connection, through
ansible-core itself (``ansible HOST -m ansible.builtin.slurp`` / ``lockstep.release.haproxy state=query``), all at
once at the start of each poll.

Options (each also read from an environment variable, for ``make guard`` and the tests):
  inventory: the inventory, read by ansible-core (``LOCKSTEP_INVENTORY``; default Ansible's own: ANSIBLE_INVENTORY or
    ansible.cfg's inventory)
  interval: seconds between polls (``LOCKSTEP_GUARD_INTERVAL``; default 2)
  ledger_dir: where releases are recorded (``LOCKSTEP_LEDGER_DIR``; default .lockstep/ledger)
  timeout: seconds per probe (``LOCKSTEP_GUARD_TIMEOUT``; default 1)
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor


def _collections_dir():
    """The directory that holds ``ansible_collections`` for this copy of lockstep: ansible-rulebook loads a source
    as a plain module, without Ansible's collection loader, so lockstep's own probes are imported from here."""
    here = os.path.abspath(__file__)
    parts = here.split(os.sep)
    if "ansible_collections" in parts:
        return os.sep.join(parts[:len(parts) - 1 - parts[::-1].index("ansible_collections")])
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(
        __file__))))))
    return os.path.join(repo, "collections")


if _collections_dir() not in sys.path:
    sys.path.insert(0, _collections_dir())

from ansible_collections.lockstep.release.plugins.action.watch import evaluate, scrape  # noqa: E402 (after sys.path)
from ansible_collections.lockstep.release.plugins.module_utils import haproxy_api, ledger  # noqa: E402
from ansible_collections.lockstep.release.plugins.plugin_utils.audit import probe_fleet  # noqa: E402
from ansible_collections.lockstep.release.plugins.plugin_utils.http import fan_out  # noqa: E402
from ansible_collections.lockstep.release.plugins.plugin_utils.operator_cli import (  # noqa: E402
    Inventory,
    InventoryError,
    RemoteError,
    _read_lock,
    ansible_module,
    default_inventory,
    lock_place,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(
    __file__))))))


def last_release(directory, cache=None):
    """What the newest successful release put on the fleet: ``{"version", "content", "ledger"}`` or None.

    Read from the ledger (``release_finished`` with status ``succeeded``); the content is the active release's tree
    hash the hosts reported for that version during the release. ``cache`` maps file -> (mtime, result).
    """
    for release in _newest_first(directory, {} if cache is None else cache, "release", _release_of):
        if release:
            return release
    return None


def _newest_first(directory, cache, kind, parse):
    """``parse(records, path)`` of every ledger in ``directory``, newest first, cached per file by mtime (None for a
    ledger that cannot be read, such as one still being written)."""
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(ledger.LEDGER_SUFFIX))
    except OSError:
        return
    for name in reversed(names):
        path = os.path.join(directory, name)
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            continue
        key = (kind, path)
        if cache.get(key, (None,))[0] != mtime:
            try:
                cache[key] = (mtime, parse(ledger.read_records(path), path))
            except (OSError, ValueError):
                cache[key] = (mtime, None)
        yield cache[key][1]


def read_outcome(lock_path):
    """The outcome the last run that held the lock wrote next to it before freeing it (``lockstep.release.lock``
    with ``outcome``), or None."""
    try:
        with open(lock_path + ".outcome") as f:
            out = json.load(f)
    except (OSError, ValueError):
        return None
    return out if isinstance(out, dict) else None


def expected_release(lock_path, directory, cache=None, outcome=False):
    """What every serving host must run now: ``{"version", "content", "ledger", "source"}`` or None (unknown).

    The outcome next to the lock comes first: it is on disk before the lock is free, while the run's ledger is
    still being finished. Without one (no run has freed the lock since), the ledger's last successful release.
    ``outcome``: the outcome already read from the lock's host (None: there is none); by default read here.
    """
    cache = {} if cache is None else cache
    if outcome is False:
        outcome = read_outcome(lock_path) if lock_path else None
    elif outcome is not None and (not isinstance(outcome, dict) or "unreadable" in outcome):
        outcome = None
    if outcome is None:
        return last_release(directory, cache)
    version = outcome.get("serving")
    if not version:
        return None
    return {"version": version, "content": _content_of(directory, version, cache), "ledger": None,
            "source": "run %s (%s, %s)" % (outcome.get("run_id"), outcome.get("status"), outcome.get("finished"))}


def _content_of(directory, version, cache):
    """The active release's tree hash the hosts reported for ``version`` in the newest ledger that has one."""
    for contents in _newest_first(directory, cache, "content", _contents_of):
        found = (contents or {}).get(version)
        if found:
            return next(iter(found)) if len(found) == 1 else None
    return None


def _contents_of(records, path):
    contents = {}
    for r in records:
        state = r.get("state") or {} if r.get("event") == "host_state" else {}
        if state.get("active_version") and state.get("active_content_sha256"):
            contents.setdefault(state["active_version"], set()).add(state["active_content_sha256"])
    return contents


def _release_of(records, path):
    finished = [r for r in records if r.get("event") == "release_finished"]
    if not finished or finished[-1].get("status") != "succeeded" or not finished[-1].get("version_after"):
        return None
    version = finished[-1]["version_after"]
    contents = {(r.get("state") or {}).get("active_content_sha256") for r in records
                if r.get("event") == "host_state" and (r.get("state") or {}).get("active_version") == version}
    contents.discard(None)
    return {"version": version, "content": contents.pop() if len(contents) == 1 else None, "ledger": path}


def faults(hosts, probes, metrics, thresholds, lb_servers, release=None):
    """Every fault of one observation, as ``[{"fault", "scope", "host", "message"}]`` (pure: unit tested).

    ``probes``: ``{host: probe}`` (``plugin_utils.audit.probe``); ``metrics``: ``{host: (totals, error)}``;
    ``lb_servers``: ``{server: {"serving", "addr", ...}}`` or None when HAProxy could not be read (then every
    host counts as serving); ``release``: ``expected_release()``.

    A version verdict never takes a uniform fleet out: when every serving host agrees with every other and not
    with the record, the record is what is wrong (``record-disagrees``, scope ``record``: said, acted on by
    nothing). A host is isolated only when it disagrees with serving hosts that remain.
    """
    serving = [h for h in hosts if lb_servers is None or (lb_servers.get(h) or {}).get("serving")]
    found = []
    answering = {h: probes[h] for h in serving if (probes.get(h) or {}).get("reachable")}
    notes = []

    def seen(p):
        return (p.get("version"), p.get("content_sha256"))

    uniform = len({seen(p) for p in answering.values()}) <= 1
    majority = True
    if release:
        why = "%s put %s there" % (release.get("source") or "the last successful release (%s)" % (
            os.path.basename(release.get("ledger") or "?")), release["version"])
        expected = release["version"]

        def wrong(p):
            if p.get("version") != expected:
                return "serves %s (pid %s, from %s)" % (p.get("version"), p.get("pid"), p.get("directory"))
            if release.get("content") and p.get("content_sha256") and p["content_sha256"] != release["content"]:
                return "serves content %s of %s (the release's is %s)" % (
                    p["content_sha256"][:12], expected, release["content"][:12])
            return None

        bad = {h: wrong(p) for h, p in answering.items() if wrong(p)}
        top = Counter(seen(p) for p in answering.values()).most_common(2)
        # The first host of a strict majority of the serving hosts (all of them when uniform), or None.
        leader = next((h for h in sorted(answering) if seen(answering[h]) == top[0][0]), None) if top and (
            len(top) == 1 or top[0][1] > top[1][1]) else None
        strict = leader is not None
        if bad and leader in bad:
            # Every serving host, or a strict majority of them, agrees on what the record says they must not
            # run: the record is what is wrong. Taking them out would be an outage of our own making.
            agree = sorted(h for h in answering if seen(answering[h]) == top[0][0])
            notes.append({"fault": "record-disagrees", "scope": "record", "host": leader, "message":
                          "%s serving host(s) (%s) %s, and agree with each other; %s: the record is wrong, not the "
                          "fleet (nothing is taken out for it; check the ledger and the lock's outcome)" % (
                              "every" if uniform else "most", ", ".join(agree), bad[leader], why)})
            # Those off that majority disagree with the rest of a healthy fleet.
            majority = _not_uniform(answering, found, key=seen)
        elif bad and strict:
            for host, what in sorted(bad.items()):
                found.append(("not-released", host, "%s %s; %s" % (host, what, why)))
        elif bad and len(bad) < len(answering):
            # No majority: the record tells right from wrong.
            for host, what in sorted(bad.items()):
                found.append(("not-released", host, "%s %s; %s" % (host, what, why)))
        elif bad:
            majority = _not_uniform(answering, found, key=seen)
    else:
        majority = _not_uniform(answering, found)
    for host in serving:
        totals, error = metrics.get(host) or (None, "not scraped")
        if error:
            continue  # a host whose metrics cannot be read is the watch's and HAProxy's health check's business
        for t in thresholds:
            breach = evaluate(t, totals)
            if breach:
                found.append(("threshold", host, "%s: %s" % (host, breach)))
    out = notes
    for name, srv in sorted((lb_servers or {}).items()):
        if name not in hosts and srv.get("serving"):
            out.append({"fault": "unknown-backend", "scope": "service", "host": name, "message":
                        "HAProxy serves %s (%s), which is not in the inventory" % (name, srv.get("addr"))})
    offenders = {f[1] for f in found}
    # Isolate only what can be told apart: a healthy serving host must remain, and the fleet must say what is right.
    isolable = majority and bool(set(serving) - offenders)
    for fault, host, msg in found:
        out.append({"fault": fault, "scope": "host" if isolable else "service", "host": host, "message": msg if
                    isolable else "%s (cannot be isolated: %s)" % (msg, "no majority" if not majority else
                                                                   "no healthy serving host would be left")})
    return out


def _shown(value):
    """A version, or a (version, content) pair, for people."""
    if isinstance(value, tuple):
        return "%s (content %s)" % (value[0], str(value[1])[:12]) if value[1] else str(value[0])
    return str(value)


def _not_uniform(answering, found, key=None):
    """The hosts off the fleet's majority (version, or ``key`` of a probe), appended to ``found``; whether there
    is a strict majority."""
    key = key or (lambda p: p.get("version"))
    counted = Counter(key(p) for p in answering.values())
    top = counted.most_common(2)
    majority = not top or len(top) == 1 or top[0][1] > top[1][1]
    for host, p in sorted(answering.items()):
        if top and key(p) != top[0][0]:
            found.append(("not-uniform", host, "%s serves %s, the rest of the fleet %s (%s)" % (
                host, p.get("version"), _shown(top[0][0]), ", ".join("%s on %s" % (n, _shown(v)) for v, n in top))))
    return majority


class Guard:
    """One fleet, observed: reads the inventory once, then ``poll()`` every interval."""

    def __init__(self, args):
        env = os.environ
        sources = [args["inventory"]] if args.get("inventory") else default_inventory()
        self.inventory = ", ".join(s if "," in s else os.path.abspath(s) for s in sources)
        self.interval = float(args.get("interval") or env.get("LOCKSTEP_GUARD_INTERVAL") or 2)
        self.timeout = float(args.get("timeout") or env.get("LOCKSTEP_GUARD_TIMEOUT") or 1)
        self.ledger_dir = os.path.abspath(args.get("ledger_dir") or env.get("LOCKSTEP_LEDGER_DIR")
                                          or os.path.join(".lockstep", "ledger"))
        try:
            inv = Inventory(sources)
            group = inv.var("lockstep_group")
            self._init_from(inv, group)
        except InventoryError as e:
            raise SystemExit("lockstep guard: %s" % e) from None
        self._ledger_cache = {}
        self._said = set()
        self._writer = None
        self._polled = {}

    def _init_from(self, inv, group):
        self.hosts = sorted(inv.groups.get(group) or [])
        if not self.hosts:
            raise SystemExit("lockstep guard: inventory %s has no hosts in group %s" % (inv.path, group))
        urls = {h: str(inv.var("lockstep_service_url", host=h, group=group)).rstrip("/") for h in self.hosts}
        version_path = inv.var("lockstep_version_path", group=group) + "#" + inv.var("lockstep_version_field",
                                                                                     group=group)
        self.version_urls = {h: u + version_path for h, u in urls.items()}
        self.metrics_urls = {h: u + (inv.var("lockstep_metrics_path", group=group) or "/metrics")
                             for h, u in urls.items()}
        self.thresholds = inv.var("lockstep_watch_thresholds", group=group) or []
        self.socket = inv.var("lockstep_haproxy_socket", group=group)
        self.backend = inv.var("lockstep_haproxy_backend", group=group) or group
        self.lock_path = os.path.normpath(inv.var("lockstep_lock_path", group=group) or "")
        self.inv = inv
        # Where the release keeps them: the lock on lockstep_lock_host, HAProxy on the load balancer's host.
        self.place = lock_place(inv, path=self.lock_path) if self.lock_path else None
        lb = inv.members.get(inv.var("lockstep_lb_group", group=group) or "lb") or []
        self.lb_host = lb[0] if self.socket and lb and not inv.is_controller(lb[0]) else None

    def record_problem(self, fault):
        """A fault of the record, not of the fleet: printed and written to the guard's own ledger once per key
        (``<ledger_dir>/guard/``), never put on the queue: no rule may act on it."""
        key = (fault["message"].split(";")[0], fault["expected"])
        if key in self._said:
            return
        self._said.add(key)
        print("lockstep guard: RECORD PROBLEM %s: %s" % (fault["fault"], fault["message"]), flush=True)
        try:
            if self._writer is None:
                directory = os.path.join(self.ledger_dir, "guard")
                os.makedirs(directory, mode=0o700, exist_ok=True)
                self._writer = ledger.LedgerWriter(os.path.join(directory, "%s-guard-%d%s" % (
                    time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()), os.getpid(), ledger.LEDGER_SUFFIX)))
            self._writer.append({"event": "guard_fault", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                 **{k: fault.get(k) for k in ("fault", "scope", "host", "message", "expected")}})
        except OSError as e:
            print("lockstep guard: cannot write its ledger (%s)" % e, flush=True)

    @property
    def remote(self):
        return bool(self.place and self.place.remote) or bool(self.lb_host)

    def lock(self):
        if "lock" in self._polled:
            return self._polled.pop("lock")  # read at the start of this poll, used once
        if self.place and self.place.remote:
            return self._remote_read(self.place.read)
        return _read_lock(self.lock_path) if self.lock_path else None

    @staticmethod
    def _remote_read(read, suffix=""):
        """A file next to the lock on its host; a host that cannot be asked counts as holding the lock (the guard
        cannot tell whether a release runs: it acts on nothing)."""
        try:
            return read(suffix)
        except RemoteError as e:
            return {"unreadable": str(e)}

    def lb_servers(self):
        """HAProxy's servers of the backend, asked on the load balancer's host through Ansible, or None."""
        try:
            result = ansible_module(self.inv, self.lb_host, "lockstep.release.haproxy",
                                    {"socket": self.socket, "backend": self.backend, "state": "query"})
            if result["_status"] == "FAILED!" or not isinstance(result.get("servers"), dict):
                raise RemoteError(result.get("msg") or "no servers in the answer")
            return result["servers"]
        except RemoteError as e:
            print("lockstep guard: HAProxy not readable on %s (%s): every host counts as serving" % (
                self.lb_host, e), flush=True)
            return None

    def _poll_remote(self):
        """This poll's reads on the hosts that keep them, all at once: ``{"lock", "outcome", "lb"}``."""
        jobs = {}
        if self.place and self.place.remote:
            jobs["lock"] = lambda: self._remote_read(self.place.read)
            jobs["outcome"] = lambda: self._remote_read(self.place.read, ".outcome")
        if self.lb_host:
            jobs["lb"] = self.lb_servers
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            futures = {k: pool.submit(job) for k, job in jobs.items()}
            return {k: f.result() for k, f in futures.items()}

    def poll(self):
        """``(lock, events)``: the lock's holder and no event while a release holds the lock (a release is mixed
        on purpose), else ``(None, events)`` with one event per fault found."""
        self._polled = self._poll_remote() if self.remote else {}
        lock = self.lock()
        events = [] if lock else self.observe()
        # The lock again: a release that started while the fleet was probed is mixed on purpose. (Through Ansible
        # only when there is something to hold back.)
        if events or not (self.place and self.place.remote):
            lock = lock or self.lock()
        self._polled = {}
        return (lock, []) if lock else (None, events)

    def observe(self):
        probes = probe_fleet(self.version_urls, timeout=self.timeout)
        metrics = fan_out(scrape, self.metrics_urls) if self.thresholds else {}
        if "lb" in self._polled:
            lb = self._polled["lb"]
        elif self.lb_host:
            lb = self.lb_servers()
        else:
            try:
                lb = haproxy_api.servers(self.socket, self.backend) if self.socket else None
            except haproxy_api.HAProxyError as e:
                print("lockstep guard: HAProxy not readable (%s): every host counts as serving" % e, flush=True)
                lb = None
        release = expected_release(self.lock_path, self.ledger_dir, self._ledger_cache,
                                   **({"outcome": self._polled["outcome"]} if "outcome" in self._polled else {}))
        events = []
        for f in faults(self.hosts, probes, metrics, self.thresholds, lb, release):
            f.update(key="%s:%s:%s" % (f["fault"], f["host"], (probes.get(f["host"]) or {}).get("pid")),
                     lock_path=self.lock_path, observed=time.time(),
                     expected=(release or {}).get("version"), inventory=self.inventory)
            if f["scope"] == "record":
                self.record_problem(f)
                continue
            event = {"lockstep_guard": f}
            if f["scope"] == "host":
                event["meta"] = {"hosts": f["host"]}
            events.append(event)
        return events


async def main(queue: asyncio.Queue, args: dict):
    guard = Guard(args or {})
    print("lockstep guard: watching %d hosts of %s every %.1f s (ledger %s, lock %s)" % (
        len(guard.hosts), guard.inventory, guard.interval, guard.ledger_dir, guard.place or guard.lock_path),
        flush=True)
    held = None
    while True:
        started = time.monotonic()
        lock, events = await asyncio.to_thread(guard.poll)
        if bool(lock) != bool(held):
            print("lockstep guard: %s" % (("release lock unreadable (%s): not acting" % lock["unreadable"]
                                           if "unreadable" in lock else
                                           "release lock held by run %s (version %s): not acting" % (
                                               lock.get("run_id"), lock.get("version")))
                                          if lock else "release lock free: watching"), flush=True)
        held = lock
        for event in events:
            print("lockstep guard: fault %s (%s): %s" % (event["lockstep_guard"]["fault"],
                                                         event["lockstep_guard"]["scope"],
                                                         event["lockstep_guard"]["message"]), flush=True)
            await queue.put(event)
        await asyncio.sleep(max(0.0, guard.interval - (time.monotonic() - started)))


if __name__ == "__main__":
    # One observation, printed, for people: python extensions/eda/plugins/event_source/lockstep_guard.py [INVENTORY]
    import json

    g = Guard({"inventory": sys.argv[1] if len(sys.argv) > 1 else None})
    held, found = g.poll()
    print(json.dumps({"lock": held, "events": found}, indent=2, sort_keys=True))
