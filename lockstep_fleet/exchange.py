#!/usr/bin/env python3
"""Exchange simulator of the local fleet: counts child orders per parent order (API in docs/CONTRACTS.md).

POST /child {"parent_id", "host", "symbol", "qty"}; GET /parents/<id>; GET /stats; POST /reset. Stdlib only.
"""

import argparse
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Book:
    """Child-order counts per parent id, safe to use from many threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self._children = {}
        self._hosts = {}

    def add(self, parent_id, host=None):
        with self._lock:
            self._children[parent_id] = self._children.get(parent_id, 0) + 1
            if host:
                self._hosts.setdefault(parent_id, set()).add(host)
            return self._children[parent_id]

    def parent(self, parent_id):
        with self._lock:
            return {
                "parent_id": parent_id,
                "child_orders": self._children.get(parent_id, 0),
                "hosts": sorted(self._hosts.get(parent_id, ())),
            }

    def stats(self):
        with self._lock:
            # The largest count is the flood detector: a well-behaved router sends one child order per parent.
            return {"parents": len(self._children), "child_orders": sum(self._children.values()),
                    "max_child_orders_per_parent": max(self._children.values(), default=0)}

    def reset(self):
        with self._lock:
            self._children.clear()
            self._hosts.clear()


class Server(ThreadingHTTPServer):
    """A thread per connection, and a listen backlog that holds a whole fleet posting at once.

    socketserver's default backlog is 5: with more connections arriving than one accept loop takes at once, the
    kernel's SYN/accept queue overflows and clients see "Connection reset by peer" (32 hosts smoking at once did).
    """

    request_queue_size = 1024
    daemon_threads = True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    book = Book()

    def log_message(self, *args):
        pass

    def _reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/stats":
            return self._reply(200, self.book.stats())
        if self.path == "/health":
            return self._reply(200, {"status": "ok"})
        if self.path.startswith("/parents/") and len(self.path) > len("/parents/"):
            return self._reply(200, self.book.parent(self.path[len("/parents/"):]))
        return self._reply(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path == "/reset":
            self.book.reset()
            return self._reply(200, self.book.stats())
        if self.path == "/child":
            try:
                body = json.loads(raw or b"{}")
                parent_id = str(body["parent_id"])
            except (ValueError, KeyError, TypeError):
                return self._reply(400, {"error": "need JSON with parent_id"})
            count = self.book.add(parent_id, body.get("host"))
            return self._reply(200, {"parent_id": parent_id, "child_orders": count})
        return self._reply(404, {"error": "not found"})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9100)
    ap.add_argument("--pidfile")
    args = ap.parse_args(argv)
    server = Server((args.bind, args.port), Handler)
    if args.pidfile:
        with open(args.pidfile + ".tmp", "w") as f:
            f.write(f"{os.getpid()}\n")
        os.rename(args.pidfile + ".tmp", args.pidfile)
    server.serve_forever()


if __name__ == "__main__":
    main()
