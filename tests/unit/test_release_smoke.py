"""lockstep.release.smoke: placeholder substitution, and real checks against a local HTTP service."""

import pytest

from ansible_collections.lockstep.release.plugins.action.smoke import check_step, substitute

NAMES = {"host": "h1", "url": "http://10.0.0.1:8080", "lb": "http://lb:8000", "version": "2.1.0", "run": "r-7",
         "flags": ["rli", "odd"]}


def test_exact_flags_placeholder_becomes_the_list_of_flags():
    assert substitute("{flags}", NAMES) == ["rli", "odd"]
    out = substitute({"flags": "{flags}"}, NAMES)
    assert out == {"flags": ["rli", "odd"]}
    out["flags"].append("mutated")
    assert NAMES["flags"] == ["rli", "odd"]  # a copy, not the caller's list


def test_no_flags_is_an_empty_list():
    assert substitute("{flags}", dict(NAMES, flags=[])) == []


@pytest.mark.parametrize("value, expected", [
    ("{url}/orders", "http://10.0.0.1:8080/orders"),
    ("{lb}/orders", "http://lb:8000/orders"),
    ("{run}-{host}-{version}", "r-7-h1-2.1.0"),
    ("{host}{host}", "h1h1"),
    ("plain", "plain"),
    ("{unknown}", "{unknown}"),
])
def test_placeholders_in_strings(value, expected):
    assert substitute(value, NAMES) == expected


def test_substitution_reaches_into_lists_and_dicts_and_leaves_other_values():
    step = {"url": "{url}/orders", "method": "POST", "status": 200,
            "body": {"id": "{run}-{host}", "qty": 100, "flags": "{flags}", "tags": ["{version}", None, True]},
            "json": {"version": "{version}"}}
    assert substitute(step, NAMES) == {
        "url": "http://10.0.0.1:8080/orders", "method": "POST", "status": 200,
        "body": {"id": "r-7-h1", "qty": 100, "flags": ["rli", "odd"], "tags": ["2.1.0", None, True]},
        "json": {"version": "2.1.0"}}


@pytest.fixture
def order_service(http_service):
    """h1 and h2 route orders and report 2.1.0; the load balancer path does too; h3 answers 500."""
    def orders(version):
        return lambda method, path, body: (200, {"parent_id": body["id"], "child_orders": 1, "version": version})

    svc = http_service({"/h1/orders": orders("2.1.0"), "/h2/orders": orders("2.1.0"), "/lb/orders": orders("2.1.0"),
                        "/h3/orders": (500, {"error": "boom"})})
    return svc


def smoke(svc, hosts, **extra):
    checks = [{"name": "order with the new flags", "url": "{url}/orders", "method": "POST",
               "body": {"id": "{run}-{host}", "symbol": "ABC", "qty": 100, "flags": "{flags}"},
               "json": {"version": "{version}", "parent_id": "{run}-{host}"}},
              {"name": "through the load balancer", "per_host": False, "url": "{lb}/orders", "method": "POST",
               "body": {"id": "{run}-lb", "flags": "{flags}"}, "status": 200}]
    args = {"checks": checks, "hosts": {h: "%s/%s" % (svc.url, h) for h in hosts}, "lb_url": svc.url + "/lb",
            "version": "2.1.0", "flags": ["rli"], "run_id": "run9"}
    args.update(extra)
    return {"lockstep.release.smoke": args}


def test_smoke_checks_send_the_substituted_requests(run_play, order_service):
    run_play((smoke(order_service, ["h1", "h2"]), [
        "out is not failed",
        "out.lockstep_gate.gate == 'smoke'",
        "out.lockstep_gate.checks == 3",
        "out.lockstep_gate.hosts.h1['order with the new flags'] == 'ok'",
        "out.lockstep_gate.hosts.lb['through the load balancer'] == 'ok'",
    ]))
    bodies = {path: body for method, path, body in order_service.requests if method == "POST"}
    assert bodies == {
        "/h1/orders": {"id": "run9-h1", "symbol": "ABC", "qty": 100, "flags": ["rli"]},
        "/h2/orders": {"id": "run9-h2", "symbol": "ABC", "qty": 100, "flags": ["rli"]},
        "/lb/orders": {"id": "run9-lb", "flags": ["rli"]},
    }


def test_a_failing_check_halts_naming_host_and_check(run_play, order_service):
    run_play(
        (smoke(order_service, ["h1", "h3"]), [
            "out is failed",
            "out.lockstep_gate.halted | length == 1",
            "out.lockstep_gate.halted[0].host == 'h3'",
            "\"smoke check 'order with the new flags' failed: POST \" in out.msg",
            "'HTTP 500, expected HTTP 200' in out.msg",
        ]),
        (smoke(order_service, ["h1"], version="2.2.0"), [
            "out is failed",
            "\"version is '2.1.0', expected '2.2.0'\" in out.msg",
        ]),
    )


def test_retries_are_explicit_and_a_pass_on_retry_is_said(run_play, http_service):
    calls = {"n": 0}

    def flaky(method, path, body):
        calls["n"] += 1
        # Case 1's one call and case 2's first call fail; case 2's retry passes.
        return (502, {"error": "exchange unreachable"}) if calls["n"] <= 2 else (200, {"ok": True})

    svc = http_service({"/h1/health": flaky})
    check = {"name": "health", "url": "{url}/health"}
    args = {"hosts": {"h1": svc.url + "/h1"}, "version": "2.1.0"}
    run_play(
        ({"lockstep.release.smoke": dict(args, checks=[check])}, [
            "out is failed",  # strict by default: no retry
        ]),
        ({"lockstep.release.smoke": dict(args, checks=[dict(check, retries=2, delay=0.1)])}, [
            "out is not failed",
            "out.lockstep_gate.hosts.h1.health == 'ok after 1 retry'",
            "out.lockstep_gate.retried == [\"'health' passed only on retry on h1 (1 of 2 allowed)\"]",
            "'passed only on retry' in out.msg",
        ]),
    )


def test_headers_are_sent_and_never_echoed(run_play, http_service):
    token = "tok" + "en-" + "4f1e9c0d7b"  # built, so that it appears in no source line of a traceback
    echo = lambda method, path, body: (200, {"version": "9.9.9", "seen": token})  # noqa: E731 - an echo service
    svc = http_service({"/h1/admin": echo})
    check = {"name": "admin", "url": "{url}/admin", "json": {"seen": "x"},  # its message would quote the echo
             "headers": {"Authorization": "Bearer " + token, "X-Host": "{host}"}}
    args = {"hosts": {"h1": svc.url + "/h1"}, "version": "2.1.0"}
    output = run_play(
        ({"lockstep.release.smoke": dict(args, checks=[check])}, [
            "out is failed",
            "'admin' in out.msg and 'seen is ' in out.msg",
        ]),
        # a step's headers override its check's; an invalid header value is refused without quoting it
        ({"lockstep.release.smoke": dict(args, checks=[{
            "name": "steps", "headers": {"Authorization": "Bearer " + token},
            "steps": [{"url": "{url}/admin", "json": {"version": "9.9.9"}},
                      {"url": "{url}/admin", "headers": {"X-Bad": "bad\n" + token}}]}])}, [
            "out is failed",
            "'steps' in out.msg",
        ]),
    )
    assert svc.headers[0]["Authorization"] == "Bearer " + token and svc.headers[0]["X-Host"] == "h1"
    assert svc.headers[1]["Authorization"] == "Bearer " + token
    assert len(svc.headers) == 2  # the invalid header never left the controller
    assert token not in output, output


# What a real application's about page answers: the version nested, a key that itself holds a dot.
ABOUT = {"status": "ok", "build": {"release": "2.1.0", "number": 7, "tags": ["a"]}, "app.mode": "live",
         "app": {"mode": "test"}, "error": None}


@pytest.mark.parametrize("expect, problem", [
    ({"build.release": "2.1.0", "status": "ok"}, None),            # nested, beside a top-level key
    ({"build.number": "7"}, None),                                  # strings compare as before
    ({"build": {"release": "2.1.0", "number": 7, "tags": ["a"]}}, None),  # an object compared whole
    ({"app.mode": "live"}, None),                                   # the literal key wins over the path
    ({"app": {"mode": "test"}}, None),
    ({"error": None, "warning": None}, None),                       # null: null or missing
    ({"build.release": "2.2.0"}, "build.release is '2.1.0', expected '2.2.0'"),
    ({"build.commit": "abc"}, "build.commit is missing, expected 'abc'"),
    ({"status.code": "ok"}, "status.code is missing"),              # a path through a string
    ({"build.tags.0": "a"}, "build.tags.0 is missing"),             # lists are not indexed
    ({"app.mode": "test"}, "app.mode is 'live', expected 'test'"),
])
def test_json_keys_are_dotted_paths(http_service, expect, problem):
    svc = http_service({"/about": (200, ABOUT)})
    got = check_step({"url": svc.url + "/about", "json": expect}, timeout=5)
    if problem is None:
        assert got is None, got
    else:
        assert got and got.startswith(svc.url + "/about: ") and problem in got, got


def test_json_check_of_an_answer_that_is_not_an_object_fails(http_service):
    svc = http_service({"/text": (200, "2.1.0"), "/list": (200, [{"version": "2.1.0"}])})
    for path in ("/text", "/list"):
        got = check_step({"url": svc.url + path, "json": {"version": None}}, timeout=5)
        assert got and "answer is not a JSON object" in got, got


def test_a_nested_json_check_through_the_action(run_play, http_service):
    svc = http_service({"/h1/about": (200, {"app": {"version": "2.1.0"}}), "/h2/about": (200, {"app": {}})})
    check = {"name": "about", "url": "{url}/about", "json": {"app.version": "{version}"}}
    run_play(({"lockstep.release.smoke": {"checks": [check], "version": "2.1.0",
                                          "hosts": {h: "%s/%s" % (svc.url, h) for h in ("h1", "h2")}}}, [
        "out is failed",
        "out.lockstep_gate.hosts.h1.about == 'ok'",
        "out.lockstep_gate.halted | map(attribute='host') | list == ['h2']",
        "\"app.version is missing, expected '2.1.0'\" in out.msg",
    ]))
