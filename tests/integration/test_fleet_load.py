"""The fleet's own parts hold a whole fleet's burst: 200 clients at once, no reset (issue 11).

Real processes only: the exchange simulator, HAProxy and the sample service of a fleet brought up by the fixture.
Before the fix, socketserver's listen backlog of 5 made 32 concurrent orders reset connections.
"""

import http.client
import json
import threading

CLIENTS = 200


def burst(ip, port, path, body_of):
    """``CLIENTS`` connections opened at the same instant (a barrier), one POST each; -> (statuses, errors)."""
    start = threading.Barrier(CLIENTS)
    statuses, errors, lock = [], [], threading.Lock()

    def one(i):
        start.wait()
        try:
            conn = http.client.HTTPConnection(ip, port, timeout=30)
            conn.request("POST", path, json.dumps(body_of(i)), {"Content-Type": "application/json"})
            resp = conn.getresponse()
            payload = resp.read()
            with lock:
                statuses.append((resp.status, payload[:200]))
        except OSError as e:
            with lock:
                errors.append(repr(e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses, errors


def test_200_concurrent_clients_no_reset(fleet):
    fleet.up(hosts=8, version="1.0.0")
    fleet.exchange("/reset", data={})

    # The exchange alone: every host posting child orders at once.
    statuses, errors = burst("127.0.0.1", 9100, "/child",
                             lambda i: {"parent_id": f"X{i}", "host": "h1", "symbol": "ABC", "qty": 1})
    assert errors == [] and sorted({s for s, _ in statuses}) == [200], (errors[:5], statuses[:5])
    assert fleet.exchange("/stats")["parents"] == CLIENTS

    # One host's service alone (the HAProxy health checks and a whole burst land on it).
    statuses, errors = burst("127.0.0.11", 8080, "/orders",
                             lambda i: {"id": f"S{i}", "symbol": "ABC", "qty": 100, "flags": []})
    assert errors == [] and sorted({s for s, _ in statuses}) == [200], (errors[:5], statuses[:5])

    # The whole path: HAProxy -> every host -> the exchange, as a release's smoke checks and traffic use it.
    statuses, errors = burst("127.0.0.1", 8000, "/orders",
                             lambda i: {"id": f"L{i}", "symbol": "ABC", "qty": 100, "flags": []})
    assert errors == [] and sorted({s for s, _ in statuses}) == [200], (errors[:5], statuses[:5])
    stats = fleet.exchange("/stats")
    assert stats["parents"] == 3 * CLIENTS and stats["max_child_orders_per_parent"] == 1, stats
