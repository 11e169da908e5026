"""lockstep.release.watch: threshold evaluation, real Prometheus scrapes, and the action in a real playbook."""

import pytest

from ansible_collections.lockstep.release.plugins.action.watch import evaluate, scrape

TOTALS = {"order_router_errors_total": 3.0, "order_router_orders_received_total": 200.0,
          "order_router_child_orders_sent_total": 1000.0}


def test_absolute_threshold():
    assert evaluate({"metric": "order_router_errors_total", "max": 5}, TOTALS) is None
    assert evaluate({"metric": "order_router_errors_total", "max": 3}, TOTALS) is None  # at the limit is fine
    assert evaluate({"metric": "order_router_errors_total", "max": 2, "name": "errors"}, TOTALS) == \
        "errors = 3 exceeds 2"
    assert evaluate({"metric": "order_router_errors_total", "max": 2}, TOTALS) == \
        "order_router_errors_total = 3 exceeds 2"


def test_ratio_threshold():
    fan_out = {"name": "children per order", "metric": "order_router_child_orders_sent_total",
               "per": "order_router_orders_received_total", "max": 1.5}
    assert evaluate(fan_out, TOTALS) == "children per order = 5 exceeds 1.5"
    assert evaluate(dict(fan_out, max=5), TOTALS) is None


def test_ratio_waits_for_enough_traffic():
    fan_out = {"metric": "order_router_child_orders_sent_total", "per": "order_router_orders_received_total",
               "max": 1.5, "min_count": 500}
    assert evaluate(fan_out, TOTALS) is None
    assert evaluate(dict(fan_out, min_count=100), TOTALS) is not None


def test_a_metric_the_host_does_not_expose_is_a_breach_not_a_zero():
    assert evaluate({"metric": "nope_total", "max": 0}, TOTALS) == "nope_total: metric nope_total not exposed"
    assert "also_missing not exposed" in evaluate(
        {"metric": "order_router_errors_total", "per": "also_missing", "max": 1, "name": "ratio"}, TOTALS)


def test_ratio_with_nothing_to_divide_by_is_no_breach_even_with_min_count_zero():
    threshold = {"metric": "order_router_errors_total", "per": "order_router_orders_received_total", "max": 0.1,
                 "min_count": 0}
    assert evaluate(threshold, {"order_router_errors_total": 2.0, "order_router_orders_received_total": 0.0}) is None


METRICS = """\
# HELP order_router_orders_received_total Parent orders accepted by POST /orders.
# TYPE order_router_orders_received_total counter
order_router_orders_received_total 10.0
# HELP order_router_child_orders_sent_total Child orders sent to the exchange.
# TYPE order_router_child_orders_sent_total counter
order_router_child_orders_sent_total{route="a"} 30.0
order_router_child_orders_sent_total{route="b"} 12.0
# HELP order_router_build_info The version this process started with.
# TYPE order_router_build_info gauge
order_router_build_info{version="2.1.0"} 1.0
"""


@pytest.fixture
def metrics(http_service):
    return http_service({"/h1/metrics": (200, METRICS),
                         "/h2/metrics": (200, METRICS.replace("} 30.0", "} 3.0")),
                         "/bad/metrics": (200, "this is { not prometheus\n")})


def test_scrape_sums_samples_per_name(metrics):
    totals, error = scrape(metrics.url + "/h1/metrics")
    assert error is None
    assert totals["order_router_orders_received_total"] == 10.0
    assert totals["order_router_child_orders_sent_total"] == 42.0
    assert totals["order_router_build_info"] == 1.0


def test_scrape_reports_http_and_parse_errors(metrics):
    assert scrape(metrics.url + "/missing/metrics") == (None, "HTTP 404")
    totals, error = scrape(metrics.url + "/bad/metrics")
    assert totals is None and error.startswith("unparseable metrics at %s/bad/metrics" % metrics.url)


def test_watch_action_halts_on_the_host_that_breaches(run_play, metrics):
    urls = {h: "%s/%s/metrics" % (metrics.url, h) for h in ("h1", "h2")}
    fan_out = {"name": "children per order", "metric": "order_router_child_orders_sent_total",
               "per": "order_router_orders_received_total", "max": 2}
    run_play(
        ({"lockstep.release.watch": {"metrics_urls": urls, "thresholds": [fan_out]}}, [
            "out is failed",
            "out.lockstep_gate.gate == 'watch'",
            "out.lockstep_gate.halted | length == 1",
            "out.lockstep_gate.halted[0].host == 'h1'",
            "out.lockstep_gate.halted[0].message == "
            "'threshold breached during the watch: children per order = 4.2 exceeds 2'",
            "out.lockstep_gate.hosts.h2['children per order'] == 'ok'",
        ]),
        ({"lockstep.release.watch": {"metrics_urls": {"h2": urls["h2"]}, "thresholds": [fan_out],
                                     "seconds": 0.5, "interval": 0.2}}, [
            "out is not failed",
            "out.lockstep_gate.scrapes >= 2",
        ]),
    )
