# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operator's commands of ``bin/lockstep``: ``audit [--http]`` and ``lock show|break``.

They read the inventory the way Ansible does, with ansible-core's own inventory (``InventoryManager``,
``VariableManager``, the vault secrets of ``--vault-id`` / ``--vault-password-file`` / ``ANSIBLE_VAULT_PASSWORD_FILE``
and ansible.cfg): INI and YAML, ``host_vars/`` and ``group_vars/``, vaulted values, inventory plugins. The variables
are the ones lockstep's roles see on a host: the defaults of ``roles/common`` under the inventory's, templated.

The release lock lives where the release keeps it, ``lockstep_lock_path`` on ``lockstep_lock_host`` (the load
balancer's host when there is one). On the controller (a host Ansible reaches with the ``local`` connection and no
``become``) it is read in process; on any other host through ansible-core itself (``ansible HOST -m
ansible.builtin.slurp``), so the user's connection, become and host-key settings apply.
"""

from __future__ import annotations

import base64
import calendar
import getpass
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.lockstep.release.plugins.module_utils import ledger
from ansible_collections.lockstep.release.plugins.plugin_utils.audit import (
    format_audit,
    judge,
    lock_holder,
    message,
    probe_fleet,
)

DEFAULTS = {"lockstep_group": "app", "lockstep_version_path": "/version", "lockstep_version_field": "version"}
# The collection this file belongs to (plugins/plugin_utils/operator_cli.py), and the collections path holding it.
COLLECTION = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_PARTS = os.path.abspath(__file__).split(os.sep)
COLLECTIONS_PATH = (os.sep.join(_PARTS[:len(_PARTS) - 1 - _PARTS[::-1].index("ansible_collections")])
                    if "ansible_collections" in _PARTS else None)
LOCAL_CONNECTIONS = ("local", "ansible.builtin.local")


class InventoryError(Exception):
    """The inventory (or a variable lockstep needs from it) cannot be read: one line for the operator, exit 2."""


class RemoteError(Exception):
    """A host could not be asked through Ansible (unreachable, the module failed): one line, exit 1."""


def _one_line(ex):
    text = getattr(ex, "message", None) or str(ex)
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip()) or type(ex).__name__


def init_ansible(collections_path=COLLECTIONS_PATH):
    """Set up ansible-core's plugin and collection loaders as its own commands do (inventory plugins of other
    collections need them), with ``collections_path`` first. Only before anything of ``ansible_collections`` is
    imported by plain Python (``bin/lockstep`` calls it first): the loader cannot take over a collection imported
    without it. Returns whether the loaders are Ansible's."""
    from ansible.utils.collection_loader import AnsibleCollectionConfig

    if AnsibleCollectionConfig.collection_finder is not None:
        return True
    if any(name == "ansible_collections" or name.startswith("ansible_collections.") for name in sys.modules):
        return False  # embedded (a test, ansible-rulebook): ansible-core's built-in inventory plugins only
    from ansible.plugins.loader import init_plugin_loader

    init_plugin_loader([collections_path] if collections_path else None)
    return True


def _ansible():
    """ansible-core's controller side, imported on first use."""
    try:
        from ansible import constants as C
        from ansible.cli import CLI
        from ansible.errors import AnsibleError
        from ansible.inventory.manager import InventoryManager
        from ansible.parsing.dataloader import DataLoader
        from ansible.template import Templar
        from ansible.vars.manager import VariableManager
    except ImportError as ex:  # pragma: no cover (ansible-core is a requirement of the collection)
        raise InventoryError("ansible-core is not importable here (%s)" % ex) from None
    init_ansible()
    return C, CLI, AnsibleError, InventoryManager, DataLoader, Templar, VariableManager


def _vault_secrets(CLI, C, loader, vault_ids, vault_password_files):
    """The vault secrets Ansible's own commands would use (ansible.cfg's vault identities and password file,
    ``ANSIBLE_VAULT_PASSWORD_FILE``, the options), set on ``loader``; with ansible-core 2.19 also in its
    process-wide vault context, where vaulted values are decrypted when templated."""
    secrets = CLI.setup_vault_secrets(loader, vault_ids=list(C.DEFAULT_VAULT_IDENTITY_LIST) + list(vault_ids),
                                      vault_password_files=list(vault_password_files), auto_prompt=False,
                                      **({"initialize_context": False} if "initialize_context" in
                                         CLI.setup_vault_secrets.__code__.co_varnames else {}))
    loader.set_vault_secrets(secrets)
    if not secrets:
        return
    try:
        from ansible.parsing.vault import VaultSecretsContext
    except ImportError:
        return
    context = VaultSecretsContext.current(optional=True)
    if context is None:
        VaultSecretsContext.initialize(VaultSecretsContext(list(secrets)))
    else:
        context.secrets.extend(s for s in secrets if s not in context.secrets)


def _trusted(value):
    """A role default as a role's defaults are to Ansible: a template (ansible-core 2.19 templates only trusted
    strings; earlier versions every string)."""
    try:
        from ansible.template import trust_as_template
    except ImportError:
        return value
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: _trusted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    return value


def default_inventory(root=None):
    """The inventory sources when none is given: ``$LOCKSTEP_INVENTORY``, else Ansible's own (``ANSIBLE_INVENTORY``,
    ansible.cfg's ``inventory``, else /etc/ansible/hosts)."""
    if os.environ.get("LOCKSTEP_INVENTORY"):
        return [os.environ["LOCKSTEP_INVENTORY"]]
    from ansible import constants as C

    return list(C.DEFAULT_HOST_LIST or [])


class Inventory:
    """An inventory as ansible-core reads it, and lockstep's variables on its hosts."""

    def __init__(self, sources=None, vault_ids=(), vault_password_files=()):
        C, CLI, AnsibleError, InventoryManager, DataLoader, Templar, VariableManager = _ansible()
        if isinstance(sources, str):
            sources = [sources]
        sources = list(sources or default_inventory())
        if not sources:
            raise InventoryError("no inventory: pass -i INVENTORY, or set ANSIBLE_INVENTORY or ansible.cfg's inventory")
        # A path that does not exist is an error (Ansible would only warn and carry on with an empty inventory); a
        # comma-separated host list is a source of its own.
        for s in sources:
            if "," not in s and not os.path.exists(s):
                raise InventoryError("inventory %s: no such file or directory" % s)
        self.sources = [s if "," in s else os.path.abspath(s) for s in sources]
        self.path = ", ".join(self.sources)
        self.vault_ids = list(vault_ids or [])
        self.vault_password_files = list(vault_password_files or [])
        self._templar, self._error = Templar, AnsibleError
        self._constants = C
        try:
            self._loader = DataLoader()
            _vault_secrets(CLI, C, self._loader, self.vault_ids, self.vault_password_files)
            self._inventory = InventoryManager(loader=self._loader, sources=self.sources)
            self._vars = VariableManager(loader=self._loader, inventory=self._inventory)
            defaults = os.path.join(COLLECTION, "roles", "common", "defaults", "main.yml")
            self.defaults = ({k: _trusted(v) for k, v in (self._loader.load_from_file(defaults) or {}).items()}
                             if os.path.isfile(defaults) else {})
        except AnsibleError as ex:
            raise InventoryError("inventory %s: %s" % (self.path, _one_line(ex))) from None
        # Groups as Ansible lists them: hosts in inventory order.
        self.members = {g: list(hosts) for g, hosts in self._inventory.get_groups_dict().items()}
        self.groups = {g: set(hosts) for g, hosts in self.members.items()}
        if not self.members.get("all"):
            raise InventoryError("inventory %s: Ansible found no host in it (not an inventory it can parse, or "
                                 "empty)" % self.path)
        self._host_vars = {}

    def host_vars(self, host):
        """Every variable of ``host`` (role defaults of lockstep under the inventory's), untemplated."""
        if host not in self._host_vars:
            h = self._inventory.get_host(host)  # "localhost" is Ansible's implicit localhost when not listed
            if h is None:
                raise InventoryError("host %s is not in inventory %s" % (host, self.path))
            try:
                found = self._vars.get_vars(host=h)
            except self._error as ex:
                raise InventoryError("inventory %s, host %s: %s" % (self.path, host, _one_line(ex))) from None
            self._host_vars[host] = dict(self.defaults, **found)
        return self._host_vars[host]

    def var(self, name, host=None, group=None):
        """``name`` as a task of lockstep sees it on ``host``, or on the first host of ``group`` (the host whose
        vars a ``run_once`` task of a play on that group templates), else on the inventory's first host."""
        if host is None:
            host = (self.members.get(group) or self.members["all"])[0]
        variables = self.host_vars(host)
        if name not in variables:
            return DEFAULTS.get(name)
        try:
            value = self._templar(loader=self._loader, variables=variables).template(variables[name])
            if type(value).__name__ == "AnsibleVaultEncryptedUnicode":
                value = str(value)  # ansible-core < 2.19 decrypts on first use: here, where its error is caught
            return value
        except self._error as ex:
            why = _one_line(ex)
            if "undecryptable" in why or "no vault secrets" in why:
                why = ("it is vaulted and no vault secret decrypts it (--vault-password-file, --vault-id or "
                       "ANSIBLE_VAULT_PASSWORD_FILE): %s" % why)
            raise InventoryError("inventory %s: %s of host %s: %s" % (self.path, name, host, why)) from None

    def is_controller(self, host):
        """Whether Ansible runs ``host``'s tasks on this machine as this user: the ``local`` connection (Ansible's
        implicit localhost has it) without ``become``."""
        connection = self.var("ansible_connection", host=host) or self._constants.DEFAULT_TRANSPORT
        become = self.var("ansible_become", host=host)
        if become is None:
            become = self._constants.DEFAULT_BECOME
        return connection in LOCAL_CONNECTIONS and str(become).lower() not in ("true", "yes", "1", "on")

    def ansible_options(self):
        """The command-line options that make ``ansible`` read this same inventory with the same vault secrets."""
        opts = []
        for s in self.sources:
            opts += ["-i", s]
        for v in self.vault_ids:
            opts += ["--vault-id", v]
        for f in self.vault_password_files:
            opts += ["--vault-password-file", f]
        return opts


def _executable(name):
    here = os.path.join(os.path.dirname(sys.executable), name)
    return here if os.access(here, os.X_OK) else shutil.which(name)


def ansible_module(inv, host, module, args, timeout=120):
    """Run one module on one inventory host with ansible-core's own ``ansible`` command: the connection, become
    and host keys are the user's configuration. Returns the module's result with ``_status`` (``SUCCESS``,
    ``CHANGED``, ``FAILED!`` or ``UNREACHABLE!``); raises RemoteError when there is none."""
    exe = _executable("ansible")
    if not exe:
        raise RemoteError("the ansible command is not on PATH (needed to reach %s)" % host)
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="0", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    if COLLECTIONS_PATH and module.startswith("lockstep.release."):
        from ansible import constants as C

        env["ANSIBLE_COLLECTIONS_PATH"] = os.pathsep.join([COLLECTIONS_PATH] + list(C.COLLECTIONS_PATHS or []))
    cmd = [exe, host] + inv.ansible_options() + ["-m", module, "-a", json.dumps(args)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired:
        raise RemoteError("ansible %s -m %s: no answer within %ss" % (host, module, timeout)) from None
    found = re.search(r"^%s \| (SUCCESS|CHANGED|FAILED!|UNREACHABLE!) => " % re.escape(host), proc.stdout, re.M)
    if not found:
        why = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
        raise RemoteError("ansible %s -m %s gave no result (exit %d)%s" % (
            host, module, proc.returncode, ": " + why[-1].strip() if why else ""))
    try:
        result, dummy = json.JSONDecoder().raw_decode(proc.stdout, found.end())
    except ValueError as ex:
        raise RemoteError("ansible %s -m %s: unreadable result (%s)" % (host, module, ex)) from None
    result["_status"] = found.group(1)
    if result["_status"] == "UNREACHABLE!":
        raise RemoteError("%s unreachable through Ansible: %s" % (host, _one_line(result.get("msg") or "")))
    return result


def _parse_lock(text, where):
    try:
        return json.loads(text)
    except ValueError as e:
        return {"unreadable": "%s: %s" % (where, e)}


def _read_lock(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        return {"unreadable": str(e)}


class LockPlace:
    """The fleet's release lock: ``path`` on ``host``, read in process on the controller (``inv`` None), else
    through Ansible on ``host`` of ``inv``."""

    def __init__(self, path, host=None, inv=None):
        self.path, self.host, self.inv = path, host, inv
        self.remote = inv is not None

    def __str__(self):
        return "%s on %s" % (self.path, self.host) if self.remote else self.path

    def read(self, suffix=""):
        """The JSON file ``path + suffix``: a dict, None when there is none, ``{"unreadable": why}`` when it cannot
        be read. RemoteError when the host cannot be asked."""
        if not self.remote:
            return _read_lock(self.path + suffix)
        result = ansible_module(self.inv, self.host, "ansible.builtin.slurp", {"src": self.path + suffix})
        if result["_status"] == "FAILED!":
            msg = str(result.get("msg") or "")
            if "not found" in msg.lower():
                return None
            return {"unreadable": "%s on %s: %s" % (self.path + suffix, self.host, _one_line(msg))}
        try:
            text = base64.b64decode(result.get("content") or "").decode()
        except ValueError as e:
            return {"unreadable": "%s on %s: %s" % (self.path + suffix, self.host, e)}
        return _parse_lock(text, "%s on %s" % (self.path + suffix, self.host))

    def read_all(self, suffixes):
        """``{suffix: read(suffix)}``, all at once (one Ansible connection each)."""
        with ThreadPoolExecutor(max_workers=len(suffixes)) as pool:
            futures = {s: pool.submit(self.read, s) for s in suffixes}
            return {s: f.result() for s, f in futures.items()}

    def remove(self):
        if not self.remote:
            os.unlink(self.path)
            return
        result = ansible_module(self.inv, self.host, "ansible.builtin.file", {"path": self.path, "state": "absent"})
        if result["_status"] == "FAILED!":
            raise RemoteError("removing %s: %s" % (self, _one_line(str(result.get("msg") or ""))))


def lock_place(inv, path=None, host=None):
    """Where the release keeps the lock of ``inv``'s fleet: ``lockstep_lock_path`` on ``lockstep_lock_host``, both
    templated on the first host of ``lockstep_group`` as the preflight's ``run_once`` task templates them."""
    group = inv.var("lockstep_group")
    path = path or inv.var("lockstep_lock_path", group=group)
    host = host or inv.var("lockstep_lock_host", group=group) or "localhost"
    if not path:
        raise InventoryError("inventory %s: lockstep_lock_path is empty" % inv.path)
    host = str(host)
    if inv.is_controller(host):
        return LockPlace(str(path), host)
    return LockPlace(str(path), host, inv)


def _inventory(args):
    return Inventory(getattr(args, "inventory", None), vault_ids=getattr(args, "vault_id", None) or (),
                     vault_password_files=getattr(args, "vault_password_file", None) or ())


def cmd_audit(args, root):
    if not args.http:
        # The whole audit is the playbook; this only saves typing.
        cmd = [_executable("ansible-playbook") or "ansible-playbook"]
        for s in args.inventory or ([os.environ["LOCKSTEP_INVENTORY"]] if os.environ.get("LOCKSTEP_INVENTORY") else []):
            cmd += ["-i", s]
        for v in args.vault_id or []:
            cmd += ["--vault-id", v]
        for f in args.vault_password_file or []:
            cmd += ["--vault-password-file", f]
        cmd.append(os.path.join(root, "playbooks", "verify.yml"))
        if args.expect:
            cmd += ["-e", "lockstep_audit_expect=%s" % args.expect]
        if os.path.isfile(os.path.join(root, "ansible.cfg")):
            os.environ.setdefault("ANSIBLE_CONFIG", os.path.join(root, "ansible.cfg"))
        os.execvp(cmd[0], cmd)
    started = time.monotonic()
    inv = _inventory(args)
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


def _lock_place(args):
    """PATH alone: a file on the controller. Otherwise the inventory's lockstep_lock_path, on its
    lockstep_lock_host (or --host)."""
    if args.path and not args.host:
        return LockPlace(args.path)
    return lock_place(_inventory(args), path=args.path, host=args.host)


def _age(started, now=None):
    """``2h 5m`` since the lock's ``started`` (UTC, ``%Y-%m-%dT%H:%M:%SZ``), or None."""
    try:
        seconds = int((now or time.time()) - calendar.timegm(time.strptime(str(started), "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None
    if seconds < 0:
        return "0s (started in the future by this controller's clock)"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return "%dd %dh" % (days, hours)
    if hours:
        return "%dh %dm" % (hours, minutes)
    return "%dm %ds" % (minutes, secs) if minutes else "%ds" % secs


def _describe(lock):
    holder, dead = lock_holder(lock)
    if dead:
        alive = "no (the process is gone: a dead run)"
    elif lock.get("controller") == socket.gethostname():
        alive = "yes"
    else:
        alive = ("unknown (taken on another controller, %s: if that machine or container is gone, so is the run)"
                 % (lock.get("controller") or "unnamed"))
    age = _age(lock.get("started"))
    return [("run id", lock.get("run_id")), ("user", lock.get("user")), ("controller", lock.get("controller")),
            ("pid", lock.get("pid")), ("pid alive", alive), ("version", lock.get("version")),
            ("since", lock.get("started")), ("held for", age)], dead


def _print_rows(rows):
    for k, v in rows:
        print("  %-12s %s" % (k, v if v not in (None, "") else "-"))


def _break_command(args, lock):
    """The exact command that breaks this lock (the one the operator ran, with ``break`` and the run id)."""
    prog = sys.argv[0] if os.path.basename(sys.argv[0]) == "lockstep" else "lockstep"
    cmd = [prog, "lock", "break"]
    for s in args.inventory or []:
        cmd += ["-i", s]
    for v in args.vault_id or []:
        cmd += ["--vault-id", v]
    for f in args.vault_password_file or []:
        cmd += ["--vault-password-file", f]
    if args.host:
        cmd += ["--host", args.host]
    cmd += ["--run-id", str(lock.get("run_id"))]
    if args.path:
        cmd.append(args.path)
    return shlex.join(cmd)


def _outcome_line(outcome):
    if not outcome:
        return None
    if "unreadable" in outcome:
        return "unreadable: %s" % outcome["unreadable"]
    return "run %s %s, serving %s (finished %s)" % (outcome.get("run_id") or "-", outcome.get("status") or "-",
                                                    outcome.get("serving") or "unknown", outcome.get("finished") or "-")


def cmd_lock_show(args, root):
    place = _lock_place(args)
    try:
        found = place.read_all(["", ".outcome"])
    except RemoteError as ex:
        print("lockstep: cannot read the release lock %s: %s" % (place, ex), file=sys.stderr)
        return 1
    lock, outcome = found[""], _outcome_line(found[".outcome"])
    if lock is None:
        print("%s: no release lock held" % place)
        if outcome:
            print("  %-12s %s" % ("last outcome", outcome))
        return 0
    if "unreadable" in lock:
        print("%s: lock file unreadable: %s" % (place, lock["unreadable"]), file=sys.stderr)
        return 1
    print("release lock %s held by:" % place)
    rows, dummy = _describe(lock)
    _print_rows(rows)
    if outcome:
        print("  %-12s %s" % ("last outcome", outcome))
    print("If no release is running (its controller or AWX container is gone), break it (recorded in the ledger):")
    print("  " + _break_command(args, lock))
    return 0


def cmd_lock_break(args, root):
    place = _lock_place(args)
    try:
        lock = place.read()
    except RemoteError as ex:
        print("lockstep: cannot read the release lock %s: %s" % (place, ex), file=sys.stderr)
        return 1
    if lock is None:
        print("%s: no release lock held, nothing to break" % place)
        return 0
    if "unreadable" in lock or not lock.get("run_id"):
        print("%s: lock file has no readable run id; inspect it and remove it by hand" % place, file=sys.stderr)
        return 1
    rows, dead = _describe(lock)
    run_id = args.run_id
    if run_id is None:
        print("release lock %s held by:" % place)
        _print_rows(rows)
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
                       "path": place.path if place.remote else os.path.abspath(place.path),
                       **({"host": place.host} if place.remote else {}),
                       "lock": lock, "holder_dead": dead, "user": getpass.getuser(),
                       "controller": socket.gethostname(), "pid": os.getpid(), "reason": args.reason or None})
    finally:
        writer.close()
    # Only the lock that was shown is removed: a new holder's lock is left alone.
    try:
        if (place.read() or {}).get("run_id") != lock["run_id"]:
            print("lockstep: the lock changed hands meanwhile: not broken", file=sys.stderr)
            return 1
        place.remove()
    except RemoteError as ex:
        print("lockstep: lock %s NOT broken: %s (the attempt is recorded in %s)" % (place, ex, writer.path),
              file=sys.stderr)
        return 1
    print("release lock %s of run %s broken; recorded in %s" % (place, lock["run_id"], writer.path))
    return 0


def _fails_cleanly(func):
    """An inventory lockstep cannot read is said in one line (exit 2), never as a traceback."""

    def run(args):
        try:
            return func(args)
        except InventoryError as ex:
            print("lockstep: %s" % ex, file=sys.stderr)
            return 2

    return run


def add_commands(sub, root):
    """Add ``audit`` and ``lock`` to ``bin/lockstep``'s subcommands."""
    inv_help = ("inventory source, as ansible's -i (repeatable; default: $LOCKSTEP_INVENTORY, else Ansible's own: "
                "ANSIBLE_INVENTORY or ansible.cfg's inventory)")

    def inventory_options(p):
        p.add_argument("-i", "--inventory", action="append", help=inv_help)
        p.add_argument("--vault-id", action="append", help="vault identity, as ansible's --vault-id (repeatable)")
        p.add_argument("--vault-password-file", "--vault-pass-file", action="append",
                       help="vault password file, as ansible's (repeatable; ANSIBLE_VAULT_PASSWORD_FILE is read too)")

    a = sub.add_parser("audit", help="fleet audit (the whole playbooks/verify.yml, or --http: the HTTP layer alone)")
    a.add_argument("--http", action="store_true", help="the HTTP layer only, no connection to the hosts")
    inventory_options(a)
    a.add_argument("--expect", help="the version every host must run (default: the one most hosts run)")
    a.add_argument("--timeout", type=float, default=2.0, help="seconds per probe")
    a.add_argument("--json", action="store_true", help="print the audit as JSON")
    a.set_defaults(func=_fails_cleanly(lambda args: cmd_audit(args, root)))
    lk = sub.add_parser("lock", help="the fleet's release lock")
    lsub = lk.add_subparsers(dest="action", required=True)
    path_help = ("lock file (default: lockstep_lock_path of the inventory, on its lockstep_lock_host); alone, a file "
                 "on this machine")
    host_help = ("inventory host that keeps the lock (default: lockstep_lock_host of the inventory; with PATH: this "
                 "machine); read through Ansible unless it is reached with the local connection")
    s = lsub.add_parser("show", help="who holds the release lock, since when, and how to break it")
    s.add_argument("path", nargs="?", help=path_help)
    s.add_argument("--host", help=host_help)
    inventory_options(s)
    s.set_defaults(func=_fails_cleanly(lambda args: cmd_lock_show(args, root)))
    b = lsub.add_parser("break", help="remove the lock, only with the holder's run id typed back; recorded in "
                        "the ledger")
    b.add_argument("path", nargs="?", help=path_help)
    b.add_argument("--host", help=host_help)
    b.add_argument("--run-id", help="the holder's run id (prompted for when omitted on a terminal)")
    b.add_argument("--reason", help="why, for the ledger")
    inventory_options(b)
    b.set_defaults(func=_fails_cleanly(lambda args: cmd_lock_break(args, root)))
