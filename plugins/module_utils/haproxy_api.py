# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HAProxy runtime API over its admin stats socket (one command per connection, non-interactive mode)."""

from __future__ import annotations

import csv
import io
import re
import socket

# Names that go into runtime-API commands: a ';' or a newline would smuggle in a second command.
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,99}\Z")


class HAProxyError(Exception):
    pass


def command(sock_path, cmd, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.sendall(cmd.encode() + b"\n")
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    except OSError as e:
        raise HAProxyError("HAProxy socket %s: %s" % (sock_path, e)) from e
    finally:
        s.close()
    out = b"".join(chunks).decode("utf-8", "replace")
    if out.strip().lower().startswith(("unknown", "permission denied", "no such")):
        raise HAProxyError("HAProxy refused %r: %s" % (cmd, out.strip()))
    return out


def servers(sock_path, backend):
    """``{server: {"status", "scur", "addr", "serving"}}`` for one backend, parsed from ``show stat`` CSV."""
    text = command(sock_path, "show stat")
    rows = csv.DictReader(io.StringIO(text.lstrip("# ")))
    found = {}
    for row in rows:
        if row.get("pxname") != backend or row.get("svname") in ("FRONTEND", "BACKEND"):
            continue
        status = row.get("status", "")
        found[row["svname"]] = {
            "status": status,
            "scur": int(row.get("scur") or 0),
            "addr": row.get("addr") or None,
            "serving": serving(status),
        }
    return found


def serving(status):
    """Whether HAProxy sends new requests to a server with this ``show stat`` status. A server without health
    checks reports ``no check`` and serves; one that is draining, in maintenance, down or NOLB does not."""
    return (status.startswith("UP") or status == "no check") and "DRAIN" not in status and "NOLB" not in status


def check_name(name):
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise HAProxyError("refusing to send %r to HAProxy's runtime API: not a plain server or backend name" % (name,))
    return name


def set_state(sock_path, backend, server, state):
    set_states(sock_path, backend, [server], state)


def set_states(sock_path, backend, names, state):
    """Set every server of ``names`` to ``state`` in ONE runtime-API exchange (commands joined by ';'): a fleet of
    any size is drained, readied or put in maintenance at once, and no name is used before it is validated."""
    if not names:
        return
    check_name(backend)
    cmds = ["set server %s/%s state %s" % (backend, check_name(n), check_name(state)) for n in names]
    out = command(sock_path, "; ".join(cmds)).strip()
    if out:
        raise HAProxyError("%s: %s" % (cmds[0] if len(cmds) == 1 else "set server ... state %s" % state, out))
