"""Bounded load generator: POST /orders through HAProxy at a fixed rate, with unique parent ids."""

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

from .render import LB_URL, percentile

MAX_RATE = 500
MAX_SECONDS = 600


def check_bounds(rate, seconds):
    if not 0 < rate <= MAX_RATE:
        raise ValueError(f"rate must be in (0, {MAX_RATE}], not {rate!r}")
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"seconds must be in (0, {MAX_SECONDS}], not {seconds!r}")


def _post(url, body, timeout):
    start = time.monotonic()
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            reply = json.loads(resp.read() or b"{}")
            return True, time.monotonic() - start, reply.get("version"), None
    except urllib.error.HTTPError as exc:
        return False, time.monotonic() - start, None, f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:
        return False, time.monotonic() - start, None, type(exc).__name__


def run(rate, seconds, flag=None, url=LB_URL, timeout=5.0):
    """Send ``rate*seconds`` orders, spread evenly; return counts and latencies (ms)."""
    check_bounds(rate, seconds)
    total = max(1, int(round(rate * seconds)))
    prefix = f"T{uuid.uuid4().hex[:10]}"
    lock = threading.Lock()
    latencies, versions, errors = [], {}, {}
    counts = {"sent": 0, "succeeded": 0, "failed": 0}

    def one(i):
        body = {"id": f"{prefix}-{i}", "symbol": "ABC", "qty": 100, "flags": [flag] if flag else []}
        ok, elapsed, version, error = _post(url + "/orders", body, timeout)
        with lock:
            counts["succeeded" if ok else "failed"] += 1
            latencies.append(elapsed * 1000.0)
            if ok:
                versions[version] = versions.get(version, 0) + 1
            else:
                errors[error] = errors.get(error, 0) + 1

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=min(64, max(4, int(rate)))) as pool:
        for i in range(total):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, i)
            counts["sent"] += 1
    return {
        **counts,
        "rate": rate,
        "seconds": seconds,
        "flag": flag,
        "parent_prefix": prefix,
        "elapsed_s": round(time.monotonic() - start, 3),
        "latency_ms": {"p50": _round(percentile(latencies, 0.5)), "p99": _round(percentile(latencies, 0.99))},
        "versions": versions,
        "errors": errors,
    }


def _round(value):
    return None if value is None else round(value, 2)
