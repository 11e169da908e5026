# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operator's commands of ``bin/lockstep``: ``audit [--http]`` and ``lock show|break``.

They run without Ansible (``audit --http`` must answer in well under a second, Ansible's start-up alone is 0.4 s),
so they read the inventory's YAML themselves: only plain values, no Jinja except ``{{ inventory_dir }}``.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
import time

from ansible_collections.lockstep.release.plugins.module_utils import ledger
from ansible_collections.lockstep.release.plugins.plugin_utils.audit import (
    format_audit,
    judge,
    lock_holder,
    message,
    probe_fleet,
)

DEFAULTS = {"lockstep_group": "app", "lockstep_version_path": "/version", "lockstep_version_field": "version"}


def _load_yaml(path):
    import yaml  # PyYAML: in the virtualenv and Debian's python3-yaml; only the commands that read inventories need it

    with open(path) as f:
        return yaml.safe_load(f) or {}


class Inventory:
    """Hosts, groups and plain variables of a YAML inventory file or directory (hosts file + group_vars/)."""

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.dir = self.path if os.path.isdir(self.path) else os.path.dirname(self.path)
        self.groups = {}  # group -> set of hosts
        self.host_vars = {}
        self.group_vars = {}
        files = [self.path] if os.path.isfile(self.path) else sorted(
            os.path.join(self.path, n) for n in os.listdir(self.path) if n.endswith((".yml", ".yaml")))
        for f in files:
            self._walk("all", (_load_yaml(f) or {}).get("all") or {}, [])
        gv = os.path.join(self.dir, "group_vars")
        for group in ["all"] + sorted(self.groups):
            for ext in (".yml", ".yaml"):
                if os.path.isfile(os.path.join(gv, group + ext)):
                    self.group_vars.setdefault(group, {}).update(_load_yaml(os.path.join(gv, group + ext)))

    def _walk(self, name, node, parents):
        node = node or {}
        self.group_vars.setdefault(name, {}).update(node.get("vars") or {})
        members = self.groups.setdefault(name, set())
        for host, hv in (node.get("hosts") or {}).items():
            members.add(host)
            self.host_vars.setdefault(host, {}).update(hv or {})
            for p in parents:
                self.groups.setdefault(p, set()).add(host)
        for child, sub in (node.get("children") or {}).items():
            self._walk(child, sub, parents + [name])
            for p in parents + [name]:
                self.groups.setdefault(p, set()).update(self.groups[child])

    def var(self, name, host=None, group=None):
        value = DEFAULTS.get(name)
        for g in ["all"] + ([group] if group else []):
            if name in self.group_vars.get(g, {}):
                value = self.group_vars[g][name]
        if host and name in self.host_vars.get(host, {}):
            value = self.host_vars[host][name]
        if isinstance(value, str):
            value = value.replace("{{ inventory_dir }}", self.dir)
            if "{{" in value:
                raise SystemExit("lockstep: %s = %r is templated; pass it explicitly" % (name, value))
        return value


def default_inventory(root):
    return os.environ.get("LOCKSTEP_INVENTORY") or os.path.join(root, "inventory", "local")


def cmd_audit(args, root):
    if not args.http:
        # The whole audit is the playbook; this only saves typing.
        cmd = [os.path.join(root, ".venv", "bin", "ansible-playbook"), "-i", args.inventory,
               os.path.join(root, "playbooks", "verify.yml")]
        if args.expect:
            cmd += ["-e", "lockstep_audit_expect=%s" % args.expect]
        os.environ.setdefault("ANSIBLE_CONFIG", os.path.join(root, "ansible.cfg"))
        os.execv(cmd[0], cmd)
    started = time.monotonic()
    inv = Inventory(args.inventory)
    group = inv.var("lockstep_group")
    hosts = sorted(inv.groups.get(group) or [])
    if not hosts:
        print("lockstep: inventory %s has no hosts in group %s" % (inv.path, group), file=sys.stderr)
        return 2
    path = inv.var("lockstep_version_path", group=group) + "#" + inv.var("lockstep_version_field", group=group)
    urls = {h: str(inv.var("lockstep_service_url", host=h, group=group)).rstrip("/") + path for h in hosts}
    probes = probe_fleet(urls, timeout=args.timeout)
    audit = judge(hosts, urls, probes, base=inv.var("lockstep_base", group=group), layers=("http",),
                  expect=args.expect)
    if args.json:
        print(json.dumps(audit, indent=2, sort_keys=True))
    else:
        print(format_audit(audit).replace("\nrelease lock: free", ""))
        print("%d hosts probed in %.3f s" % (len(hosts), time.monotonic() - started))
    if not audit["passed"]:
        print(message(audit), file=sys.stderr)
        return 1
    return 0


def _lock_path(args):
    if args.path:
        return args.path
    inv = Inventory(args.inventory)
    return inv.var("lockstep_lock_path", group=inv.var("lockstep_group"))


def _read_lock(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        return {"unreadable": str(e)}


def _describe(lock):
    holder, dead = lock_holder(lock)
    alive = "no (the process is gone: a dead run)" if dead else (
        "yes" if lock.get("controller") == socket.gethostname() else "unknown (taken on another controller)")
    return [("run id", lock.get("run_id")), ("user", lock.get("user")), ("controller", lock.get("controller")),
            ("pid", lock.get("pid")), ("pid alive", alive), ("version", lock.get("version")),
            ("since", lock.get("started"))], dead


def cmd_lock_show(args, root):
    path = _lock_path(args)
    lock = _read_lock(path)
    if lock is None:
        print("%s: no release lock held" % path)
        return 0
    if "unreadable" in lock:
        print("%s: lock file unreadable: %s" % (path, lock["unreadable"]), file=sys.stderr)
        return 1
    print("release lock %s held by:" % path)
    rows, _ = _describe(lock)
    for k, v in rows:
        print("  %-11s %s" % (k, v if v not in (None, "") else "-"))
    return 0


def cmd_lock_break(args, root):
    path = _lock_path(args)
    lock = _read_lock(path)
    if lock is None:
        print("%s: no release lock held, nothing to break" % path)
        return 0
    if "unreadable" in lock or not lock.get("run_id"):
        print("%s: lock file has no readable run id; inspect it and remove it by hand" % path, file=sys.stderr)
        return 1
    rows, dead = _describe(lock)
    run_id = args.run_id
    if run_id is None:
        print("release lock %s held by:" % path)
        for k, v in rows:
            print("  %-11s %s" % (k, v if v not in (None, "") else "-"))
        if not sys.stdin.isatty():
            print("lockstep: refusing to break the lock: type the holder's run id back with --run-id",
                  file=sys.stderr)
            return 1
        run_id = input("type the holder's run id to break the lock: ").strip()
    # Typing the run id back proves the operator read whose lock this is; a wrong one changes nothing.
    if run_id != lock["run_id"]:
        print("lockstep: run id %r is not the holder's (%s): lock NOT broken" % (run_id, lock["run_id"]),
              file=sys.stderr)
        return 1
    # The record comes first: a lock broken without a trace is what the ledger exists to prevent.
    directory = os.environ.get("LOCKSTEP_LEDGER_DIR") or os.path.join(".lockstep", "ledger")
    name = "%s-lock-break-%d%s" % (time.strftime("%Y%m%dT%H%M%S", time.gmtime()), os.getpid(), ledger.LEDGER_SUFFIX)
    ledger_path = os.path.join(directory, name)
    anchors = ledger.anchor_dir()
    try:
        key = ledger.configured_key()  # keyed like the releases' ledgers ($LOCKSTEP_LEDGER_KEY[_FILE])
    except ValueError as ex:
        print("lockstep: %s: lock NOT broken" % ex, file=sys.stderr)
        return 1
    writer = ledger.LedgerWriter(ledger_path, anchor=ledger.anchor_path(anchors, ledger_path) if anchors else None,
                                 key=key)
    try:
        writer.append({"event": "lock_broken", "ts": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
                       **({"anchor": writer.anchor} if writer.anchor else {}),
                       "path": os.path.abspath(path), "lock": lock, "holder_dead": dead, "user": getpass.getuser(),
                       "controller": socket.gethostname(), "pid": os.getpid(), "reason": args.reason or None})
    finally:
        writer.close()
    # Only the lock that was shown is removed: a new holder's lock is left alone.
    if (_read_lock(path) or {}).get("run_id") != lock["run_id"]:
        print("lockstep: the lock changed hands meanwhile: not broken", file=sys.stderr)
        return 1
    os.unlink(path)
    print("release lock %s of run %s broken; recorded in %s" % (path, lock["run_id"], writer.path))
    return 0


def add_commands(sub, root):
    """Add ``audit`` and ``lock`` to ``bin/lockstep``'s subcommands."""
    inv_help = "inventory file or directory (default: $LOCKSTEP_INVENTORY or inventory/local of the repository)"
    a = sub.add_parser("audit", help="fleet audit (the whole playbooks/verify.yml, or --http: the HTTP layer alone)")
    a.add_argument("--http", action="store_true", help="the HTTP layer only, without Ansible (no SSH)")
    a.add_argument("-i", "--inventory", default=default_inventory(root), help=inv_help)
    a.add_argument("--expect", help="the version every host must run (default: the one most hosts run)")
    a.add_argument("--timeout", type=float, default=2.0, help="seconds per probe")
    a.add_argument("--json", action="store_true", help="print the audit as JSON")
    a.set_defaults(func=lambda args: cmd_audit(args, root))
    lk = sub.add_parser("lock", help="the fleet's release lock")
    lsub = lk.add_subparsers(dest="action", required=True)
    path_help = "lock file (default: lockstep_lock_path of the inventory)"
    s = lsub.add_parser("show", help="who holds the release lock, and whether that process is alive")
    s.add_argument("path", nargs="?", help=path_help)
    s.add_argument("-i", "--inventory", default=default_inventory(root), help=inv_help)
    s.set_defaults(func=lambda args: cmd_lock_show(args, root))
    b = lsub.add_parser("break", help="remove the lock, only with the holder's run id typed back; recorded in "
                        "the ledger")
    b.add_argument("path", nargs="?", help=path_help)
    b.add_argument("--run-id", help="the holder's run id (prompted for when omitted on a terminal)")
    b.add_argument("--reason", help="why, for the ledger")
    b.add_argument("-i", "--inventory", default=default_inventory(root), help=inv_help)
    b.set_defaults(func=lambda args: cmd_lock_break(args, root))
