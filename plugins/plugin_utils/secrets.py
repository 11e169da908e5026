# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The secret values of a run, from wherever they are defined, for the ledger callback to scrub.

A value is secret when it is vault-encrypted (an inline ``!vault`` value, or any value of a file encrypted whole
with ansible-vault: inventory host_vars/group_vars, vars files, play vars, extra vars), or when it sits under a
variable (or dict key) whose name matches the secret patterns, whatever its source. Both representations are known:
ansible-core 2.16-2.18 load an inline vault value as ``AnsibleVaultEncryptedUnicode`` (``.data`` is the plaintext,
``.ansible_pos`` the file) and 2.19 as ``EncryptedString`` (``str()`` decrypts), with the ``VaultedValue`` tag on a
decrypted copy and the ``Origin`` tag naming the file.

Only strings of at least ``MIN_LENGTH`` characters are collected (shorter ones would redact ordinary text).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping

from ansible_collections.lockstep.release.plugins.module_utils.ledger import (
    DEFAULT_SECRET_PATTERNS,
    is_secret_name,
    plain,
    redact_vars,
    scrub,
)
from ansible_collections.lockstep.release.plugins.plugin_utils.http import safe_text

try:  # ansible-core 2.19 data tagging (internal API; absent before 2.19)
    from ansible._internal._datatag._tags import Origin, VaultedValue
except ImportError:  # pragma: no cover - ansible-core < 2.19
    Origin = VaultedValue = None

MIN_LENGTH = 4
INTERNAL_PREFIX = "__lockstep_"
VAULT_HEADER = b"$ANSIBLE_VAULT"
# Variables Ansible computes for every host (the fleet's names, the play's batches, gathered facts): never secrets,
# and walking them for every host would cost O(hosts^2).
MAGIC = frozenset((
    "groups", "group_names", "hostvars", "ansible_play_hosts", "ansible_play_hosts_all", "ansible_play_batch",
    "play_hosts", "ansible_facts", "omit", "inventory_hostname", "inventory_hostname_short", "ansible_play_name",
    "ansible_play_role_names", "ansible_role_names", "ansible_dependent_role_names", "role_names", "playbook_dir",
    "inventory_dir", "inventory_file", "ansible_config_file", "ansible_version", "ansible_playbook_python",
    "ansible_check_mode", "ansible_diff_mode", "ansible_forks", "ansible_inventory_sources", "ansible_run_tags",
    "ansible_skip_tags", "ansible_verbosity", "ansible_collection_name", "ansible_search_path", "environment",
    "vars",  # every variable again, each already walked under its own name
))


def _encrypted_plaintext(value):
    """The plaintext of an inline vault value, ``""`` when it cannot be decrypted here, None when not vaulted."""
    kind = type(value).__name__
    if kind == "EncryptedString":  # 2.19
        try:
            return str(value)
        except Exception:
            return ""
    if kind == "AnsibleVaultEncryptedUnicode":  # 2.16 - 2.18
        try:
            return str(value.data)
        except Exception:
            return ""
    return None


class Collector:
    """Collects secret values into ``secrets`` (a set of strings). One instance per run: it remembers which files
    are vault-encrypted, and which value objects it has walked (inventory values are shared between the hosts'
    variables, so each is walked once)."""

    def __init__(self, patterns, secrets=None):
        self.patterns = list(patterns)
        self.secrets = set() if secrets is None else secrets
        self._vault_files = {}
        self._seen = set()
        self._keep = []  # the walked objects stay alive, so their ids are not reused within this run

    def _add(self, text):
        if isinstance(text, str) and len(text) >= MIN_LENGTH:
            self.secrets.add(str(text))  # a plain copy, without tags

    def _file_is_vaulted(self, path):
        if not path:
            return False
        known = self._vault_files.get(path)
        if known is None:
            try:
                with open(path, "rb") as f:
                    known = f.read(len(VAULT_HEADER)) == VAULT_HEADER
            except OSError:
                known = False
            self._vault_files[path] = known
        return known

    def _from_vaulted_file(self, value):
        if Origin is not None:
            origin = Origin.get_tag(value)
            return origin is not None and self._file_is_vaulted(origin.path)
        pos = getattr(value, "ansible_pos", None)
        return bool(pos) and self._file_is_vaulted(pos[0])

    def _vaulted(self, value):
        if VaultedValue is not None and VaultedValue.is_tagged_on(value):
            return True
        return self._from_vaulted_file(value)

    def everything(self, value, render=None):
        """Every string under ``value`` is secret (it sits under a secret name); templates are rendered with
        ``render`` when given."""
        plaintext = _encrypted_plaintext(value)
        if plaintext is not None:
            self._add(plaintext)
        elif isinstance(value, str):
            self._add(value)
            if render is not None and "{{" in value:
                try:
                    rendered = render(value)
                except Exception:
                    rendered = None
                if rendered is not None and rendered is not value:
                    self.everything(rendered)
        elif isinstance(value, dict):
            for v in value.values():
                self.everything(v, render)
        elif isinstance(value, (list, tuple, set, frozenset)):
            for v in value:
                self.everything(v, render)

    def walk(self, value, render=None):
        """Collect the vault-encrypted values anywhere under ``value``, and everything under a secret name."""
        plaintext = _encrypted_plaintext(value)
        if plaintext is not None:
            self._add(plaintext)
            return
        if isinstance(value, str):
            if self._vaulted(value):
                self._add(value)
            return
        if not isinstance(value, (dict, list, tuple)):
            return
        key = id(value)
        if key in self._seen:
            return
        self._seen.add(key)
        self._keep.append(value)
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(k, str) and is_secret_name(k, self.patterns):
                    self.everything(v, render)
                else:
                    self.walk(v, render)
        else:
            for v in value:
                self.walk(v, render)

    def variables(self, variables, render=None):
        """A host's (or the run's extra) variables: every one but Ansible's own magic variables."""
        for name, value in (variables or {}).items():
            # lockstep's internal variables (roles' __lockstep_*) hold what its own actions returned, scrubbed at the
            # source, and what it derived from inputs walked here under their own names; walking them would render
            # the release record's templates for every task.
            if name in MAGIC or str(name).startswith(INTERNAL_PREFIX):
                continue
            if name == "ansible_delegated_vars" and isinstance(value, Mapping):
                # A delegated task's other host: its own variables, magic ones left out as for any host.
                for delegated in value.values():
                    self.variables(delegated if isinstance(delegated, Mapping) else {}, render)
                continue
            if isinstance(name, str) and is_secret_name(name, self.patterns):
                self.everything(value, render)
            else:
                self.walk(value, render)


# The ledger callback's secrets of this process's run (its RunSecrets, at most one). Ansible forks each task's worker
# from the controller's process, so an action's worker starts with every secret the callback had met when its task
# began: lockstep's actions scrub those too (a no_log task's result quoted by a later message), not only the ones
# their own task's variables hold. What they return (the finish role's set_stats among it) leaves clean.
_RUN = []


def _render(templar, loader, variables, text):
    return templar(loader=loader, variables=variables).template(text)


class RunSecrets:
    """The ledger callback's secrets part: every secret of a run as the callback meets it, and ``clean`` to scrub them
    out of whatever it writes or shows. ``values``: the secret strings found so far."""

    def __init__(self, patterns):
        self.patterns = list(patterns)
        self.values = set()
        self._collector = Collector(self.patterns, self.values)
        self._plays = set()  # play uuids whose hosts' secrets were collected (serial batches: once)
        # Hosts whose variables were walked since the last task that may have changed any host's (task_start):
        # a later play walks only its own variables for them.
        self._collected = set()
        self._no_log_pending = []  # (host, task) of no_log results whose registered values are not set yet
        _RUN[:] = [self]

    def add(self, text):
        self.values.add(text)

    def clean(self, value):
        return scrub(plain(value), self.values)

    def extra_vars(self, extra_vars):
        """The run's extra vars as recorded: a secret-named one as ``********`` (its value is secret from then on),
        and every vault-encrypted one (``-e @file``) secret whatever its name."""
        redacted, named = redact_vars(extra_vars, self.patterns)
        self.values.update(named)
        self._collector.variables(extra_vars)
        return redacted

    def task_start(self, task):
        """A task that may set variables of a host other than lockstep's own (``__lockstep_*``): a register, facts,
        the inventory. Every host's variables are walked again at the next play's start."""
        if self._collected and may_set_variables(task):
            self._collected.clear()

    def _host_dependent(self, play_vars):
        """Collects the play's own variables (a probe of its own: what it has walked is not skipped by the walks of
        each host); True when a template under a secret name among them must be rendered with each host's."""
        probe = Collector(self.patterns)
        templates = []
        probe.variables(play_vars, templates.append)
        self.values.update(probe.secrets)
        return bool(templates)

    def play(self, play, play_vars, hostvars, hosts):
        """Every host's secrets as the play starts: its inventory variables (host_vars, group_vars) and facts, read
        through the run's ``hostvars``, with the play's vars, vars files and the extra vars (``play_vars``: the
        play's variables before any host). Role vars are not included (no task). Templates under secret names are
        rendered with the host's variables over the play's. Once per play (a serial play starts once per batch).
        A host already walked, whose variables no task may have changed since (``task_start``), is not read again
        unless the play's own variables hold a template under a secret name."""
        key = getattr(play, "_uuid", id(play))
        if key in self._plays or hostvars is None:
            return
        self._plays.add(key)
        if not self._host_dependent(play_vars):
            hosts = [h for h in hosts if h not in self._collected]
        try:
            from ansible.template import Templar
        except ImportError:  # pragma: no cover
            Templar = None
        loader = play.get_loader()
        for host in hosts:
            try:
                own = hostvars.raw_get(host)
            except Exception:
                continue
            if not isinstance(own, Mapping):  # a host the inventory does not know: undefined
                continue
            variables = dict(play_vars)
            variables.update(own)
            render = None
            if Templar is not None:
                render = functools.partial(_render, Templar, loader, variables)
            self._collector.variables(variables, render)
            self._collected.add(host)

    def note_no_log(self, host, task):
        """A no_log task's registered result and facts are secret; Ansible sets them only after the callbacks ran,
        so they are read back (``collect_no_log``) before the next record."""
        if getattr(task, "register", None) or str(getattr(task, "action", "")).endswith("set_fact"):
            self._no_log_pending.append((host, task))

    def collect_no_log(self, hostvars):
        if not self._no_log_pending or hostvars is None:
            return
        pending, self._no_log_pending = self._no_log_pending, []
        for host, task in pending:
            try:
                values = hostvars.raw_get(host)  # the host's variables as set now, registered ones included
            except Exception:
                continue
            if not isinstance(values, Mapping):
                continue
            if str(getattr(task, "action", "")).endswith("set_fact"):
                for name in (task.args or {}):
                    if name != "cacheable" and name in values:
                        self._collector.everything(values[name])
            registered = values.get(task.register) if task.register else None
            if isinstance(registered, Mapping):
                for key in ("stdout", "stdout_lines", "content", "json", "ansible_facts"):
                    if key in registered:
                        self._collector.everything(registered[key])


# Actions whose result sets no variable of a host unless registered: lockstep's own (none returns facts) and these;
# set_fact by the names it sets, meta by what it does. Any other action (a module may return facts, add_host changes
# the inventory) may.
QUIET_ACTIONS = frozenset(("debug", "fail", "assert", "set_stats", "include_tasks", "import_tasks", "include_role",
                           "import_role", "include", "stat", "slurp", "validate_argument_spec", "set_fact", "meta"))


def may_set_variables(task):
    """Whether ``task`` may set a host variable that is not lockstep's own: a register or a fact of another name,
    or a module's facts, or the inventory."""
    register = getattr(task, "register", None)
    if register and not str(register).startswith(INTERNAL_PREFIX):
        return True
    action = str(getattr(task, "action", "") or "")
    if action.startswith("lockstep.release."):
        return False
    short = action.rsplit(".", 1)[-1] if action.startswith(("ansible.builtin.", "ansible.legacy.")) else action
    if short not in QUIET_ACTIONS:
        return True
    args = getattr(task, "args", None) or {}
    if short == "set_fact":
        return any(not str(name).startswith(INTERNAL_PREFIX) for name in args if name != "cacheable")
    if short == "meta":
        return str(args.get("_raw_params", "")).strip() == "refresh_inventory"
    return False


# Keys of lockstep's action results that hold the data a release acts on (versions, host names, the load
# balancer's view, the plan): never rewritten. Everything else (messages, URLs, commands and their output, per-check
# results) is scrubbed at the source.
DATA_KEYS = frozenset((
    "befores", "found", "inherited", "excluded", "before_version", "before_flags", "partial", "lockstep_plan",
    "lockstep_state", "servers", "serving", "lockstep_record", "lock", "switched", "probes", "manifest", "passed",
    "gate", "host", "run_id", "states",
))


def action_secrets(task_vars):
    """The secret values among a task's variables (the ledger's patterns: LOCKSTEP_LEDGER_SECRET_PATTERNS, else its
    defaults), and those the ledger callback had met when the task began (``_RUN``)."""
    raw = os.environ.get("LOCKSTEP_LEDGER_SECRET_PATTERNS", "")
    patterns = [p.strip() for p in raw.split(",") if p.strip()] or list(DEFAULT_SECRET_PATTERNS)
    collector = Collector(patterns)
    collector.variables(task_vars or {})
    return collector.secrets | (_RUN[0].values if _RUN else set())


def scrub_text(result, secrets):
    """``result`` with every secret replaced in every string, at any depth, except under DATA_KEYS; in those strings
    the password and the query values of any URL too, secret-named or not (``http.safe_text``: a token in a URL
    need not be a variable of the run)."""
    if isinstance(result, dict):
        return {k: v if k in DATA_KEYS else scrub_text(v, secrets) for k, v in result.items()}
    if isinstance(result, (list, tuple)):
        return [scrub_text(v, secrets) for v in result]
    if isinstance(result, str):
        return safe_text(scrub(result, secrets) if secrets else result)
    return result


def scrubbed(run):
    """Decorates an action plugin's ``run``: its result leaves with no secret of the run in a message, URL or
    command, nor any URL's password or query values, so neither Ansible's own output (a failed task prints its
    result) nor a ``fail`` task quoting the message can show one. The ledger callback scrubs what it records on its
    own."""

    @functools.wraps(run)
    def wrapper(self, tmp=None, task_vars=None):
        result = run(self, tmp, task_vars)
        return scrub_text(result, action_secrets(task_vars))

    return wrapper
