"""The collection as Galaxy, AWX and an execution environment get it: `ansible-galaxy collection build`, installed
into an empty collections path, documented and releasing from there (not from the repository in place); and the
execution environment definition turned into a build context by `ansible-builder create` (no container engine)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile

import pytest
import yaml
from release_helpers import REPO, VENV_BIN, assert_whole_fleet_on, ledger
from test_release_halts import stale_pidfile

GALAXY = yaml.safe_load(open(os.path.join(REPO, "galaxy.yml")))
TARBALL = "lockstep-release-%s.tar.gz" % GALAXY["version"]


def run(cmd, cwd, env, timeout=300):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, (cmd, proc.stdout[-6000:] + proc.stderr[-6000:])
    return proc.stdout


def clean_env(tmp_path, **extra):
    # Nothing of the repository's Ansible settings: no ansible.cfg (its collections_path is the repository in
    # place), no ANSIBLE_* from the caller, a HOME without ~/.ansible/collections.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "LOCKSTEP_", "MOLECULE_"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update({"PATH": VENV_BIN + os.pathsep + env.get("PATH", ""), "HOME": str(home), "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "collections")})
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """dist/lockstep-release-<version>.tar.gz, built from the repository and installed into an empty path."""
    tmp = tmp_path_factory.mktemp("collection")
    env = clean_env(tmp)
    run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(tmp / "dist"),
         REPO], cwd=str(tmp), env=env)
    tarball = tmp / "dist" / TARBALL
    run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "install", "--offline", "-p",
         str(tmp / "collections"), str(tarball)], cwd=str(tmp), env=env)
    return tmp, tarball


def test_the_tarball_has_the_collection_and_no_local_state(built):
    _, tarball = built
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    manifest = json.load(tarfile.open(tarball).extractfile("MANIFEST.json"))
    assert manifest["collection_info"]["namespace"] == "lockstep" and manifest["collection_info"]["name"] == "release"
    for needed in ("playbooks/release.yml", "playbooks/rollback.yml", "playbooks/verify.yml", "playbooks/halt.yml",
                   "roles/rollout/tasks/main.yml", "plugins/callback/ledger.py", "plugins/modules/deploy.py",
                   "plugins/module_utils/ledger.py", "meta/runtime.yml", "meta/execution-environment.yml"):
        assert needed in names, needed
    for local in (".venv", ".fleet", ".lockstep", "artifacts", "collections", "dist", ".ansible", ".pytest_cache"):
        assert not any(n == local or n.startswith(local + "/") for n in names), local
    assert "inventory/local/hosts.yml" not in names


def test_the_installed_collection_documents_every_plugin(built):
    tmp, _ = built
    env = clean_env(tmp)
    listed = run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "list", "lockstep.release", "--format",
                  "json"], cwd=str(tmp), env=env)
    assert list(json.loads(listed)) == [str(tmp / "collections" / "ansible_collections")], listed
    modules = sorted(n[:-3] for n in os.listdir(os.path.join(REPO, "plugins", "modules")) if n.endswith(".py"))
    docs = json.loads(run([os.path.join(VENV_BIN, "ansible-doc"), "--json"] + [
        "lockstep.release." + m for m in modules], cwd=str(tmp), env=env))
    assert sorted(docs) == ["lockstep.release." + m for m in modules], sorted(docs)
    for name, doc in docs.items():
        assert doc["doc"]["filename"].startswith(str(tmp / "collections")), (name, doc["doc"]["filename"])
    callback = json.loads(run([os.path.join(VENV_BIN, "ansible-doc"), "--json", "-t", "callback",
                               "lockstep.release.ledger"], cwd=str(tmp), env=env))
    assert callback["lockstep.release.ledger"]["doc"]["filename"].startswith(str(tmp / "collections"))


def test_a_release_from_the_installed_collection(built, fleet, tmp_path):
    """As an installed user runs it: the playbook by its FQCN, every role, module and the ledger callback from the
    installed copy, a project directory with its own ansible.cfg, the installed bin/lockstep."""
    tmp, _ = built
    fleet.up(hosts=3, version="1.0.0")
    # ansible.cfg of a project that uses the collection: the repository's ssh settings, nothing pointing back into
    # the repository; the inventory (hosts.yml and the sample's group_vars) is the fleet's.
    cfg = tmp_path / "ansible.cfg"
    ssh_args = re.search(r"^ssh_args = (.*)$", open(os.path.join(REPO, "ansible.cfg")).read(), re.M).group(1)
    settings = "forks = 32\n[ssh_connection]\npipelining = True\nssh_args = %s\n" % ssh_args
    env = clean_env(tmp, ANSIBLE_CONFIG=str(cfg), ANSIBLE_SSH_CONTROL_PATH_DIR=str(tmp_path / "cp"),
                    LOCKSTEP_LEDGER_DIR=str(tmp_path / "ledger"), LOCKSTEP_LEDGER_ANCHOR_DIR=str(tmp_path / "anchors"))

    def release(version):
        return subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", os.path.join(
            REPO, "inventory", "local"), "lockstep.release.release", "-e", json.dumps(
            {"lockstep_version": version, "lockstep_watch_seconds": 0})], cwd=str(tmp_path), env=env,
            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)

    # Without the callback line: refused before any host is contacted, naming the line, never a silent release.
    cfg.write_text("[defaults]\n" + settings)
    proc = release("2.1.0")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "callbacks_enabled = lockstep.release.ledger" in out, out[-8000:]
    assert_whole_fleet_on(fleet, "1.0.0")

    cfg.write_text("[defaults]\ncallbacks_enabled = lockstep.release.ledger\n" + settings)
    proc = release("2.1.0")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-8000:]
    assert "lockstep: wave" in out, out[-8000:]  # the installed ledger callback
    [path] = [os.path.join(tmp_path, "ledger", n) for n in os.listdir(tmp_path / "ledger")]
    last = ledger.read_records(path)[-1]
    assert last["event"] == "release_finished" and last["status"] == "succeeded", last
    assert_whole_fleet_on(fleet, "2.1.0")

    # A halted release from the installed copy rolls back like the repository's.
    stale_pidfile(fleet, "h2")
    proc = release("2.2.0")
    assert proc.returncode != 0 and "lockstep rolled_back" in proc.stdout + proc.stderr, proc.stdout[-8000:]
    assert_whole_fleet_on(fleet, "2.1.0")

    # The operator's command, from the installed collection.
    lockstep = str(tmp / "collections" / "ansible_collections" / "lockstep" / "release" / "bin" / "lockstep")
    verified = subprocess.run([lockstep, "ledger", "verify", str(tmp_path / "ledger")], cwd=str(tmp_path), env=env,
                              capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0 and "OK" in verified.stdout, verified.stdout + verified.stderr


def pinned(name):
    for line in open(os.path.join(REPO, "requirements.txt")):
        if line.startswith(name + "=="):
            return line.strip()
    raise AssertionError("%s is not pinned in requirements.txt" % name)


def test_ansible_builder_creates_the_execution_environment_build_context(built, tmp_path):
    tmp, tarball = built
    definition = yaml.safe_load(open(os.path.join(REPO, "execution-environment.yml")))
    assert definition["version"] == 3
    deps = definition["dependencies"]
    # One place pins the versions: the EE installs what requirements.txt pins.
    assert deps["ansible_core"]["package_pip"] == pinned("ansible-core")
    assert deps["ansible_runner"]["package_pip"] == pinned("ansible-runner")
    project = tmp_path / "project"
    shutil.copytree(REPO, project, ignore=shutil.ignore_patterns(".venv", ".fleet", ".git", "artifacts", "dist",
                                                                 ".lockstep", "collections", ".ansible", "*_cache"))
    (project / "dist").mkdir()
    shutil.copy(tarball, project / "dist")
    env = clean_env(tmp)
    run([os.path.join(VENV_BIN, "ansible-builder"), "create", "-f", "execution-environment.yml", "-c",
         str(tmp_path / "context"), "--output-filename", "Containerfile"], cwd=str(project), env=env)
    context = tmp_path / "context"
    containerfile = (context / "Containerfile").read_text()
    assert 'ARG ANSIBLE_INSTALL_REFS="%s %s"' % (pinned("ansible-core"), pinned("ansible-runner")) in containerfile
    assert "ansible-galaxy collection install" in containerfile and "-r requirements.yml" in containerfile
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    [collection] = requirements["collections"]
    assert collection == {"name": "collections/" + TARBALL, "type": "file"}, requirements
    # The galaxy stage runs in /build = _build: the tarball it installs is there, byte for byte the built one.
    assert (context / "_build" / "collections" / TARBALL).read_bytes() == tarball.read_bytes()
    assert "openssh-clients [platform:rpm]" in (context / "_build" / "bindep.txt").read_text()

    # What ansible-builder's introspection (run inside the image on the installed collections) finds: the
    # collection's own meta/execution-environment.yml, read here from the installed copy.
    out = run([os.path.join(VENV_BIN, "ansible-builder"), "introspect", "--sanitize",
               str(tmp / "collections")], cwd=str(tmp_path), env=env)
    assert "openssh-clients [platform:rpm]  # from collection lockstep.release" in out, out
    assert "openssh-client [platform:dpkg]  # from collection lockstep.release" in out, out
    # The metrics watch imports prometheus_client on the controller: without it every release halts at watch.
    assert "prometheus-client>=0.20  # from collection lockstep.release" in out, out
