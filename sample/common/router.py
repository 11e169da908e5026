"""order-router: routes parent orders to the exchange as child orders.

Shared by every release; the per-version routing logic lives in ``routing.py`` next to this file and the
per-release feature switches in ``flags.json``. Everything about what is running is read ONCE at start-up from the
start directory (``bin/ctl`` cds into the real release directory): a release switched on disk afterwards does not
change what this process reports or does.

Stdlib only: runs on the hosts' /usr/bin/python3.
"""

import http.client
import json
import os
import signal
import socket
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import routing

DEFAULT_BASE = "/srv/order-router"


def _load_json(path, default=None):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        if default is not None:
            return default
        raise


def data_path():
    """The service's state, kept outside the release directories (every release reads the same file)."""
    return os.path.join(os.path.dirname(host_json_path()), "data", "book.json")


def open_data(version, own_format):
    """Read (or create) the state file, migrating an older format forward. A newer format than this release
    reads is refused, as real services refuse a database a later release migrated: the process exits 1."""
    path = data_path()
    data = _load_json(path, default={})
    found = data.get("format", own_format) if data else own_format
    if found > own_format:
        sys.exit(f"order-router {version}: {path} is in data format {found}, newer than this release reads "
                 f"(format {own_format}): refusing to start")
    if not data or found < own_format:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"format": own_format, "written_by": version}, f)
        os.replace(tmp, path)
        if data:
            print(f"order-router {version}: migrated {path} from data format {found} to {own_format}", flush=True)


def host_json_path():
    explicit = os.environ.get("ORDER_ROUTER_HOST_JSON")
    if explicit:
        return explicit
    return os.path.join(os.environ.get("ORDER_ROUTER_BASE") or DEFAULT_BASE, "host.json")


class Metrics:
    COUNTERS = (
        ("order_router_orders_received_total", "Parent orders accepted by POST /orders."),
        ("order_router_child_orders_sent_total", "Child orders sent to the exchange."),
        ("order_router_errors_total", "Malformed orders and failed exchange calls."),
    )

    def __init__(self, version):
        self.version = version
        self._lock = threading.Lock()
        self._values = {name: 0 for name, _ in self.COUNTERS}

    def inc(self, name, amount=1):
        with self._lock:
            self._values[name] += amount

    def render(self):
        with self._lock:
            values = dict(self._values)
        lines = []
        for name, help_text in self.COUNTERS:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} counter")
            lines.append(f"{name} {values[name]:.1f}")
        label = self.version.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        lines.append("# HELP order_router_build_info The version this process started with.")
        lines.append("# TYPE order_router_build_info gauge")
        lines.append(f'order_router_build_info{{version="{label}"}} 1.0')
        return "\n".join(lines) + "\n"


class ExchangeError(Exception):
    pass


class ExchangeClient:
    """One HTTP connection to the exchange per parent order, reused for all its child orders."""

    def __init__(self, exchange_url, host, metrics, timeout=10):
        url = urllib.parse.urlsplit(exchange_url)
        self.path = url.path.rstrip("/") + "/child"
        cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        self.conn = cls(url.hostname, url.port, timeout=timeout)
        self.host = host
        self.metrics = metrics
        self.sent = 0

    def send_child(self, parent_id, symbol, qty):
        body = json.dumps({"parent_id": parent_id, "host": self.host, "symbol": symbol, "qty": qty}).encode()
        headers = {"Content-Type": "application/json"}
        try:
            self.conn.request("POST", self.path, body=body, headers=headers)
            if self.conn.sock is not None and hasattr(socket, "TCP_QUICKACK"):
                # On a kept-alive connection, Linux delays our ACK of a response's first segment by ~40 ms; a server
                # that writes headers and body separately (Nagle) then stalls on every request. ACK at once.
                self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            resp = self.conn.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            raise ExchangeError(f"exchange unreachable: {e}") from e
        if not 200 <= resp.status < 300:
            raise ExchangeError(f"exchange answered {resp.status}")
        self.sent += 1
        self.metrics.inc("order_router_child_orders_sent_total")

    def close(self):
        self.conn.close()


def validate_order(order):
    """Return an error message, or None when ``order`` is a well-formed parent order."""
    if not isinstance(order, dict):
        return "order must be a JSON object"
    if not isinstance(order.get("id"), str) or not order["id"]:
        return "id must be a non-empty string"
    if not isinstance(order.get("symbol"), str) or not order["symbol"]:
        return "symbol must be a non-empty string"
    qty = order.get("qty")
    if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
        return "qty must be a positive integer"
    flags = order.get("flags", [])
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        return "flags must be a list of strings"
    return None


class Router:
    def __init__(self, start_dir, host_cfg):
        self.start_dir = start_dir
        self.host_cfg = host_cfg
        manifest = _load_json(os.path.join(start_dir, "MANIFEST.json"), default={})
        self.flags = _load_json(os.path.join(start_dir, "flags.json"))
        try:
            with open(os.path.join(start_dir, "VERSION"), encoding="utf-8") as f:
                own_version = f.read().strip()
        except FileNotFoundError:
            own_version = "unknown"
        self.version_info = {
            "version": manifest.get("version", own_version),
            "sha256": manifest.get("sha256"),
            "content_sha256": manifest.get("content_sha256"),
            "directory": start_dir,
            "pid": os.getpid(),
        }
        self.version = self.version_info["version"]
        self.metrics = Metrics(self.version)

    def enabled(self, name):
        """Whether this release's flags.json switches on the feature behind order flag ``name``."""
        entry = self.flags.get("flags", {}).get(name)
        return bool(entry and entry.get("enabled"))

    def handle_order(self, order):
        client = ExchangeClient(self.host_cfg["exchange_url"], self.host_cfg.get("host", ""), self.metrics)
        try:
            routing.route(order, self, client)
        finally:
            client.close()
        return client.sent


class Handler(BaseHTTPRequestHandler):
    server_version = "order-router"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: do not let Nagle hold the body
    router = None  # set in main()

    def log_message(self, fmt, *args):
        sys.stdout.write(f"{self.address_string()} {fmt % args}\n")

    def _send(self, status, payload, content_type="application/json"):
        body = payload if isinstance(payload, bytes) else (json.dumps(payload) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/health":
            self._send(200, {"status": "ok"})
        elif path == "/version":
            self._send(200, self.router.version_info)
        elif path == "/metrics":
            self._send(200, self.router.metrics.render().encode(), "text/plain; version=0.0.4; charset=utf-8")
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        if path != "/orders":
            self._send(404, {"error": "not found"})
            return
        router = self.router
        try:
            order = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            order = None
            error = "body must be JSON"
        else:
            error = validate_order(order)
        if error:
            router.metrics.inc("order_router_errors_total")
            self._send(400, {"error": error})
            return
        router.metrics.inc("order_router_orders_received_total")
        try:
            sent = router.handle_order(order)
        except ExchangeError as e:
            router.metrics.inc("order_router_errors_total")
            self._send(502, {"error": str(e), "parent_id": order["id"], "version": router.version})
            return
        self._send(200, {"parent_id": order["id"], "child_orders": sent, "version": router.version})


class Server(ThreadingHTTPServer):
    """A thread per connection; a listen backlog of 1024 (socketserver's default of 5 resets clients that arrive
    together, such as a load balancer's burst)."""

    request_queue_size = 1024
    daemon_threads = True


def main():
    start_dir = os.path.realpath(os.getcwd())
    host_cfg = _load_json(host_json_path())
    router = Router(start_dir, host_cfg)
    open_data(router.version, getattr(routing, "DATA_FORMAT", 1))
    Handler.router = router
    server = Server((host_cfg["bind"], int(host_cfg["port"])), Handler)

    def _stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    port = server.server_address[1]
    print(
        f"order-router {router.version} pid {os.getpid()} listening on http://{host_cfg['bind']}:{port}"
        f" from {start_dir}",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        print(f"order-router {router.version} pid {os.getpid()} stopped", flush=True)


if __name__ == "__main__":
    main()
