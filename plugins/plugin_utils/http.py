# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Concurrent HTTP probes of the fleet, from the controller.

One probe of every host costs milliseconds from one process, against seconds for an Ansible task on every host,
so gates that only need what a service says about itself ask it directly and all at once.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor


class Response:
    def __init__(self, url, status=None, body="", error=None):
        self.url, self.status, self.body, self.error = url, status, body, error

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def describe(self):
        return self.error if self.error else "HTTP %s" % self.status


def hide(text, values):
    """``text`` with every value of ``values`` (header values of 4 or more characters, and each word of 8 or more
    characters in them, such as the token of ``Bearer <token>``) replaced by ``********``."""
    words = set()
    for value in values:
        value = str(value)
        if len(value) >= 4:
            words.add(value)
        words.update(w for w in value.split() if len(w) >= 8)
    for word in sorted(words, key=len, reverse=True):
        text = text.replace(word, "********")
    return text


def request(url, method="GET", body=None, timeout=5.0, headers=None):
    """One HTTP request. ``headers`` are sent as given (over the defaults) and never appear in the error of the
    Response (an invalid header value would otherwise be quoted by http.client)."""
    data = None
    sent = {"Accept": "application/json"}
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    extra = {str(k): str(v) for k, v in (headers or {}).items()}
    sent.update(extra)
    try:
        req = urllib.request.Request(url, data=data, method=method, headers=sent)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Response(url, resp.status, resp.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as e:
        return Response(url, e.code, e.read().decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError, ValueError) as e:
        return Response(url, error=hide("%s: %s" % (url, getattr(e, "reason", e)), extra.values()))


def fan_out(func, items, workers=64):
    """``{key: func(value)}`` for a dict of items, run concurrently."""
    items = dict(items)
    if not items:
        return {}
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        futures = {key: pool.submit(func, value) for key, value in items.items()}
        return {key: f.result() for key, f in futures.items()}
