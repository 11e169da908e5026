"""The local test fleet: namespace hosts with real sshd, HAProxy and the exchange simulator (docs/fleet.md)."""

import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from . import render, traffic

HERE = os.path.dirname(os.path.abspath(__file__))



def _ensure_user(name, system=False):
    """The machine's user ``name`` (fleet hosts share /etc and /home with it), made if missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name] if system else \
            ["useradd", "--create-home", "--shell", "/bin/sh", name]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        return pwd.getpwnam(name)

class FleetError(RuntimeError):
    pass


def pid_alive(pid):
    """True if ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def children(ppid):
    """Live PIDs (controller view) whose parent is ``ppid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == ppid and fields[0] != "Z":
                found.append(int(entry))
    return sorted(found)


def namespace_procs(init_pid, name=None):
    """Live PIDs (controller view) in the PID namespace of ``init_pid``, other than itself, optionally only those
    with command name ``name``, as ``{pid: cmdline}``."""
    try:
        ns = os.readlink(f"/proc/{init_pid}/ns/pid")
    except OSError:
        return {}
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == init_pid:
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != ns:
                continue
            with open(f"/proc/{entry}/comm") as f:
                if name is not None and f.read().strip() != name:
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if pid_alive(int(entry)):
            found[int(entry)] = cmdline
    return found


def signal_pids(pids, *signals):
    """Send each signal to each PID, ignoring PIDs that are already gone."""
    for pid in pids:
        for sig in signals:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break


def listening():
    with open("/proc/net/tcp") as f:
        return render.listening(f.read())


def wait_for(predicate, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise FleetError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def http_json(url, timeout=1.0, data=None):
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def _load_tree_hash(repo_root):
    path = os.path.join(repo_root, "plugins", "module_utils", "tree_hash.py")
    spec = importlib.util.spec_from_file_location("lockstep_tree_hash", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tree_hash


class Fleet:
    """One local fleet, rooted at a repository checkout. All runtime state lives in ``<repo>/.fleet``."""

    def __init__(self, repo_root, artifacts_dir=None):
        self.root = os.path.abspath(repo_root)
        self.dir = os.path.join(self.root, ".fleet")
        self.artifacts_dir = os.path.abspath(artifacts_dir or os.path.join(self.root, "artifacts"))
        self.state_file = os.path.join(self.dir, "state.json")
        self.ssh_dir = os.path.join(self.dir, "ssh")
        self.key_file = os.path.join(self.ssh_dir, "id_ed25519")
        self.known_hosts = os.path.join(self.ssh_dir, "known_hosts")
        self.haproxy_dir = os.path.join(self.dir, "haproxy")
        self.haproxy_socket = os.path.join(self.haproxy_dir, "admin.sock")
        self.haproxy_pidfile = os.path.join(self.haproxy_dir, "haproxy.pid")
        self.exchange_dir = os.path.join(self.dir, "exchange")
        self.exchange_pidfile = os.path.join(self.exchange_dir, "exchange.pid")
        self.inventory = os.path.join(self.root, "inventory", "local", "hosts.yml")
        self.lb_url = render.LB_URL
        self.exchange_url = render.EXCHANGE_URL

    # ----- state -----------------------------------------------------------------------------------------------
    def state(self):
        try:
            with open(self.state_file) as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def _save(self, state):
        tmp = self.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f, indent=2, sort_keys=True)
        os.replace(tmp, self.state_file)

    @property
    def hosts(self):
        state = self.state()
        return sorted(state["hosts"], key=lambda n: int(n[1:])) if state else []

    def host_dir(self, name):
        return os.path.join(self.dir, "hosts", name)

    def _host(self, name):
        state = self.state()
        if not state:
            raise FleetError("no fleet is up (run bin/fleet up)")
        if name not in state["hosts"]:
            raise FleetError(f"no host {name!r} in this fleet (hosts: h1..h{len(state['hosts'])})")
        return state["hosts"][name]

    # ----- up --------------------------------------------------------------------------------------------------
    def up(self, hosts=8, version=None, lb_checks=True, login_user=None, sudo_password=None, service_user=None,
           health_path=render.HEALTH_PATH):
        """``login_user``: hosts are logged into as this user (made on the machine if missing, with sudo; a password
        for sudo with ``sudo_password``), not root. ``service_user``: the service runs as this unprivileged user."""
        names = render.host_names(hosts)
        render.health_check(health_path)  # a path HAProxy cannot check is refused before anything is brought down
        if self.state() or os.path.exists(self.dir):
            self.down()
        busy = self._busy_ports(names)
        if busy:
            taken = ", ".join(f"{ip}:{port}" for ip, port in sorted(busy))
            raise FleetError(f"fleet addresses already in use (another fleet or service?): {taken}")
        started = time.monotonic()
        try:
            state = self._prepare(names)
            if login_user:
                self._login_user(login_user, sudo_password)
            state.update(login_user=login_user or "root", service_user=service_user)
            if service_user:
                _ensure_user(service_user, system=True)
            self._save(state)
            for name in names:
                state["hosts"][name]["unshare_pid"] = self._spawn_host(name)
            self._save(state)
            for name in names:
                unshare = state["hosts"][name]["unshare_pid"]
                state["hosts"][name]["init_pid"] = wait_for(
                    lambda u=unshare: (children(u) or [None])[0], 5, f"the init of {name}")
            self._save(state)
            state["exchange"]["pid"] = self._start_exchange()
            # Kept in the state: every later HAProxy start and wait_healthy checks the way this fleet was made.
            state["haproxy"].update(checks=lb_checks, health_path=health_path)
            self._save(state)
            state["haproxy"]["pid"] = self._start_haproxy(names)
            self._save(state)
            self._write_inventory(names, login_user or "root")
            want = {(render.host_ip(n), 22) for n in names}
            wait_for(lambda: want <= listening(), 10, "sshd on every host")
            if version:
                self.install(version)
                state["version"] = version
            state["up_seconds"] = round(time.monotonic() - started, 3)
            self._save(state)
            return state
        except BaseException:
            self.down()
            raise

    def _login_user(self, user, password):
        """The deploy user of every host: key login (the fleet's client key), sudo (with ``password``, or none)."""
        if not shutil.which("sudo"):
            raise FleetError("--login-user needs sudo on this machine: apt-get install sudo")
        entry = _ensure_user(user)
        # useradd leaves the account locked, and sshd without PAM refuses a locked account even with a valid key.
        subprocess.run(["usermod", "-p", "*", user], check=True, capture_output=True)
        if password:
            subprocess.run(["chpasswd"], input=f"{user}:{password}\n", text=True, check=True, capture_output=True)
        ssh = os.path.join(entry.pw_dir, ".ssh")
        os.makedirs(ssh, mode=0o700, exist_ok=True)
        with open(self.key_file + ".pub") as f, open(os.path.join(ssh, "authorized_keys"), "w") as out:
            out.write(f.read())
        for path in (entry.pw_dir, ssh, os.path.join(ssh, "authorized_keys")):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        os.chmod(os.path.join(ssh, "authorized_keys"), 0o600)
        rule = f"{user} ALL=(ALL:ALL) {'' if password else 'NOPASSWD: '}ALL\n"
        path = self.sudoers(user)
        with open(path + ".tmp", "w") as f:
            f.write(f"# lockstep's local fleet (bin/fleet up --login-user); removed by bin/fleet down\n{rule}")
        os.chmod(path + ".tmp", 0o440)  # sudo ignores a file in sudoers.d that is not 0440
        os.replace(path + ".tmp", path)

    @staticmethod
    def sudoers(user):
        return os.path.join("/etc/sudoers.d", "lockstep-fleet-" + user.replace(".", "_"))

    def _busy_ports(self, names):
        wanted = {("127.0.0.1", 8000), ("127.0.0.1", 9100)}
        for name in names:
            wanted |= {(render.host_ip(name), 22), (render.host_ip(name), render.SERVICE_PORT)}
        taken = listening()
        return {a for a in wanted if a in taken or ("0.0.0.0", a[1]) in taken}

    def _prepare(self, names):
        for d in (self.ssh_dir, self.haproxy_dir, self.exchange_dir):
            os.makedirs(d, mode=0o700)
        keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", ""]
        subprocess.run(keygen + ["-C", "lockstep-fleet-client", "-f", self.key_file], check=True)
        with open(self.key_file + ".pub") as f:
            client_pub = f.read()

        def one(name):
            hdir = self.host_dir(name)
            for sub, mode in (("srv/order-router", 0o755), ("root/.ssh", 0o700), ("log", 0o755)):
                os.makedirs(os.path.join(hdir, sub), mode=mode)
            os.chmod(os.path.join(hdir, "root"), 0o700)
            with open(os.path.join(hdir, "root", ".ssh", "authorized_keys"), "w") as f:
                f.write(client_pub)
            os.chmod(os.path.join(hdir, "root", ".ssh", "authorized_keys"), 0o600)
            host_key = os.path.join(hdir, "ssh_host_ed25519_key")
            subprocess.run(keygen + ["-C", f"lockstep-fleet-{name}", "-f", host_key], check=True)
            os.chmod(host_key, 0o600)
            with open(os.path.join(hdir, "sshd_config"), "w") as f:
                f.write(render.sshd_config(name, host_key))
            with open(os.path.join(hdir, "srv", "order-router", "host.json"), "w") as f:
                json.dump(render.host_json(name), f, indent=2)
                f.write("\n")
            with open(host_key + ".pub") as f:
                return f.read()

        with ThreadPoolExecutor(max_workers=8) as pool:
            keys = dict(zip(names, pool.map(one, names), strict=True))
        with open(self.known_hosts, "w") as f:
            f.write(render.known_hosts(keys))
        return {
            "root": self.root,
            "hosts": {
                n: {"ip": render.host_ip(n), "ssh": f"root@{render.host_ip(n)}:22",
                    "service_url": render.service_url(n), "dir": self.host_dir(n),
                    "srv": os.path.join(self.host_dir(n), "srv")}
                for n in names
            },
            "haproxy": {"socket": self.haproxy_socket, "pidfile": self.haproxy_pidfile},
            "exchange": {"url": self.exchange_url, "pidfile": self.exchange_pidfile},
            "inventory": self.inventory,
            "version": None,
        }

    def _spawn_host(self, name):
        hdir = self.host_dir(name)
        argv = ["unshare", "-m", "-u", "-p", "--fork", "--mount-proc", "--kill-child",
                sys.executable, "-I", os.path.join(HERE, "hostinit.py"), name, hdir]
        with open(os.path.join(hdir, "init.log"), "ab") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    cwd="/", start_new_session=True)
        return proc.pid

    def _start_exchange(self):
        argv = [sys.executable, "-I", os.path.join(HERE, "exchange.py"), "--pidfile", self.exchange_pidfile]
        with open(os.path.join(self.exchange_dir, "exchange.log"), "ab") as log:
            subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd="/",
                             start_new_session=True)
        wait_for(lambda: ("127.0.0.1", 9100) in listening(), 10, "the exchange simulator")
        return self._pidfile(self.exchange_pidfile)

    def health_path(self):
        """The path HAProxy checks on every server ('' = a TCP connect), as ``up`` stored it (default /health)."""
        return ((self.state() or {}).get("haproxy") or {}).get("health_path", render.HEALTH_PATH)

    def haproxy_config(self, names=None):
        """HAProxy's configuration of this fleet, with the checks ``up`` stored in the state."""
        haproxy = (self.state() or {}).get("haproxy") or {}
        return render.haproxy_cfg(names or self.hosts, self.haproxy_socket, self.haproxy_pidfile,
                                  checks=haproxy.get("checks", True), health_path=self.health_path())

    def _start_haproxy(self, names):
        cfg = os.path.join(self.haproxy_dir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(self.haproxy_config(names))
        res = subprocess.run(["haproxy", "-f", cfg], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             start_new_session=True)
        if res.returncode != 0:
            raise FleetError("haproxy failed to start: %s" % (res.stderr or res.stdout))
        wait_for(lambda: os.path.exists(self.haproxy_socket), 5, "the HAProxy admin socket")
        return self._pidfile(self.haproxy_pidfile)

    @staticmethod
    def _pidfile(path):
        try:
            with open(path) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _write_inventory(self, names, login_user="root"):
        os.makedirs(os.path.dirname(self.inventory), exist_ok=True)
        tmp = self.inventory + ".tmp"
        with open(tmp, "w") as f:
            f.write(render.inventory_yaml(names, self.key_file, self.known_hosts, self.haproxy_socket, login_user))
        os.replace(tmp, self.inventory)

    # ----- a release, installed as a release would leave it --------------------------------------------------
    def install(self, version):
        """Stage release ``version`` on every host, switch ``current`` to it, start it and wait for health."""
        tarball = os.path.join(self.artifacts_dir, f"order-router-{version}.tar.gz")
        manifest_path = os.path.join(self.artifacts_dir, f"order-router-{version}.manifest.json")
        if not (os.path.exists(tarball) and os.path.exists(manifest_path)):
            build = os.path.join(self.root, "sample", "build.py")
            if not os.path.exists(build):
                raise FleetError(f"no artifact {tarball} and no {build} to build it")
            subprocess.run([sys.executable, build], cwd=self.root, check=True)
            if not os.path.exists(tarball):
                raise FleetError(f"sample/build.py did not produce {tarball}")
        with open(manifest_path) as f:
            manifest = json.load(f)
        tree_hash = _load_tree_hash(self.root)
        names = self.hosts
        service_user = (self.state() or {}).get("service_user")
        service = pwd.getpwnam(service_user) if service_user else None

        def stage(name):
            base = os.path.join(self.host_dir(name), "srv", "order-router")
            release = os.path.join(base, "releases", version)
            tmp = os.path.join(base, "releases", f".{version}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp)
            with tarfile.open(tarball) as tar:
                # Python < 3.11.4 (Debian's /usr/bin/python3) has no extraction filters.
                tar.extractall(tmp, **({"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))
            with open(os.path.join(tmp, "MANIFEST.json"), "w") as f:
                json.dump(manifest, f, indent=2, sort_keys=True)
                f.write("\n")
            got = tree_hash(tmp)
            if got != manifest["content_sha256"]:
                raise FleetError(f"{name}: content of {tarball} is {got}, manifest says {manifest['content_sha256']}")
            shutil.rmtree(release, ignore_errors=True)
            os.rename(tmp, release)
            for sub in ("run", "log"):
                os.makedirs(os.path.join(base, sub), exist_ok=True)
                if service:
                    # bin/ctl starts the service as the owner of run/ (the service's own user, never root).
                    os.chown(os.path.join(base, sub), service.pw_uid, service.pw_gid)
            link = os.path.join(base, ".current.tmp")
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(os.path.join("releases", version), link)
            os.replace(link, os.path.join(base, "current"))

        def start(name):
            with open(os.path.join(self.host_dir(name), "ctl.log"), "ab") as log:
                res = subprocess.run(self.exec_argv(name, ["/srv/order-router/current/bin/ctl", "start"]),
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd="/",
                                     env=self._host_env(), timeout=30)
            if res.returncode != 0:
                raise FleetError(f"{name}: bin/ctl start exited {res.returncode} (see {self.host_dir(name)}/ctl.log)")

        # Every host staged before any starts: a process forked by one thread while another still has a file of
        # the release open for writing holds that file open until it execs, and an exec of that file in between
        # fails with "Text file busy" (bin/ctl start exited 126, seen under load).
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(stage, names))
            list(pool.map(start, names))
        self.wait_healthy(names)

    def wait_healthy(self, names=None, timeout=20):
        """Every host's service passes this fleet's health check (``GET <health path>`` answers 200, or with no
        health path a TCP connect to its port succeeds) and HAProxy sees every server UP."""
        names = names or self.hosts
        path = self.health_path()

        def healthy(name):
            def ok():
                try:
                    if not path:
                        with socket.create_connection((render.host_ip(name), render.SERVICE_PORT), timeout=1):
                            return True
                    with urllib.request.urlopen(render.service_url(name) + path, timeout=1) as resp:
                        return resp.status == 200
                except (OSError, ValueError):
                    return False
            wait_for(ok, timeout, f"{path or 'a TCP connect'} of {name}", interval=0.1)

        with ThreadPoolExecutor(max_workers=32) as pool:
            list(pool.map(healthy, names))
        wait_for(lambda: set(names) <= self._haproxy_up(), timeout, "HAProxy to see every host UP", 0.1)

    def _haproxy_up(self):
        """Names of servers HAProxy reports operational (``show servers state``: srv_op_state 2)."""
        up = set()
        for line in self.haproxy(f"show servers state {render.BACKEND}").splitlines():
            fields = line.split()
            if len(fields) > 5 and fields[1] == render.BACKEND and fields[5] == "2":
                up.add(fields[3])
        return up

    # ----- running things in hosts -------------------------------------------------------------------------
    def exec_argv(self, host, cmd):
        init = self._host(host)["init_pid"]
        return ["nsenter", "-t", str(init), "-m", "-u", "-p", "--"] + list(cmd)

    @staticmethod
    def _host_env():
        env = dict(os.environ)
        env["HOME"] = "/root"
        return env

    def exec(self, host, *cmd, input=None, timeout=60, check=False):
        """Run ``cmd`` inside ``host``'s namespaces; returns a CompletedProcess with text stdout/stderr."""
        return subprocess.run(self.exec_argv(host, cmd), input=input, capture_output=True, text=True, cwd="/",
                              env=self._host_env(), timeout=timeout, check=check)

    def ssh_argv(self, host, cmd, known_hosts=None, connect_timeout=3):
        ip = self._host(host)["ip"]
        return ["ssh", "-F", "/dev/null", "-i", self.key_file, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", "UserKnownHostsFile=%s" % (known_hosts or self.known_hosts),
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                "-o", f"ConnectTimeout={connect_timeout}", f"{self.login_user()}@{ip}", cmd]

    def login_user(self):
        return (self.state() or {}).get("login_user") or "root"

    def ssh(self, host, cmd, known_hosts=None, timeout=10):
        """Run ``cmd`` on ``host`` over real ssh (strict host-key checking). A hang counts as exit 255."""
        argv = self.ssh_argv(host, cmd, known_hosts=known_hosts, connect_timeout=max(1, int(timeout) - 1))
        try:
            return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(argv, 255, exc.stdout or "", f"timed out after {timeout}s")

    def sshd_pids(self, host):
        """``(listener, sessions)``: the PID of ``host``'s sshd listener (or None) and of its session processes."""
        info = self._host(host)
        procs = namespace_procs(info["init_pid"], "sshd")
        config = os.path.join(info["dir"], "sshd_config")
        listener = [p for p, cmd in procs.items() if config in cmd]
        return (listener[0] if listener else None), sorted(p for p in procs if p not in listener)

    def sshd(self, host, action):
        """``stop`` (refused, not restarted), ``start``, ``freeze`` (SIGSTOP: connections hang) or ``thaw``.

        stop, freeze and thaw act on the listener and on its open sessions (an Ansible ControlPersist master
        would otherwise keep reaching a "stopped" host).
        """
        info = self._host(host)
        flag = os.path.join(info["dir"], "sshd.stopped")
        addr = (info["ip"], 22)
        listener, sessions = self.sshd_pids(host)
        every = ([listener] if listener else []) + sessions
        if action == "stop":
            open(flag, "w").close()
            signal_pids(every, signal.SIGTERM, signal.SIGCONT)
            wait_for(lambda: addr not in listening() and self.sshd_pids(host) == (None, []), 5,
                     f"sshd of {host} to stop")
        elif action == "start":
            if os.path.exists(flag):
                os.unlink(flag)
            os.kill(info["init_pid"], signal.SIGUSR1)
            wait_for(lambda: addr in listening(), 5, f"sshd of {host} to listen")
        elif action in ("freeze", "thaw"):
            if not listener:
                raise FleetError(f"sshd of {host} is not running")
            signal_pids(every, signal.SIGSTOP if action == "freeze" else signal.SIGCONT)
            frozen = action == "freeze"
            wait_for(lambda: (proc_state(listener) == "T") == frozen, 5, f"sshd of {host} to {action}")
        else:
            raise FleetError(f"unknown sshd action {action!r} (stop|start|freeze|thaw)")

    # ----- load balancer, exchange, traffic ----------------------------------------------------------------
    def haproxy(self, cmd, timeout=5):
        """Send one command to HAProxy's admin socket and return its answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.haproxy_socket)
            s.sendall(cmd.encode() + b"\n")
            chunks = []
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks).decode()

    def metrics(self, host):
        """``host``'s service metrics (``GET /metrics``) as ``{name_with_labels: value}``."""
        with urllib.request.urlopen(self._host(host)["service_url"] + "/metrics", timeout=2) as resp:
            return render.parse_metrics(resp.read().decode())

    def host_pids(self, host):
        """Every live PID of ``host`` (controller view): its init and everything in its PID namespace."""
        init = self._host(host)["init_pid"]
        return sorted(([init] if pid_alive(init) else []) + list(namespace_procs(init)))

    def exchange(self, path, data=None):
        return http_json(self.exchange_url + path, timeout=5, data=data)

    def traffic(self, rate, seconds, flag=None):
        return traffic.run(rate, seconds, flag=flag, url=self.lb_url)

    # ----- status ------------------------------------------------------------------------------------------
    def status(self):
        state = self.state()
        if not state:
            return {"up": False, "hosts": []}
        taken = listening()

        def one(name):
            info = state["hosts"][name]
            init_alive = pid_alive(info.get("init_pid") or 0)
            sshd = self.sshd_pids(name)[0] if init_alive else None
            if not init_alive:
                sshd_state = "host down"
            elif not sshd:
                sshd_state = "stopped"
            elif proc_state(sshd) == "T":
                sshd_state = "frozen"
            else:
                sshd_state = "listening" if (info["ip"], 22) in taken else "not listening"
            try:
                # Generous: on two busy cores a live service can take more than a second to answer.
                version = http_json(info["service_url"] + "/version", timeout=3)
            except (OSError, ValueError):
                version = {}
            return {
                "name": name, "ssh": info["ssh"], "service_url": info["service_url"], "init_pid": info["init_pid"],
                "host_alive": init_alive, "sshd": sshd_state, "sshd_pid": sshd,
                "service_pid": version.get("pid"), "version": version.get("version"), "srv": info["srv"],
            }

        names = self.hosts
        with ThreadPoolExecutor(max_workers=32) as pool:
            hosts = list(pool.map(one, names))
        return {
            "up": True, "hosts": hosts, "installed_version": state.get("version"),
            "haproxy": {"socket": self.haproxy_socket, "pid": state["haproxy"].get("pid"),
                        "alive": pid_alive(state["haproxy"].get("pid") or 0), "frontend": self.lb_url,
                        "health_check": ("none" if not state["haproxy"].get("checks", True) else
                                         f"GET {self.health_path()}" if self.health_path() else "tcp")},
            "exchange": {"url": self.exchange_url, "pid": state["exchange"].get("pid"),
                         "alive": pid_alive(state["exchange"].get("pid") or 0)},
            "inventory": self.inventory,
        }

    # ----- down --------------------------------------------------------------------------------------------
    def _recorded(self, state):
        """``[(pid, marker)]`` of every process this fleet started; ``marker`` is in its command line if it is ours."""
        found = []
        for name, info in state.get("hosts", {}).items():
            found += [(info.get("init_pid"), f"hostinit.py\0{name}\0"), (info.get("unshare_pid"), "unshare\0")]
        for key, marker in (("haproxy", "haproxy"), ("exchange", "exchange.py")):
            found += [(self._pidfile(getattr(self, f"{key}_pidfile")), marker),
                      (state.get(key, {}).get("pid"), marker)]
        return [(pid, marker) for pid, marker in found if pid]

    def recorded_pids(self, state=None):
        """Every live PID this fleet recorded (unshare and init per host, HAProxy, exchange) that is still ours:
        a PID whose command line no longer matches was reused by something else and is never signalled."""
        pids = set()
        for pid, marker in self._recorded(state or self.state() or {}):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if marker.encode() in f.read() and pid_alive(pid):
                        pids.add(pid)
            except OSError:
                pass
        return sorted(pids)

    def down(self):
        """Stop everything this fleet started (by recorded PID only) and remove its state. Safe when nothing is up."""
        state = self.state() or {}
        pids = self.recorded_pids(state)
        unshares = {info.get("unshare_pid") for info in state.get("hosts", {}).values()}
        signal_pids([p for p in pids if p not in unshares], signal.SIGTERM)  # unshare ignores it; its init does not
        try:
            wait_for(lambda: not any(pid_alive(p) for p in pids), 3, "fleet processes to exit")
        except FleetError:
            signal_pids([p for p in pids if pid_alive(p)], signal.SIGKILL)  # unshare passes it on (--kill-child)
            wait_for(lambda: not any(pid_alive(p) for p in pids), 5, "fleet processes to die")
        self._unmount_leftovers()
        if state.get("login_user") not in (None, "root") and os.path.exists(self.sudoers(state["login_user"])):
            os.unlink(self.sudoers(state["login_user"]))
        shutil.rmtree(self.dir, ignore_errors=True)
        if os.path.exists(self.inventory):
            os.unlink(self.inventory)

    def _unmount_leftovers(self):
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
        for point in sorted((p for p in points if p.startswith(self.dir + "/")), reverse=True):
            subprocess.run(["umount", "-l", point], check=False)
