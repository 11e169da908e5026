"""`ansible-test sanity`, the check Galaxy and certified content run, on the collection as it is installed, with its
full default test list (`ansible-test sanity --list-tests`: no `--test` selection).

ansible-test refuses a tree that is not physically under ansible_collections/NS/NAME/ (the repository's
collections/ symlink is resolved), so the collection is built and installed into a temporary path and tested there:
the tests see what the tarball ships (galaxy.yml build_ignore), not the repository's test bench.

KNOWN_ERRORS are the errors kept on purpose, each with its reason: the test writes them into the installed copy as
ansible-test's ignore file, so every other error fails the test, and ansible-test's own `ignores` test fails on an
entry no longer needed (then delete the entry). They are kept here,
not in tests/sanity/ignore-X.Y.txt, because ansible-lint's production profile (`sanity[cannot-ignore]`, the
certification rule) permits almost none of them there: the tarball ships no ignore file, so certification would
still see them, as it should until they are fixed.

Its per-test virtual environments bootstrap pip with a script from a CI file server this machine cannot reach:
tests/sanity/get_pip_offline.py stands in for it (ensurepip, then pip from the package index). The environments are
kept in ~/.cache/lockstep-ansible-test, so only the first run on a machine installs the tests' requirements (from the
package index, the one network access). With that, every default test runs here, none needs a container or another
download: SKIP_TESTS is empty. A test that cannot run goes there, with the reason, as `--skip-test NAME`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(REPO, ".venv", "bin")
HOME = os.path.join(os.path.expanduser("~"), ".cache", "lockstep-ansible-test")

# Default tests that cannot run on this machine: {name: why}. None today (see the module's docstring).
SKIP_TESTS: dict[str, str] = {}

# (path, test[:code], why) for ansible-core 2.19's ansible-test. Paths as installed.
KNOWN_ERRORS = [
    ("bin/lockstep", "shebang",
     "by design: the operator's command (bin/lockstep ledger|audit|lock|package), an executable, not a module"),
    ("plugins/modules/deploy.py", "replace-urlopen",
     "the health probe on the host is plain urllib on purpose: open_url would bring Ansible's proxy and TLS "
     "settings to a probe of the service's own loopback URL"),
    ("plugins/module_utils/release_state.py", "replace-urlopen", "the version probe: the same reason"),
] + [
    ("plugins/modules/%s.py" % name, "validate-modules:invalid-documentation",
     'author "lockstep contributors" (plugins/doc_fragments) has no "(@github-handle)": the project has none')
    for name in ("audit", "deploy", "gate", "haproxy", "input", "lock", "outcome", "plan", "preflight", "run",
                 "run_record", "smoke", "state", "watch")
] + [
    ("plugins/callback/ledger.py", "validate-modules:invalid-documentation",
     "its own DOCUMENTATION's author, as above"),
]


def pip_bootstrap_version():
    """The pip version ansible-test bootstraps (its bootstrap script's cache name carries it)."""
    from ansible_test._internal import python_requirements

    source = open(python_requirements.__file__).read()
    return source.split("pip='", 1)[1].split("'", 1)[0]


def ansible_core_minor():
    from ansible.release import __version__

    return ".".join(__version__.split(".")[:2])


def test_ansible_test_sanity_passes_on_the_installed_collection(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "LOCKSTEP_", "MOLECULE_"))}
    env.update({"PATH": VENV_BIN + os.pathsep + env.get("PATH", ""), "HOME": HOME})
    cache = os.path.join(HOME, ".ansible", "test", "cache")
    os.makedirs(cache, exist_ok=True)
    shutil.copy(os.path.join(REPO, "tests", "sanity", "get_pip_offline.py"),
                os.path.join(cache, "get_pip_%s.py" % pip_bootstrap_version().replace(".", "_")))

    def run(cmd, cwd, timeout=1800):
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
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
    if ansible_core_minor() == "2.19":
        (collection / "tests" / "sanity").mkdir(parents=True)
        (collection / "tests" / "sanity" / "ignore-2.19.txt").write_text(
            "".join("%s %s  # %s\n" % known for known in KNOWN_ERRORS))

    ansible_test = os.path.join(VENV_BIN, "ansible-test")
    listed = run([ansible_test, "sanity", "--list-tests"], cwd=str(collection), timeout=300)
    tests = [line for line in listed.splitlines() if re.fullmatch(r"[a-z0-9-]+", line)]
    assert "validate-modules" in tests and "pylint" in tests, listed
    assert set(SKIP_TESTS) <= set(tests), SKIP_TESTS
    out = run([ansible_test, "sanity", "--python", "3.11", "--requirements"]
              + ["--skip-test=" + name for name in sorted(SKIP_TESTS)], cwd=str(collection))
    for name in tests:
        if name not in SKIP_TESTS:
            assert re.search(r'Running sanity test "%s"' % re.escape(name), out), (name, out[-8000:])
