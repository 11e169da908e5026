"""lockstep.release.haproxy's step, both ways it runs, against a real private HAProxy: in the worker when the load
balancer host is the controller itself (the local connection, no become: no module process), and as a module
everywhere else. Here "everywhere else" is the same host through become to another user, which must run as that
user, never in the worker as the controller's user (make test runs as root, whom sudo asks for no password).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

from conftest import _clean_env

from ansible_collections.lockstep.release.plugins.module_utils.haproxy_api import servers

# Another user, who may neither run this virtualenv's Python nor reach root's socket: the module fails as that user;
# in the worker, as root, the step would have taken h3 out.
AS_NOBODY = {"become": True, "become_method": "sudo", "become_user": "nobody"}


def step(haproxy, **args):
    return {"lockstep.release.haproxy": dict(socket=haproxy, backend="b", **args)}


def test_the_step_runs_in_the_worker_on_the_controller_and_as_a_module_as_the_become_user(run_play, haproxy):
    run_play(
        # Here: drained, confirmed by HAProxy's answer.
        (step(haproxy, servers=["h1"], state="drained"),
         ["out is changed", "out.serving == ['h2', 'h3']", "out.servers.h1.status == 'DRAIN'"]),
        (step(haproxy, servers=["h1"], state="ready"), ["out is changed", "out.serving == ['h1', 'h2', 'h3']"]),
        # Check mode here changes nothing.
        (dict(step(haproxy, servers=["h2"], state="maint"), check_mode=True),
         ["out is not changed", "out.serving == ['h1', 'h2', 'h3']"]),
        # A failure here is the module's: failed with halt, reported without.
        (step(haproxy, servers=["h9"], state="drained"),
         ["out is failed", "out.msg == 'backend b has no server named h9'"]),
        (step(haproxy, servers=["h9"], state="drained", halt=False),
         ["out is not failed", "out.lockstep_lb_error == 'backend b has no server named h9'"]),
        # A bad argument is refused as the module would refuse it.
        (step(haproxy, servers=["h1"], state="gone"), ["out is failed", "'gone' in out.msg"]),
        # Through become: the module, as that user; as root, it does the step.
        (dict(step(haproxy, servers=["h3"], state="maint"), **AS_NOBODY), ["out is failed"]),
        (dict(step(haproxy, servers=["h3"], state="drained"), become=True, become_method="sudo"),
         ["out is changed", "out.serving == ['h1', 'h2']"]),
        (step(haproxy, servers=["h3"], state="ready"), ["out is changed", "out.serving == ['h1', 'h2', 'h3']"]),
    )
    assert all(s["serving"] for s in servers(haproxy, "b").values())


def test_a_task_selection_is_refused_where_the_step_runs_in_the_worker(haproxy, tmp_path):
    playbook = tmp_path / "selected.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - lockstep.release.haproxy: {socket: %s, backend: b, servers: [h1], state: maint}\n"
        "      tags: [always]\n" % haproxy)
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c",
                           "local", "-e", "ansible_python_interpreter=%s" % sys.executable, str(playbook), "--tags",
                           "deploy"], capture_output=True, text=True, timeout=120, cwd=str(tmp_path),
                          env=_clean_env(str(tmp_path)))
    assert proc.returncode == 2 and "would run part of the release without its gates" in proc.stdout, proc.stdout
    assert all(s["serving"] for s in servers(haproxy, "b").values())


def test_the_module_does_the_step_and_fails_as_the_step_does(run_module, haproxy):
    rc, out = run_module("haproxy", {"socket": haproxy, "backend": "b", "servers": ["h2"], "state": "drained"})
    assert rc == 0 and out["changed"] and out["serving"] == ["h1", "h3"], out
    rc, out = run_module("haproxy", {"socket": haproxy, "backend": "b", "servers": ["h9"], "state": "ready"})
    assert rc == 1 and out["failed"] and out["msg"] == "backend b has no server named h9", out
    rc, out = run_module("haproxy", {"socket": haproxy, "backend": "b", "servers": ["h2"], "state": "ready",
                                     "halt": False})
    assert rc == 0 and not out.get("failed") and out["serving"] == ["h1", "h2", "h3"], out


def test_a_drain_waits_for_the_open_sessions_and_times_out_as_a_step_not_done(tmp_path):
    """A server with a request in flight (its answer held back) is drained only once that session ends; a timeout
    shorter than the session is a step not done, reported with halt false."""
    from ansible_collections.lockstep.release.plugins.module_utils.haproxy_step import step as run_step

    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen(8)
    port = held.getsockname()[1]
    sock = tmp_path / "admin.sock"
    (tmp_path / "haproxy.cfg").write_text(
        "global\n    stats socket %s mode 600 level admin\ndefaults\n    mode tcp\n    timeout connect 1s\n"
        "    timeout client 10s\n    timeout server 10s\nfrontend f\n    bind unix@%s/front.sock\n"
        "    default_backend b\nbackend b\n    server h1 127.0.0.1:%d\n" % (sock, tmp_path, port))
    proc = subprocess.Popen(["haproxy", "-f", str(tmp_path / "haproxy.cfg")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    client = socket.socket(socket.AF_UNIX)
    try:
        deadline = time.monotonic() + 5
        while not sock.exists():
            assert time.monotonic() < deadline, "haproxy did not start"
            time.sleep(0.05)
        client.connect(str(tmp_path / "front.sock"))
        client.sendall(b"hello")
        server_side, _ = held.accept()  # the session is open through HAProxy, and stays open
        args = dict(socket=str(sock), backend="b", servers=["h1"], state="drained", wait=True, halt=False,
                    record=None, run_id=None, version=None)
        short = run_step(dict(args, timeout=0.5), False)
        assert short["lockstep_lb_error"] == "HAProxy servers h1 not drained after 0.5s", short
        threading.Timer(1.0, server_side.close).start()
        started = time.monotonic()
        done = run_step(dict(args, timeout=10), False)
        assert "lockstep_lb_error" not in done and done["servers"]["h1"]["scur"] == 0, done
        assert time.monotonic() - started >= 0.8, done
    finally:
        client.close()
        held.close()
        proc.terminate()
        proc.wait(timeout=5)
