"""`ansible-test sanity`, the check Galaxy and certified content run, on the collection as it is installed.

ansible-test refuses a tree that is not physically under ansible_collections/NS/NAME/ (the repository's
collections/ symlink is resolved), so the collection is built and installed into a temporary path and tested there.
Its per-test virtual environments bootstrap pip with a script from a CI file server this machine cannot reach:
tests/sanity/get_pip_offline.py stands in for it (ensurepip, then pip from the package index). The environments
are kept in ~/.cache/lockstep-ansible-test, so only the first run on a machine installs the tests' requirements.

SANITY_TESTS are the tests that pass today. Not run yet, each needing changes in files outside this test's scope
(counts on ansible-core 2.19.14): validate-modules (63: DOCUMENTATION author format and attribute
descriptions of every module and the callback), pylint (98: disallowed names, subprocess.run without check, in
plugins, tests, bench and bin), pep8 (83: bin/demo is a shell script without an extension, some continuation
lines), compile (bin/demo again), shebang (10: bench/ and tests scripts), replace-urlopen (3: plugin_utils/http,
audit and the ledger use urllib directly).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(REPO, ".venv", "bin")
HOME = os.path.join(os.path.expanduser("~"), ".cache", "lockstep-ansible-test")

SANITY_TESTS = [
    "action-plugin-docs", "ansible-doc", "changelog", "empty-init", "ignores", "import", "line-endings", "no-assert",
    "no-get-exception", "no-illegal-filenames", "no-smart-quotes", "pslint", "runtime-metadata", "shellcheck",
    "symlinks", "use-argspec-type-path", "use-compat-six", "yamllint",
]


def pip_bootstrap_version():
    """The pip version ansible-test bootstraps (its bootstrap script's cache name carries it)."""
    from ansible_test._internal import python_requirements

    source = open(python_requirements.__file__).read()
    return source.split("pip='", 1)[1].split("'", 1)[0]


def test_ansible_test_sanity_passes_on_the_installed_collection(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "LOCKSTEP_", "MOLECULE_"))}
    env.update({"PATH": VENV_BIN + os.pathsep + env.get("PATH", ""), "HOME": HOME})
    cache = os.path.join(HOME, ".ansible", "test", "cache")
    os.makedirs(cache, exist_ok=True)
    shutil.copy(os.path.join(REPO, "tests", "sanity", "get_pip_offline.py"),
                os.path.join(cache, "get_pip_%s.py" % pip_bootstrap_version().replace(".", "_")))

    def run(cmd, cwd):
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
                              stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, (cmd, proc.stdout[-8000:] + proc.stderr[-8000:])
        return proc.stdout + proc.stderr

    galaxy = yaml.safe_load(open(os.path.join(REPO, "galaxy.yml")))
    run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path), REPO],
        cwd=str(tmp_path))
    tarball = tmp_path / ("%s-%s-%s.tar.gz" % (galaxy["namespace"], galaxy["name"], galaxy["version"]))
    run([os.path.join(VENV_BIN, "ansible-galaxy"), "collection", "install", "--offline", "-p", str(tmp_path),
         str(tarball)], cwd=str(tmp_path))
    collection = tmp_path / "ansible_collections" / galaxy["namespace"] / galaxy["name"]
    out = run([os.path.join(VENV_BIN, "ansible-test"), "sanity", "--python", "3.11", "--requirements"]
              + ["--test=" + t for t in SANITY_TESTS], cwd=str(collection))
    for name in SANITY_TESTS:
        assert 'Running sanity test "%s"' % name in out, (name, out[-8000:])
