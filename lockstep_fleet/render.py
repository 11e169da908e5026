"""Pure functions that render the fleet's files and parse what the kernel reports (unit-tested)."""

import json
import math
import re

MAX_HOSTS = 128  # 127.0.0.(10+N) stays a loopback address below .255
SERVICE_PORT = 8080
LB_URL = "http://127.0.0.1:8000"
EXCHANGE_URL = "http://127.0.0.1:9100"
BACKEND = "order_router"
HEALTH_PATH = "/health"  # HAProxy's check of every server, per fleet: bin/fleet up --health-path
# A path (and query) HAProxy's configuration can carry as one word: no space, quote, backslash or '#' (a comment).
_HEALTH_PATH_RE = re.compile(r"/[A-Za-z0-9._~!&()*+,;=:@%/?-]*\Z")


def host_names(count):
    if not 1 <= count <= MAX_HOSTS:
        raise ValueError(f"hosts must be between 1 and {MAX_HOSTS}, not {count!r}")
    return [f"h{i}" for i in range(1, count + 1)]


def host_ip(name):
    """``hN`` -> ``127.0.0.(10+N)``."""
    number = int(name[1:])
    if name[0] != "h" or not 1 <= number <= MAX_HOSTS:
        raise ValueError(f"no such fleet host: {name!r}")
    return f"127.0.0.{10 + number}"


def service_url(name):
    return f"http://{host_ip(name)}:{SERVICE_PORT}"


def host_json(name):
    return {"bind": host_ip(name), "port": SERVICE_PORT, "exchange_url": EXCHANGE_URL, "host": name}


def sshd_config(name, host_key):
    return "\n".join([
        f"# sshd of fleet host {name} (written by bin/fleet up)",
        f"ListenAddress {host_ip(name)}:22",
        f"HostKey {host_key}",
        "PidFile /run/sshd.pid",
        "UsePAM no",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "AuthorizedKeysFile .ssh/authorized_keys",
        "StrictModes yes",
        "UseDNS no",
        "MaxStartups 64:30:128",
        "MaxSessions 64",
        "Subsystem sftp /usr/lib/openssh/sftp-server",
        "",
    ])


def known_hosts(public_keys):
    """``{name: "ssh-ed25519 AAAA... comment"}`` -> known_hosts text keyed by each host's IP."""
    lines = []
    for name, key in public_keys.items():
        keytype, blob = key.split()[:2]
        lines.append(f"{host_ip(name)} {keytype} {blob}\n")
    return "".join(lines)


def health_check(path=HEALTH_PATH):
    """The backend's health check lines: ``GET path`` answered 200, or for an empty path (a service without a health
    endpoint) none, which makes HAProxy's ``check`` a TCP connect to the service's port. ValueError for a path that
    is not one (it must start with '/') or that HAProxy's configuration cannot carry as one word."""
    if path == "":
        return []
    if not isinstance(path, str) or not _HEALTH_PATH_RE.match(path):
        raise ValueError(f"health path {path!r} is not a URL path HAProxy can check (a '/' first, no space, quote, "
                         "backslash or '#'); '' checks a TCP connect instead")
    return [f"    option httpchk GET {path}", "    http-check expect status 200"]


def haproxy_cfg(names, socket_path, pidfile, checks=True, health_path=HEALTH_PATH):
    """HAProxy's configuration; ``checks=False`` gives servers without health checks (HAProxy reports them as
    "no check"), which real backends often are. ``health_path``: see ``health_check``."""
    lines = [
        "# HAProxy of the local fleet (written by bin/fleet up)",
        "global",
        "    daemon",
        f"    pidfile {pidfile}",
        f"    stats socket {socket_path} mode 600 level admin",
        "    maxconn 2048",
        "",
        "defaults",
        "    mode http",
        "    timeout connect 1s",
        "    timeout client 10s",
        "    timeout server 10s",
        "    timeout check 1s",
        "    retries 3",
        "    option redispatch",
        "    retry-on all-retryable-errors",
        "    option http-buffer-request",
        "",
        "frontend lockstep",
        "    bind 127.0.0.1:8000",
        f"    default_backend {BACKEND}",
        "",
        f"backend {BACKEND}",
        "    balance roundrobin",
        *health_check(health_path),
        "    default-server inter 500ms fastinter 250ms downinter 500ms rise 1 fall 2",
    ]
    lines += [f"    server {name} {host_ip(name)}:{SERVICE_PORT}{' check' if checks else ''}" for name in names]
    return "\n".join(lines) + "\n"


def _yaml(value):
    return json.dumps(value) if isinstance(value, str) else str(value)


def inventory_yaml(names, key_file, known_hosts_file, socket_path, login_user="root"):
    """The inventory ``inventory/local/hosts.yml`` as docs/CONTRACTS.md describes it."""
    all_vars = {
        "ansible_user": login_user,
        "ansible_ssh_private_key_file": key_file,
        "ansible_ssh_common_args": f"-o UserKnownHostsFile={known_hosts_file} -o StrictHostKeyChecking=yes",
        "ansible_python_interpreter": "/usr/bin/python3",
        "lockstep_haproxy_socket": socket_path,
        "lockstep_haproxy_backend": BACKEND,
        "lockstep_lb_url": LB_URL,
        "lockstep_exchange_url": EXCHANGE_URL,
    }
    out = ["# Written by bin/fleet up; removed by bin/fleet down. Do not edit.", "all:", "  vars:"]
    out += [f"    {k}: {_yaml(v)}" for k, v in all_vars.items()]
    out += ["  children:", "    app:", "      hosts:"]
    for name in names:
        out += [f"        {name}:",
                f"          ansible_host: {_yaml(host_ip(name))}",
                f"          lockstep_service_url: {_yaml(service_url(name))}"]
    out += ["    lb:", "      hosts:", "        lb:", "          ansible_connection: local"]
    return "\n".join(out) + "\n"


def listening(proc_net_tcp):
    """Parse ``/proc/net/tcp`` text into the set of ``(ip, port)`` in state LISTEN."""
    found = set()
    for line in proc_net_tcp.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != "0A":
            continue
        addr, port = fields[1].split(":")
        octets = [str(int(addr[i:i + 2], 16)) for i in (6, 4, 2, 0)]
        found.add((".".join(octets), int(port, 16)))
    return found


def percentile(values, fraction):
    """Nearest-rank percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def parse_metrics(text):
    """Prometheus text exposition -> ``{"name{labels}": float}`` (comments skipped)."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name.strip()] = float(value)
    return values
