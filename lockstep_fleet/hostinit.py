#!/usr/bin/env python3
"""PID 1 of one fleet host (runs inside its own mount/UTS/PID namespaces).

Sets the hostname and the host's private mounts, then keeps sshd running: it reaps every orphan, restarts sshd
when it dies (unless ``<host dir>/sshd.stopped`` exists; SIGUSR1 = look again now) and exits on SIGTERM, which
makes the kernel kill everything else in the host. Stdlib only, no imports from the repository.
"""

import os
import signal
import socket
import subprocess
import sys
import time

WAKE = {signal.SIGCHLD, signal.SIGUSR1}
STOP = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def log(msg):
    print("{} init: {}".format(time.strftime("%H:%M:%S"), msg), flush=True)


def setup(name, hostdir):
    socket.sethostname(name)
    for src, dst in (("srv", "/srv"), ("root", "/root"), ("log", "/var/log")):
        subprocess.run(["mount", "--bind", os.path.join(hostdir, src), dst], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=16m", "tmpfs", "/run"], check=True)
    os.mkdir("/run/sshd", 0o755)


def spawn(argv, logfile):
    pid = os.fork()
    if pid == 0:
        try:
            signal.pthread_sigmask(signal.SIG_SETMASK, [])
            os.setsid()
            fd = os.open(logfile, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    return pid


def shutdown():
    try:
        os.kill(-1, signal.SIGTERM)  # every other process of this host
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                time.sleep(0.02)
        except ChildProcessError:
            return


def main(name, hostdir):
    signal.pthread_sigmask(signal.SIG_BLOCK, WAKE | STOP)
    setup(name, hostdir)
    sshd_argv = ["/usr/sbin/sshd", "-D", "-f", os.path.join(hostdir, "sshd_config"), "-E", "/var/log/sshd.log"]
    stopflag = os.path.join(hostdir, "sshd.stopped")
    sshd, last_start = None, 0.0
    log(f"up as {name}")
    while True:
        while True:  # reap every child and orphan
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid == sshd:
                log(f"sshd {pid} exited (status {status})")
                sshd = None
        if sshd is None and not os.path.exists(stopflag) and time.monotonic() - last_start >= 1.0:
            sshd, last_start = spawn(sshd_argv, os.path.join(hostdir, "log", "sshd.out")), time.monotonic()
            log(f"started sshd {sshd}")
        info = signal.sigtimedwait(WAKE | STOP, 0.25 if sshd is None else 5.0)
        if info is not None and info.si_signo in STOP:
            log(f"signal {info.si_signo}: shutting down")
            shutdown()
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
