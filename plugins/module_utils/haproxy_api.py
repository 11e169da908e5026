# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HAProxy runtime API over its admin stats socket (one command per connection, non-interactive mode)."""

from __future__ import annotations

import csv
import io
import socket


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
            # Only a server HAProxy considers up and not draining receives new traffic.
            "serving": status.startswith("UP") and "DRAIN" not in status,
        }
    return found


def set_state(sock_path, backend, server, state):
    out = command(sock_path, "set server %s/%s state %s" % (backend, server, state)).strip()
    if out:
        raise HAProxyError("set server %s/%s state %s: %s" % (backend, server, state, out))
