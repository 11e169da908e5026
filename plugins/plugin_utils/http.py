# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Concurrent HTTP probes of the fleet, from the controller.

One probe of every host costs milliseconds from one process, against seconds for an Ansible task on every host,
so gates that only need what a service says about itself ask it directly and all at once.

Credentials stay with the host they are meant for: the caller's headers (a token, under whatever name) and the
URL's user and password (sent as HTTP basic authentication) follow a redirect only to the same scheme, host and
port. No URL leaves this module with its password or its query values (``safe_url``), so no message, result,
ledger record or summary quotes them.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote, urlsplit, urlunsplit

from ansible_collections.lockstep.release.plugins.module_utils.ledger import REDACTED

ACCEPT = "application/json"
DEFAULT_PORTS = {"http": 80, "https": 443}

# In free text (an exception, a message): the user information of a URL, and a URL's query (up to the end of the
# URL, less the punctuation of the sentence around it, such as the colon of "GET <url>: HTTP 500").
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^\s/?#@'\"<>]+)@")
# A "?" inside a URL (after a scheme or a path), or one that starts a key=value query: "did you mean
# lockstep_waves?" is no query.
_QUERY = re.compile(r"(?i)((?:\b[a-z][a-z0-9+.\-]*://|[^\s?#'\"<>]*/)[^\s?#'\"<>]*)?"
                    r"\?((?(1)[^\s#'\"<>]+?|[\w.\-]+=[^\s#'\"<>]*?))(?=[:,;.!)\]}]*(?:[\s#'\"<>]|$))")


def _redact_query(query):
    """Every value of a query replaced by ``********`` (a bare item, which may be a token, as a whole)."""
    return "&".join(p.split("=", 1)[0] + "=" + REDACTED if "=" in p else (REDACTED if p else p)
                    for p in query.split("&"))


def _redact_userinfo(userinfo):
    user, colon, dummy = userinfo.partition(":")
    return "%s:%s" % (user, REDACTED) if colon else REDACTED  # a user name alone is often the token itself


def safe_text(text):
    """``text`` with the password (or lone user name) and the query values of every URL in it replaced by
    ``********``: for any text that may quote a URL (an exception from urllib, a message)."""
    if not isinstance(text, str) or ("@" not in text and "?" not in text):
        return text
    text = _USERINFO.sub(lambda m: "%s%s@" % (m.group(1), _redact_userinfo(m.group(2))), text)
    return _QUERY.sub(lambda m: (m.group(1) or "") + "?" + _redact_query(m.group(2)), text)


def safe_url(url):
    """``url`` as lockstep may print or return it: the password of its user information (a lone user name as a
    whole) and every query value replaced by ``********``; the rest (the fragment too) as it was."""
    if not isinstance(url, str) or ("@" not in url and "?" not in url):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL urllib could request either; its text, redacted as free text
        return safe_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, dummy, hostport = netloc.rpartition("@")
        netloc = "%s@%s" % (_redact_userinfo(userinfo), hostport)
    query = _redact_query(parts.query) if parts.query else parts.query
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def origin(url):
    """``(scheme, host, port)`` of a URL, the default port filled in; None when it cannot be parsed."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        return scheme, (parts.hostname or "").lower(), parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None


class Response:
    def __init__(self, url, status=None, body="", error=None):
        self.url, self.status, self.body, self.error = safe_url(url), status, body, error

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


class SameOriginCredentials(urllib.request.HTTPRedirectHandler):
    """Follows redirects as urllib does, but a redirect to another scheme, host or port carries none of the
    caller's headers (a token may travel under any name) nor any credentials: only lockstep's own ``Accept``. Once
    dropped they stay dropped for the rest of the chain. User information in a ``Location`` is never used."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is None:
            return None
        target, dummy = _split_credentials(new.full_url)
        if target != new.full_url:
            new.full_url = target
        if origin(new.full_url) is None or origin(new.full_url) != origin(req.full_url):
            new.headers = {"Accept": ACCEPT}
        return new


def _split_credentials(url):
    """``(url without its user information, (user, password) or None)``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, None
    if "@" not in parts.netloc:
        return url, None
    userinfo, dummy, hostport = parts.netloc.rpartition("@")
    user, dummy, password = userinfo.partition(":")
    bare = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    return bare, (unquote(user), unquote(password))


def request(url, method="GET", body=None, timeout=5.0, headers=None):
    """One HTTP request. ``headers`` are sent as given (over the defaults), the URL's user and password as HTTP
    basic authentication (unless ``headers`` has an ``Authorization``); none of them follows a redirect to another
    origin (``SameOriginCredentials``). Neither they nor the URL's password or query values appear in the error of
    the Response (an invalid header value would otherwise be quoted by http.client, a malformed URL by urllib)."""
    data = None
    sent = {"Accept": ACCEPT}
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    extra = {str(k): str(v) for k, v in (headers or {}).items()}
    target, credentials = _split_credentials(url)
    hidden = list(extra.values())
    if credentials is not None:
        basic = "Basic " + base64.b64encode(("%s:%s" % credentials).encode()).decode()
        hidden += [basic, credentials[1] or credentials[0]]
        if not any(k.lower() == "authorization" for k in extra):
            sent["Authorization"] = basic
    sent.update(extra)
    try:
        req = urllib.request.Request(target, data=data, method=method, headers=sent)
        opener = urllib.request.build_opener(SameOriginCredentials)
        with opener.open(req, timeout=timeout) as resp:
            return Response(url, resp.status, resp.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as e:
        return Response(url, e.code, e.read().decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:  # InvalidURL, BadStatusLine
        reason = safe_text(hide(str(getattr(e, "reason", e)), hidden))
        return Response(url, error="%s: %s" % (safe_url(url), reason))


def fan_out(func, items, workers=64):
    """``{key: func(value)}`` for a dict of items, run concurrently."""
    items = dict(items)
    if not items:
        return {}
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        futures = {key: pool.submit(func, value) for key, value in items.items()}
        return {key: f.result() for key, f in futures.items()}
