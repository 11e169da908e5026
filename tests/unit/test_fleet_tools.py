"""Fleet pieces that need no fleet: the exchange's book, traffic bounds, CLI usage errors."""

import subprocess
import threading
from pathlib import Path

import pytest

from lockstep_fleet import traffic
from lockstep_fleet.exchange import Book

REPO = Path(__file__).resolve().parents[2]



def test_exchange_book_counts_children_per_parent_across_threads():
    book = Book()

    def add(host):
        for i in range(500):
            book.add(f"P{i % 5}", host)

    threads = [threading.Thread(target=add, args=(f"h{n}",)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert book.stats() == {"parents": 5, "child_orders": 4000, "max_child_orders_per_parent": 800}
    assert book.parent("P0") == {"parent_id": "P0", "child_orders": 800, "hosts": [f"h{n}" for n in range(8)]}
    assert book.parent("nope")["child_orders"] == 0
    book.reset()
    assert book.stats() == {"parents": 0, "child_orders": 0, "max_child_orders_per_parent": 0}


@pytest.mark.parametrize("rate,seconds", [(0, 1), (traffic.MAX_RATE + 1, 1), (10, 0), (10, traffic.MAX_SECONDS + 1)])
def test_traffic_bounds(rate, seconds):
    with pytest.raises(ValueError):
        traffic.check_bounds(rate, seconds)


@pytest.mark.parametrize("args", [
    ["traffic", "--rate", "100000", "--seconds", "1"],
    ["traffic", "--rate", "10"],
    ["up", "--hosts", "129"],
    ["sshd", "h1", "reboot"],
    ["exec", "h1"],
    ["bogus"],
])
def test_cli_usage_errors_exit_2(args):
    res = subprocess.run([str(REPO / "bin" / "fleet"), *args], capture_output=True, text=True, timeout=30)
    assert res.returncode == 2, (res.stdout, res.stderr)
