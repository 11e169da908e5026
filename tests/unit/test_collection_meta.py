"""The collection as Galaxy, ansible-doc and ansible-test see it (issue 18.1): every role's argument spec with the
real defaults and no validation repeated per host and per wave, role metadata that agrees with meta/runtime.yml and
galaxy.yml, every filter documented, the license, and a tarball that ships the collection and nothing of the test
bench. No fleet, no network."""

from __future__ import annotations

import ast
import glob
import importlib
import os
import re
import subprocess
import sys
import tarfile

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = sorted(os.path.basename(os.path.dirname(p)) for p in glob.glob(os.path.join(REPO, "roles", "*", "")))
GALAXY = yaml.safe_load(open(os.path.join(REPO, "galaxy.yml")))
RUNTIME = yaml.safe_load(open(os.path.join(REPO, "meta", "runtime.yml")))
# The variable names lockstep reads and the result keys its modules return share the prefix; a variable is a name
# that preflight's spec (the whole input) knows.
NAME = re.compile(r"(?<![\w.])lockstep_[a-z0-9_]+")
# Option keys that must read the same in every spec that has the option. Not required (a role requires what it cannot
# run without) nor default (a role has the defaults of common and its own only: preflight does not have the audit's).
SAME = ("type", "elements", "choices", "no_log", "description")


def load(*parts):
    with open(os.path.join(REPO, *parts)) as f:
        return yaml.safe_load(f)


def defaults(role):
    """The role's defaults as Ansible sees them: those of lockstep.release.common (every role depends on it), then
    the role's own."""
    out = dict(load("roles", "common", "defaults", "main.yml") or {})
    own = os.path.join(REPO, "roles", role, "defaults", "main.yml")
    if os.path.exists(own):
        out.update(load(own) or {})
    return out


def specs(role):
    return load("roles", role, "meta", "argument_specs.yml")["argument_specs"]


WHOLE_INPUT = specs("preflight")["main"]["options"]


@pytest.mark.parametrize("role", ROLES)
def test_every_role_has_an_argument_spec_with_the_real_defaults(role):
    found = specs(role)
    assert found, role
    values = defaults(role)
    for entry, spec in found.items():
        assert os.path.exists(os.path.join(REPO, "roles", role, "tasks", entry + ".yml")), (role, entry)
        assert spec.get("short_description") and spec.get("description") and spec.get("options"), (role, entry)
        for name, option in spec["options"].items():
            where = (role, entry, name)
            assert option.get("type") and option.get("description"), where
            if name in values:
                # The raw value (a template stays a string): what ansible-doc shows is what the role starts from.
                assert not option.get("required") and "default" in option, where
                assert option["default"] == values[name], (where, option["default"], values[name])
            else:
                assert "default" not in option, ("a default that defaults/main.yml does not have", where)


def test_the_whole_input_is_every_public_variable():
    """preflight's spec is the release's input check, and plugins/action/plan.py refuses a lockstep_* extra var it
    does not name: every default of every role is in it, and every other role's option is defined as it is there
    (its default, where the role has one, is checked above)."""
    public = set()
    for role in ROLES:
        public |= set(defaults(role))
    assert public <= set(WHOLE_INPUT), sorted(public - set(WHOLE_INPUT))
    for role in ROLES:
        for entry, spec in specs(role).items():
            for name, option in spec["options"].items():
                assert name in WHOLE_INPUT, (role, entry, name)
                for key in SAME:
                    assert option.get(key) == WHOLE_INPUT[name].get(key), (role, entry, name, key)


def own_files(role, entry):
    """The task files an entry point runs inside its own role (static include_tasks/import_tasks)."""
    todo, seen = [entry + ".yml"], []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.append(name)
        text = open(os.path.join(REPO, "roles", role, "tasks", name)).read()
        todo += re.findall(r"(?:include|import)_tasks: ([\w.-]+\.yml)\s*$", text, re.M)
    return seen


def read_names(path):
    """lockstep variable names a task file uses (comments left out)."""
    text = "\n".join(line for line in open(path) if not line.lstrip().startswith("#"))
    return set(NAME.findall(text)) & set(WHOLE_INPUT)


@pytest.mark.parametrize("role", ROLES)
def test_every_public_variable_an_entry_point_reads_is_in_its_spec(role):
    for entry, spec in specs(role).items():
        read = set()
        for name in own_files(role, entry):
            read |= read_names(os.path.join(REPO, "roles", role, "tasks", name))
        assert read <= set(spec["options"]), (role, entry, sorted(read - set(spec["options"])))


def role_includes(tasks):
    """Every include_role/import_role of a task list (blocks walked), in order."""
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        for key in ("block", "rescue", "always"):
            yield from role_includes(task.get(key))
        for action in ("ansible.builtin.include_role", "ansible.builtin.import_role", "include_role", "import_role"):
            if action in task:
                yield task[action]


def entry_has_spec(include):
    name = str(include.get("name") or include.get("role") or "")
    if not name.startswith("lockstep.release."):
        return False
    role = name.split(".")[-1]
    return include.get("tasks_from", "main") in specs(role)


def test_no_argument_validation_is_repeated_per_host_or_per_wave():
    """ansible-core prepends a validation task to every include of an entry point that has a spec, run on each host
    of each include: lockstep's playbooks validate at their first role (playbooks/release.yml: preflight; finish, a
    roles: entry, once more at the end) and include every later entry point with a spec, and every one in a serial
    play, with rolespec_validate: false; lockstep's roles include each other the same way. common, every role's
    dependency, has no main spec (a dependency's main is validated at every include of the role that depends on it)."""
    assert "main" not in specs("common")
    for role in ROLES:
        meta = load("roles", role, "meta", "main.yml")
        for dep in meta.get("dependencies") or []:
            dep = dep["role"] if isinstance(dep, dict) else dep
            assert "main" not in specs(dep.split(".")[-1]), (role, dep)
    paths = glob.glob(os.path.join(REPO, "playbooks", "*.yml")) + glob.glob(os.path.join(REPO, "awx", "*.yml"))
    for path in sorted(paths):
        validated = False  # a lockstep role of this playbook validated its input already
        for play in load(path) or []:
            if not isinstance(play, dict) or "hosts" not in play:
                continue
            for entry in play.get("roles") or []:
                # A roles: entry validates once per play, and once per batch of a serial play.
                assert not (play.get("serial") and entry_has_spec(entry if isinstance(entry, dict) else {
                    "name": entry})), (path, play.get("name"), entry)
                validated = True
            for include in role_includes((play.get("pre_tasks") or []) + (play.get("tasks") or [])):
                if entry_has_spec(include) and (validated or play.get("serial")):
                    assert include.get("rolespec_validate") is False, (path, play.get("name"), include)
                validated = validated or str(include.get("name", "")).startswith("lockstep.release.")
    for path in sorted(glob.glob(os.path.join(REPO, "roles", "*", "tasks", "*.yml"))):
        for include in role_includes(load(path)):
            if entry_has_spec(include):
                assert include.get("rolespec_validate") is False, (path, include)


@pytest.mark.parametrize("role", ROLES)
def test_role_metadata_agrees_with_runtime_and_galaxy(role):
    info = load("roles", role, "meta", "main.yml")
    galaxy_info = info["galaxy_info"]
    lower = [Version(s.version) for s in SpecifierSet(RUNTIME["requires_ansible"]) if s.operator == ">="]
    assert len(lower) == 1, RUNTIME["requires_ansible"]
    assert Version(str(galaxy_info["min_ansible_version"])) == lower[0], (role, galaxy_info["min_ansible_version"])
    assert galaxy_info["license"] in GALAXY["license"], role
    # One set of platforms for the collection's roles.
    assert galaxy_info["platforms"] == load("roles", "common", "meta", "main.yml")["galaxy_info"]["platforms"], role
    # Roles depend on roles of this collection only: the collection declares no dependency (galaxy.yml), and the
    # execution environment installs none (requirements.yml).
    for dep in info.get("dependencies") or []:
        dep = dep["role"] if isinstance(dep, dict) else dep
        namespace, name, dep_role = dep.split(".")
        assert (namespace, name) == (GALAXY["namespace"], GALAXY["name"]) and dep_role in ROLES, (role, dep)
    assert not GALAXY.get("dependencies")
    assert not (load("requirements.yml") or {}).get("collections")


def filters():
    out = {}
    for path in sorted(glob.glob(os.path.join(REPO, "plugins", "filter", "*.py"))):
        module = importlib.import_module("ansible_collections.lockstep.release.plugins.filter."
                                         + os.path.basename(path)[:-3])
        out.update(module.FilterModule().filters())
    return out


def test_every_filter_is_documented():
    names = filters()
    docs = {os.path.basename(p)[:-4] for p in glob.glob(os.path.join(REPO, "plugins", "filter", "*.yml"))}
    assert set(names) == docs, (sorted(set(names) - docs), sorted(docs - set(names)))
    for name in names:
        doc = load("plugins", "filter", name + ".yml")
        assert doc["DOCUMENTATION"]["name"] == name
        assert doc["DOCUMENTATION"]["short_description"] and doc["DOCUMENTATION"]["description"]
        assert "_input" in doc["DOCUMENTATION"]["options"] and doc["RETURN"]["_value"]["description"]
        assert yaml.safe_load(doc["EXAMPLES"]) is not None, name
        # Every option is an argument of the filter (its first argument is _input).
        code = names[name].__code__
        args = list(code.co_varnames[:code.co_argcount])
        assert set(doc["DOCUMENTATION"]["options"]) == {"_input"} | set(args[1:]), (name, args)


def test_the_license_file_is_the_license_galaxy_yml_names():
    assert GALAXY["license"] == ["GPL-3.0-or-later"]
    text = open(os.path.join(REPO, "LICENSE")).read()
    assert text == open(os.path.join(REPO, "COPYING")).read()
    assert "GNU GENERAL PUBLIC LICENSE" in text and "Version 3, 29 June 2007" in text


# What the tarball must not hold: the repository's test bench and tooling (galaxy.yml build_ignore says why).
NOT_SHIPPED = ("lockstep_fleet", "sample", "bench", "tests", "molecule", "inventory", "bin/fleet", "bin/demo",
               ".config", ".ci", "ansible.cfg", "Makefile", "requirements.txt", "requirements.yml",
               "execution-environment.yml", "pyproject.toml", "ruff.toml", ".ansible-lint", ".yamllint",
               ".gitignore", ".venv", ".fleet", ".lockstep", "artifacts", "collections", "dist", ".ansible")
SHIPPED = ("README.md", "CHANGELOG.md", "COPYING", "LICENSE", "bin/lockstep", "meta/runtime.yml",
           "meta/execution-environment.yml", "meta/ee-requirements.txt", "meta/bindep.txt", "playbooks/release.yml",
           "playbooks/rollback.yml", "playbooks/verify.yml", "playbooks/halt.yml", "playbooks/resume.yml",
           "playbooks/check_fleet.yml",
           "awx/controller.yml", "awx/configure.yml", "awx/halt_proven.yml",
           "extensions/eda/rulebooks/lockstep_guard.yml", "extensions/eda/plugins/event_source/lockstep_guard.py",
           "examples/load_balancers/haproxy_socket.yml", "docs/ledger.md", "docs/load-balancers.md")
# A path into what is not shipped (comments and docs aside).
INTO_NOT_SHIPPED = re.compile(r"(?<![\w.])(?:lockstep_fleet|sample|bench|tests|molecule)/|bin/(?:fleet|demo)\b"
                              r"|inventory/local")


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["ANSIBLE_HOME"] = str(out / "ansible-home")
    galaxy = os.path.join(os.path.dirname(sys.executable), "ansible-galaxy")
    subprocess.run([galaxy, "collection", "build", "--output-path", str(out), REPO], check=True, env=env,
                   capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    return out / ("%s-%s-%s.tar.gz" % (GALAXY["namespace"], GALAXY["name"], GALAXY["version"]))


def test_the_tarball_ships_the_collection_and_not_the_test_bench(tarball):
    with tarfile.open(tarball) as tar:
        members = {m.name: m for m in tar.getmembers()}
    for name in SHIPPED + tuple(os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "roles", "*", "meta",
                                                                                         "argument_specs.yml"))):
        assert name in members, name
    assert members["bin/lockstep"].mode & 0o111, "bin/lockstep is not executable"
    for name in NOT_SHIPPED:
        assert not any(n == name or n.startswith(name + "/") for n in members), name


def test_nothing_shipped_reads_what_is_not_shipped(tarball):
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            name = member.name
            if not member.isfile() or name.startswith("docs/") or name.endswith(".md") or name in (
                    "COPYING", "LICENSE", "MANIFEST.json", "FILES.json"):
                continue
            text = tar.extractfile(member).read().decode()
            if name.endswith(".py") or name == "bin/lockstep":
                for node in ast.walk(ast.parse(text)):
                    modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                               else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                    for module in modules:
                        assert module.split(".")[0] not in ("lockstep_fleet", "tests", "bench", "sample"), (
                            name, module)
            else:
                code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
                assert not INTO_NOT_SHIPPED.search(code), (name, INTO_NOT_SHIPPED.search(code).group(0))
