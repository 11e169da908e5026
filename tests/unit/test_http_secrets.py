"""Secrets stay with the hosts they are meant for (issue 17, item 4).

A check's headers (where a vaulted token goes) and a URL's user and password follow a redirect only to the same
scheme, host and port; a password or a query value of a URL (``user:pw@``, ``?token=``) appears in no error, message
or result. Real stdlib HTTP servers on loopback addresses only (127.0.0.1 and 127.0.0.2), on kernel-chosen ports.
"""

from __future__ import annotations

import base64
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.lockstep.release.plugins.action.smoke import check_step
from ansible_collections.lockstep.release.plugins.action.watch import scrape
from ansible_collections.lockstep.release.plugins.plugin_utils import audit
from ansible_collections.lockstep.release.plugins.plugin_utils.http import request, safe_text, safe_url
from ansible_collections.lockstep.release.plugins.plugin_utils.secrets import scrub_text, scrubbed

# Built, so that they appear in no source line a traceback could quote.
TOKEN = "tok" + "en-" + "7c1f0e9a2b"
CUSTOM = "cus" + "tom-" + "5d8e4a1c"
PASSWORD = "pw-" + "9b2e6f"
QUERY = "abc-" + "3e7d1a"
HEADERS = {"Authorization": "Bearer " + TOKEN, "X-Token": CUSTOM}
SECRETS = (TOKEN, CUSTOM, PASSWORD, QUERY)


class Server:
    """A stdlib HTTP server on one loopback address. ``routes`` maps a path to ``(status, extra headers, body)``;
    every request's path and headers are recorded in ``seen``."""

    def __init__(self, address, port=0):
        self.routes = {}
        self.seen = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.seen.append((self.path, dict(self.headers)))
                status, extra, body = server.routes.get(self.path.split("?")[0], (404, {}, b"no route"))
                self.send_response(status)
                for key, value in extra.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        assert address.startswith("127.0.0."), address  # loopback only
        self.httpd = ThreadingHTTPServer((address, port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = "http://%s:%d" % (address, self.port)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def headers_of(self, path):
        return [headers for p, headers in self.seen if p.split("?")[0] == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers():
    """``servers(address, port=0) -> Server``; all shut down at teardown."""
    started = []

    def start(address, port=0):
        started.append(Server(address, port))
        return started[-1]

    yield start
    for server in started:
        server.close()


def same_port_pair(servers):
    """A server on 127.0.0.1 and one on 127.0.0.2 on the same port: only the host differs."""
    for _ in range(20):
        other = servers("127.0.0.2")
        try:
            return servers("127.0.0.1", other.port), other
        except OSError:  # the port is taken on 127.0.0.1: another one
            continue
    raise AssertionError("no port free on both 127.0.0.1 and 127.0.0.2 in 20 tries")  # never a skip


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def no_secret_in(text):
    return not any(secret in str(text) for secret in SECRETS)


def redirect(to, code=302):
    return code, {"Location": to}, b""


OK = (200, {"Content-Type": "application/json"}, b'{"ok": true}')


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("where", ["other host", "other port"])
def test_a_redirect_to_another_origin_carries_none_of_the_callers_headers(servers, where, code):
    if where == "other host":  # 127.0.0.1 -> 127.0.0.2, same port
        first, other = same_port_pair(servers)
    else:  # 127.0.0.1 -> 127.0.0.1, another port
        first, other = servers("127.0.0.1"), servers("127.0.0.1")
    first.routes["/go"] = redirect(other.url + "/landing", code)
    other.routes["/landing"] = OK
    resp = request(first.url + "/go", headers=HEADERS, timeout=5)
    assert resp.status == 200 and resp.json() == {"ok": True}, resp.describe()
    # the first host got them, the other got neither the token nor the custom header, under any name
    assert first.headers_of("/go")[0]["Authorization"] == "Bearer " + TOKEN
    assert first.headers_of("/go")[0]["X-Token"] == CUSTOM
    landed = other.headers_of("/landing")
    assert len(landed) == 1
    assert no_secret_in(landed[0]), landed[0]
    assert not {"authorization", "x-token", "cookie"} & {k.lower() for k in landed[0]}
    assert landed[0].get("Accept") == "application/json"  # lockstep's own header still goes


def test_the_urls_user_and_password_go_to_their_host_only(servers):
    first, other = same_port_pair(servers)
    first.routes["/go"] = redirect(other.url + "/landing")
    other.routes["/landing"] = OK
    resp = request("http://user:%s@127.0.0.1:%d/go" % (PASSWORD, first.port), timeout=5)
    assert resp.status == 200, resp.describe()
    basic = "Basic " + base64.b64encode(("user:" + PASSWORD).encode()).decode()
    assert first.headers_of("/go")[0]["Authorization"] == basic  # sent as basic authentication
    assert "Authorization" not in other.headers_of("/landing")[0]


def test_credentials_once_dropped_do_not_come_back_and_a_location_brings_none(servers):
    first, other = same_port_pair(servers)
    # 127.0.0.1 -> 127.0.0.2 -> back to 127.0.0.1: the credentials were left behind at the first hop
    first.routes["/go"] = redirect(other.url + "/bounce")
    other.routes["/bounce"] = redirect(first.url + "/back")
    first.routes["/back"] = OK
    assert request(first.url + "/go", headers=HEADERS, timeout=5).status == 200
    for headers in other.headers_of("/bounce") + first.headers_of("/back"):
        assert no_secret_in(headers) and "Authorization" not in headers, headers
    # user information in a Location is not used (nor does it make the request fail)
    first.routes["/go2"] = redirect("http://someone:%s@127.0.0.2:%d/landing" % (PASSWORD, other.port))
    other.routes["/landing"] = OK
    assert request(first.url + "/go2", timeout=5).status == 200
    assert "Authorization" not in other.headers_of("/landing")[0]


@pytest.mark.parametrize("location", ["/landing", "absolute"])
def test_a_same_origin_redirect_keeps_the_headers(servers, location):
    first = servers("127.0.0.1")
    first.routes["/go"] = redirect(first.url + "/landing" if location == "absolute" else location)
    first.routes["/landing"] = OK
    resp = request("http://user:%s@127.0.0.1:%d/go" % (PASSWORD, first.port), headers={"X-Token": CUSTOM},
                   timeout=5)
    assert resp.status == 200, resp.describe()
    landed = first.headers_of("/landing")
    assert len(landed) == 1
    assert landed[0]["X-Token"] == CUSTOM
    assert landed[0]["Authorization"] == "Basic " + base64.b64encode(("user:" + PASSWORD).encode()).decode()
    # the caller's Authorization wins over the URL's user information, and follows too
    request("http://user:%s@127.0.0.1:%d/go" % (PASSWORD, first.port), headers=HEADERS, timeout=5)
    assert first.headers_of("/landing")[1]["Authorization"] == "Bearer " + TOKEN
    assert first.headers_of("/landing")[1]["X-Token"] == CUSTOM


@pytest.mark.parametrize("url", [
    "http://user:{pw}@127.0.0.1:{closed}/version?token={q}",  # connection refused
    "http://{pw}@127.0.0.1:{closed}/version?access_token={q}",  # a user name alone is often the token
    "127.0.0.1:{closed}/version?token={q}",  # no scheme: urllib quotes the URL in its error
    "version?Token={q}",
    "http://user:{pw}@[::1/version?token={q}",  # malformed
    "http://127.0.0.1:{closed}/version?token={q}\nx",  # a control character: http.client quotes the URL
    "http://127.0.0.1:{closed}/version?token={q} x",
])
def test_a_failing_request_names_its_url_without_password_or_query_values(url, servers):
    url = url.format(pw=PASSWORD, q=QUERY, closed=closed_port())
    resp = request(url, timeout=5)
    assert resp.status is None and resp.error
    assert no_secret_in(resp.describe()) and no_secret_in(resp.error), resp.describe()
    assert "********" in resp.describe()
    assert no_secret_in(resp.url), resp.url


def test_short_credentials_are_redacted_too():
    resp = request("http://user:pw@127.0.0.1:%d/version?token=abc" % closed_port(), timeout=5)
    assert "pw" not in resp.describe() and "abc" not in resp.describe(), resp.describe()
    assert resp.describe().startswith("http://user:********@127.0.0.1:")


def test_an_answer_that_fails_names_no_credential(servers):
    first = servers("127.0.0.1")
    first.routes["/version"] = (500, {}, b"boom")
    resp = request("http://user:%s@127.0.0.1:%d/version?token=%s" % (PASSWORD, first.port, QUERY), timeout=5)
    assert resp.status == 500 and resp.describe() == "HTTP 500"
    assert resp.url == "http://user:********@127.0.0.1:%d/version?token=********" % first.port


def test_safe_url_redacts_every_query_value_and_the_password_only():
    assert safe_url("http://u:p@h:8/a/b?token=x&Key=y&plain#build.version") == \
        "http://u:********@h:8/a/b?token=********&Key=********&********#build.version"
    assert safe_url("https://ghp_x@h/a") == "https://********@h/a"
    assert safe_url("http://127.0.0.1:8080/version#version") == "http://127.0.0.1:8080/version#version"
    assert safe_url(None) is None
    assert safe_text("GET http://u:p@h/a?sig=x&n=1: HTTP 500, expected HTTP 200") == \
        "GET http://u:********@h/a?sig=********&n=********: HTTP 500, expected HTTP 200"


def test_smoke_messages_quote_urls_without_credentials(servers):
    first = servers("127.0.0.1")
    first.routes["/fail"] = (500, {}, b"boom")
    first.routes["/ok"] = OK
    base = "http://user:%s@127.0.0.1:%d" % (PASSWORD, first.port)
    problems = [
        check_step({"url": base + "/fail?token=" + QUERY}, 5),  # the status
        check_step({"url": base + "/ok?token=" + QUERY, "body_contains": "absent"}, 5),  # the body
        check_step({"url": base + "/ok?token=" + QUERY, "json": {"ok": False}}, 5),  # a JSON field
        check_step({"url": "http://user:%s@127.0.0.1:%d/x?token=%s" % (PASSWORD, closed_port(), QUERY)}, 5),
    ]
    for problem in problems:
        assert problem and no_secret_in(problem), problem
        assert "user:********@127.0.0.1:" in problem and "?token=********" in problem, problem


def test_results_are_scrubbed_of_url_credentials_at_the_source():
    result = {"msg": "GET http://user:%s@h1/health?token=%s: HTTP 500" % (PASSWORD, QUERY),
              "lockstep_gate": {"halted": [{"host": "h1", "message": "https://%s@h1/?key=%s" % (TOKEN, QUERY)}]},
              "befores": {"h1": "http://h1/?token=%s" % QUERY}}
    out = scrub_text(result, set())  # none of them is a variable of the run: the URL's shape is enough
    assert no_secret_in(out["msg"]) and no_secret_in(out["lockstep_gate"]), out
    assert out["msg"] == "GET http://user:********@h1/health?token=********: HTTP 500"
    assert out["befores"] == result["befores"]  # data the release acts on is never rewritten

    class Action:
        @scrubbed
        def run(self, tmp=None, task_vars=None):
            return dict(result, failed=True)

    assert no_secret_in(Action().run(task_vars={})["msg"])


def test_watch_and_audit_messages_name_no_credential(servers):
    first = servers("127.0.0.1")
    first.routes["/metrics"] = (200, {"Content-Type": "text/plain"}, b"this is { not metrics\n")
    url = "http://user:%s@127.0.0.1:%d/metrics?token=%s" % (PASSWORD, first.port, QUERY)
    totals, error = scrape(url)
    assert totals is None and error.startswith("unparseable metrics at "), error
    assert no_secret_in(error) and "?token=********" in error, error
    # a halt that a host survived: the audit names the URL it still answers on
    urls = {"h1": "http://user:%s@127.0.0.1:%d/version?token=%s#version" % (PASSWORD, first.port, QUERY)}
    probes = {"h1": {"reachable": True, "version": "2.1.0", "pid": 7}}
    verdict = audit.judge(["h1"], urls, probes, layers=("http",), service="stopped")
    assert not verdict["passed"]
    assert no_secret_in(audit.message(verdict)) and no_secret_in(audit.format_audit(verdict)), verdict
    assert "still answers on http://user:********@127.0.0.1:" in audit.message(verdict)
    # a probe that fails
    failed = audit.probe("http://user:%s@127.0.0.1:%d/version?token=%s#version" % (PASSWORD, closed_port(), QUERY))
    assert not failed["reachable"] and no_secret_in(failed["error"]), failed


def test_the_smoke_action_result_names_no_credential(run_play, servers):
    first = servers("127.0.0.1")
    first.routes["/h1/version"] = (500, {}, b"boom")
    check = {"name": "version with a token", "url": "{url}/version?token=" + QUERY}
    hosts = {"h1": "http://user:%s@127.0.0.1:%d/h1" % (PASSWORD, first.port)}
    refused = {"h1": "http://user:%s@127.0.0.1:%d/h1" % (PASSWORD, closed_port())}
    output = run_play(
        ({"lockstep.release.smoke": {"hosts": hosts, "version": "2.1.0", "checks": [check]}}, [
            "out is failed",
            "'user:********@127.0.0.1:' in out.msg and '/h1/version?token=********: HTTP 500' in out.msg",
            "'?token=********' in out.lockstep_gate.halted[0].message",
            "'?token=********' in out.lockstep_gate.hosts.h1['version with a token']",
        ]),
        ({"lockstep.release.smoke": {"hosts": refused, "version": "2.1.0", "checks": [check]}}, [
            "out is failed",
            "'user:********@127.0.0.1:' in out.msg and '/h1/version?token=********: ' in out.msg",
        ]),
    )
    assert "case 2 holds" in output
    assert no_secret_in(output), [line for line in output.splitlines() if not no_secret_in(line)]


def test_a_question_mark_outside_a_url_is_left_alone():
    # A refusal's own words must survive the scrubbing ("did you mean lockstep_waves?").
    from ansible_collections.lockstep.release.plugins.plugin_utils.http import safe_text

    text = "unknown variable(s): lockstep_wave (did you mean lockstep_waves?); what? really?"
    assert safe_text(text) == text
