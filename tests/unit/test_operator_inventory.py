"""bin/lockstep lock show|break and the guard read the inventory as ansible-core reads it (INI, YAML, group_vars/ and
host_vars/ files and directories, vaulted values, inventory plugins, the roles' defaults) and the lock where the
release keeps it: ``lockstep_lock_path`` on ``lockstep_lock_host``.

A host that is not the controller is played by ``lbhost``, reached with the connection plugin ``elsewhere``
(Ansible's local connection under another name, in the test's own plugin directory): lockstep cannot tell it from a
remote host, so it must read and break the lock through ``ansible`` itself, yet no SSH server is needed. No test
touches the local fleet.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import socket
import subprocess
import sys
import time

import pytest

from ansible_collections.lockstep.release.plugins.module_utils import haproxy_api

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)

ELSEWHERE = '''from __future__ import annotations

DOCUMENTATION = """
name: elsewhere
short_description: Ansible's local connection under another name
description:
  - For lockstep's tests, a host it cannot tell from a remote one, whose tasks still run on this machine.
author: lockstep
options: {}
"""

from ansible.plugins.connection.local import Connection as _Local


class Connection(_Local):
    transport = "elsewhere"
'''
RUN_ID = "20260801T093000-4711-2.2.0"


@pytest.fixture
def env(tmp_path):
    """bin/lockstep's environment: this virtualenv, an ansible.cfg of the test's own (not the repository's: its
    inventory is the fleet), the connection plugin ``elsewhere``, the ledger in the test's directory."""
    plugins = tmp_path / "connection_plugins"
    plugins.mkdir()
    (plugins / "elsewhere.py").write_text(ELSEWHERE)
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text("[defaults]\nretry_files_enabled = False\n")
    e = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "LOCKSTEP_"))}
    # lbhost's Python logs each module Ansible runs there: proof that lockstep went through Ansible.
    wrapper = tmp_path / "lbhost-python"
    wrapper.write_text("#!/bin/sh\necho \"$@\" >> %s\nexec %s \"$@\"\n" % (tmp_path / "lbhost-modules.log",
                                                                      sys.executable))
    wrapper.chmod(0o755)
    e.update(PATH=VENV_BIN + os.pathsep + e.get("PATH", ""), ANSIBLE_CONFIG=str(cfg),
             ANSIBLE_CONNECTION_PLUGINS=str(plugins), ANSIBLE_HOME=str(tmp_path / "ansible-home"),
             ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"), ANSIBLE_NOCOLOR="1",
             LOCKSTEP_LEDGER_DIR=str(tmp_path / "ledger"), LOCKSTEP_LEDGER_ANCHOR_DIR=str(tmp_path / "anchors"))
    return e


def lbhost(tmp_path):
    """lbhost's host_vars: "another machine", that lockstep reaches only through Ansible."""
    return json.dumps({"ansible_connection": "elsewhere",
                       "ansible_python_interpreter": str(tmp_path / "lbhost-python")})


def modules_run_on_lbhost(tmp_path):
    log = tmp_path / "lbhost-modules.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def lockstep(env, cwd, *args):
    return subprocess.run([os.path.join(REPO, "bin", "lockstep"), *args], env=env, cwd=str(cwd),
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def write_lock(path, age=7510, controller="awx-job-4711-6k2p9"):
    """A lock as lockstep.release.lock writes it, taken ``age`` seconds ago from a controller that is gone (an AWX
    job's container: its name is no host here)."""
    lock = {"run_id": RUN_ID, "user": "awx", "controller": controller, "pid": 4711, "version": "2.2.0",
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - age))}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(lock, f)
    return lock


def yaml_inventory(tmp_path, lock_path, lb=True):
    """A YAML inventory directory: hosts.yml, group_vars/all/ a directory of two files, host_vars/lbhost.yml."""
    inv = tmp_path / "inventory"
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "host_vars").mkdir()
    children = {"app": {"hosts": {"h1": {"lockstep_service_url": "http://127.0.0.1:9"},
                                  "h2": {"lockstep_service_url": "http://127.0.0.1:9"}}}}
    if lb:
        children["lb"] = {"hosts": {"lbhost": None}}
    (inv / "hosts.yml").write_text(json.dumps({"all": {"children": children}}))
    (inv / "group_vars" / "all" / "lock.yml").write_text("lockstep_lock_path: %s\n" % json.dumps(str(lock_path)))
    (inv / "group_vars" / "all" / "service.yml").write_text("lockstep_base: /srv/app\n")
    (inv / "host_vars" / "lbhost.yml").write_text(lbhost(tmp_path))
    return inv


def assert_one_line_error(out, *words):
    assert out.returncode == 2, out
    assert "Traceback" not in out.stderr, out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("lockstep: "), out.stderr
    for word in words:
        assert word in last, (word, out.stderr)


def test_ini_inventory_without_a_load_balancer_keeps_the_lock_on_the_controller(tmp_path, env):
    lock_path = tmp_path / "state" / "app.lock"
    (tmp_path / "hosts.ini").write_text("[app]\nh1 lockstep_service_url=http://127.0.0.1:9\n\n[all:vars]\n"
                                        "lockstep_lock_path=%s\n" % lock_path)
    free = lockstep(env, tmp_path, "lock", "show", "-i", "hosts.ini")
    assert free.returncode == 0 and free.stdout.splitlines()[0] == "%s: no release lock held" % lock_path, free
    write_lock(str(lock_path))
    held = lockstep(env, tmp_path, "lock", "show", "-i", "hosts.ini")
    assert held.returncode == 0, held
    # On the controller: read in process, no host named.
    assert held.stdout.startswith("release lock %s held by:\n" % lock_path), held.stdout
    assert RUN_ID in held.stdout and "held for     2h 5m" in held.stdout, held.stdout
    assert "%s lock break -i hosts.ini --run-id %s" % (os.path.join(REPO, "bin", "lockstep"), RUN_ID) in held.stdout


def test_ansible_inventory_from_ansible_cfg_and_the_role_default_path(tmp_path, env):
    # No -i: ansible.cfg's inventory. No lockstep_lock_path: the role default, /var/lib/lockstep/<group>.lock.
    (tmp_path / "hosts.ini").write_text("[web]\nw1 lockstep_service_url=http://127.0.0.1:9\n\n[all:vars]\n"
                                        "lockstep_group=web\n")
    with open(env["ANSIBLE_CONFIG"], "a") as f:
        f.write("inventory = %s\n" % (tmp_path / "hosts.ini"))
    out = lockstep(env, tmp_path, "lock", "show")
    assert out.returncode == 0, out
    assert out.stdout.splitlines()[0] == "/var/lib/lockstep/web.lock: no release lock held", out.stdout


def test_the_default_lock_host_is_the_load_balancer_and_is_read_through_ansible(tmp_path, env):
    # No lockstep_lock_path, no lockstep_lock_host: the role defaults put the lock on the lb group's first host.
    inv = yaml_inventory(tmp_path, "unused")
    (inv / "group_vars" / "all" / "lock.yml").unlink()
    out = lockstep(env, tmp_path, "lock", "break", "-i", str(inv), "--run-id", RUN_ID)
    assert out.returncode == 0, out
    assert out.stdout.splitlines() == ["/var/lib/lockstep/app.lock on lbhost: no release lock held, nothing to break"
                                       ], out.stdout
    assert modules_run_on_lbhost(tmp_path) == 1
    assert not (tmp_path / "ledger").exists()


def test_a_lock_held_on_another_host_is_shown_with_its_run_age_and_the_command_that_breaks_it(tmp_path, env):
    lock_path = tmp_path / "lbhost" / "release.lock"
    inv = yaml_inventory(tmp_path, lock_path)
    lock = write_lock(str(lock_path))
    outcome = {"run_id": "20260731T080000-99-2.1.0", "status": "succeeded", "serving": "2.1.0", "version": "2.1.0",
               "finished": "2026-07-31T08:10:00Z"}
    (tmp_path / "lbhost" / "release.lock.outcome").write_text(json.dumps(outcome))
    held = lockstep(env, tmp_path, "lock", "show", "-i", str(inv))
    assert held.returncode == 0, held
    assert modules_run_on_lbhost(tmp_path) == 2  # the lock and its outcome, read on lbhost
    lines = held.stdout.splitlines()
    assert lines[0] == "release lock %s on lbhost held by:" % lock_path, held.stdout
    for row in ("run id       %s" % RUN_ID, "user         awx", "controller   awx-job-4711-6k2p9",
                "pid          4711", "version      2.2.0", "since        %s" % lock["started"], "held for     2h 5m",
                "pid alive    unknown (taken on another controller, awx-job-4711-6k2p9",
                "last outcome run 20260731T080000-99-2.1.0 succeeded, serving 2.1.0 (finished 2026-07-31T08:10:00Z)"):
        assert any(line.strip().startswith(row) for line in lines), (row, held.stdout)
    command = lines[-1].strip()
    assert command == shlex.join([os.path.join(REPO, "bin", "lockstep"), "lock", "break", "-i", str(inv),
                                  "--run-id", RUN_ID]), held.stdout
    # A wrong run id changes nothing; the command shown breaks it, through Ansible, recorded in the ledger.
    wrong = lockstep(env, tmp_path, "lock", "break", "-i", str(inv), "--run-id", RUN_ID + "x")
    assert wrong.returncode == 1 and "lock NOT broken" in wrong.stderr and lock_path.exists(), wrong
    broken = subprocess.run(shlex.split(command) + ["--reason", "AWX job 4711 is gone"], env=env, cwd=str(tmp_path),
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert broken.returncode == 0, broken
    assert "release lock %s on lbhost of run %s broken" % (lock_path, RUN_ID) in broken.stdout, broken
    assert not lock_path.exists()
    assert modules_run_on_lbhost(tmp_path) == 6  # the wrong run id's read; the break's read, re-read and removal
    (name,) = os.listdir(tmp_path / "ledger")
    with open(tmp_path / "ledger" / name) as f:
        (record,) = [json.loads(line) for line in f]
    assert record["event"] == "lock_broken" and record["host"] == "lbhost" and record["lock"] == lock, record
    assert record["path"] == str(lock_path) and record["reason"] == "AWX job 4711 is gone", record
    after = lockstep(env, tmp_path, "lock", "show", "-i", str(inv))
    assert after.returncode == 0 and after.stdout.splitlines()[0] == "%s on lbhost: no release lock held" % (
        lock_path), after
    assert "serving 2.1.0" in after.stdout, after.stdout


def test_host_vars_and_group_vars_take_ansibles_precedence(tmp_path, env):
    # group_vars/all/ names one lock, host_vars of the first app host another: the host's wins, as in the release
    # (its preflight templates the lock path on the play's first host).
    real = tmp_path / "real" / "app.lock"
    inv = yaml_inventory(tmp_path, tmp_path / "decoy" / "app.lock", lb=False)
    (inv / "host_vars" / "h1.yml").write_text("lockstep_lock_path: %s\n" % json.dumps(str(real)))
    write_lock(str(real))
    out = lockstep(env, tmp_path, "lock", "show", "-i", str(inv))
    assert out.returncode == 0 and out.stdout.startswith("release lock %s held by:" % real), out
    assert modules_run_on_lbhost(tmp_path) == 0  # on the controller, read in process


def test_an_inventory_plugin_is_read(tmp_path, env):
    # ansible.builtin.generator (through the auto plugin): hosts app1 and lb1 exist only once Ansible runs it.
    lock_path = tmp_path / "lb1" / "app.lock"
    inv = tmp_path / "inventory"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "host_vars").mkdir()
    (inv / "fleet.yml").write_text("plugin: ansible.builtin.generator\nhosts:\n  name: '{{ tier }}1'\n  parents:\n"
                                   "    - name: '{{ tier }}'\nlayers:\n  tier: [app, lb]\n")
    (inv / "group_vars" / "all.yml").write_text("lockstep_lock_path: %s\n" % json.dumps(str(lock_path)))
    (inv / "host_vars" / "lb1.yml").write_text(lbhost(tmp_path))
    write_lock(str(lock_path))
    out = lockstep(env, tmp_path, "lock", "show", "-i", str(inv))
    assert out.returncode == 0 and out.stdout.startswith("release lock %s on lb1 held by:" % lock_path), out
    assert modules_run_on_lbhost(tmp_path) == 2


def encrypt(tmp_path, env, value, name):
    (tmp_path / "vault-pass").write_text("correct horse battery staple\n")
    out = subprocess.run([os.path.join(VENV_BIN, "ansible-vault"), "encrypt_string", "--vault-password-file",
                          str(tmp_path / "vault-pass"), "--name", name, value], env=env, cwd=str(tmp_path),
                         capture_output=True, text=True, timeout=60, check=True)
    assert "$ANSIBLE_VAULT;" in out.stdout, out
    return out.stdout


def test_a_vaulted_lock_path(tmp_path, env):
    lock_path = tmp_path / "vaulted" / "app.lock"
    inv = yaml_inventory(tmp_path, "unused", lb=False)
    (inv / "group_vars" / "all" / "lock.yml").write_text(encrypt(tmp_path, env, str(lock_path), "lockstep_lock_path"))
    write_lock(str(lock_path))
    for how in (["--vault-password-file", str(tmp_path / "vault-pass")], []):
        run_env = dict(env, ANSIBLE_VAULT_PASSWORD_FILE=str(tmp_path / "vault-pass")) if not how else env
        out = lockstep(run_env, tmp_path, "lock", "show", "-i", str(inv), *how)
        assert out.returncode == 0, (how, out)
        assert out.stdout.startswith("release lock %s held by:" % lock_path), (how, out.stdout)
        if how:  # the command that breaks it carries the vault option it was shown with
            assert "--vault-password-file %s --run-id %s" % (tmp_path / "vault-pass", RUN_ID) in out.stdout, out
    no_secret = lockstep(env, tmp_path, "lock", "show", "-i", str(inv))
    assert_one_line_error(no_secret, "vault")


def test_unreadable_inventories_are_one_line_errors(tmp_path, env):
    assert_one_line_error(lockstep(env, tmp_path, "lock", "show", "-i", "nowhere.yml"),
                          "inventory nowhere.yml: no such file or directory")
    (tmp_path / "garbage.yml").write_text("all: [this is: not, an inventory\n")
    assert_one_line_error(lockstep(env, tmp_path, "lock", "show", "-i", "garbage.yml"), "no host")
    (tmp_path / "hosts.ini").write_text("[app]\nh1\n\n[all:vars]\nlockstep_lock_host=gone\n")
    assert_one_line_error(lockstep(env, tmp_path, "lock", "break", "-i", "hosts.ini", "--run-id", "x"),
                          "host gone is not in inventory")
    (tmp_path / "templated.ini").write_text("[app]\nh1\n\n[all:vars]\nlockstep_lock_path={{ no_such_var }}/x\n")
    assert_one_line_error(lockstep(env, tmp_path, "lock", "show", "-i", "templated.ini"), "lockstep_lock_path",
                          "no_such_var")
    assert_one_line_error(lockstep(env, tmp_path, "audit", "--http", "-i", "nowhere.yml"), "no such file")


def test_an_unreachable_lock_host_is_said_not_taken_for_a_free_lock(tmp_path, env):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "hosts.ini").write_text(
        "[app]\nh1\n[lb]\nlbhost ansible_host=127.0.0.1 ansible_port=%d ansible_ssh_common_args='-o "
        "ConnectTimeout=3'\n" % port)
    out = lockstep(env, tmp_path, "lock", "show", "-i", "hosts.ini")
    assert out.returncode == 1 and "no release lock held" not in out.stdout, out
    assert "cannot read the release lock /var/lib/lockstep/app.lock on lbhost" in out.stderr, out
    assert "unreachable" in out.stderr and "Traceback" not in out.stderr, out


# The guard's event source, in this process, with the lock and HAProxy on lbhost.
SOURCE = os.path.join(REPO, "extensions", "eda", "plugins", "event_source", "lockstep_guard.py")
spec = importlib.util.spec_from_file_location("lockstep_guard_remote", SOURCE)
guard = importlib.util.module_from_spec(spec)
spec.loader.exec_module(guard)


def test_the_guard_reads_the_lock_and_haproxy_through_the_hosts_that_keep_them(tmp_path, env, monkeypatch,
                                                                               http_service, haproxy):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    urls = {h: http_service({"/version": (200, {"version": v, "pid": 1})}).url
            for h, v in (("h1", "2.1.0"), ("h2", "1.0.0"), ("h3", "2.1.0"))}
    lock_path = tmp_path / "lbhost" / "release.lock"
    inv = tmp_path / "inventory"
    (inv / "host_vars").mkdir(parents=True)
    (inv / "hosts.yml").write_text(json.dumps({"all": {
        "vars": {"lockstep_lock_path": str(lock_path), "lockstep_haproxy_socket": haproxy,
                 "lockstep_haproxy_backend": "b"},
        "children": {"app": {"hosts": {h: {"lockstep_service_url": u} for h, u in urls.items()}},
                     "lb": {"hosts": {"lbhost": None}}}}}))
    (inv / "host_vars" / "lbhost.yml").write_text(lbhost(tmp_path))
    g = guard.Guard({"inventory": str(inv), "ledger_dir": str(tmp_path / "ledger")})
    assert g.place.remote and g.place.host == "lbhost" and g.lb_host == "lbhost"
    write_lock(str(lock_path))
    held, events = g.poll()
    assert held["run_id"] == RUN_ID and events == [], (held, events)
    assert modules_run_on_lbhost(tmp_path) == 3  # the lock, its outcome and HAProxy, on lbhost
    os.unlink(lock_path)
    # h2 runs the odd version, but HAProxy (asked on lbhost) sends it nothing: it is not judged.
    haproxy_api.set_states(haproxy, "b", ["h2"], "drain")
    held, events = g.poll()
    assert held is None and events == [], events
    haproxy_api.set_states(haproxy, "b", ["h2"], "ready")
    held, events = g.poll()
    assert held is None and [e["lockstep_guard"]["host"] for e in events] == ["h2"], events
    # An unreachable lock host is no free lock: the guard acts on nothing.
    (inv / "host_vars" / "lbhost.yml").write_text(json.dumps({"ansible_connection": "ssh", "ansible_host": "127.0.0.1",
                                                              "ansible_port": 1}))
    g = guard.Guard({"inventory": str(inv), "ledger_dir": str(tmp_path / "ledger")})
    held, events = g.poll()
    assert "unreadable" in held and "unreachable" in held["unreadable"] and events == [], (held, events)
