# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release ledger: hash-chained JSON Lines records, shared by the ``lockstep.release.ledger`` callback and
``bin/lockstep``.

Pure functions plus one small append-only writer; stdlib only.

A record is a JSON object with at least ``seq`` (0, 1, 2, ... in file order), ``prev`` (the ``hash`` of the
previous record; ``GENESIS`` for the first), ``event`` and ``hash``. ``hash`` is the sha256 (hex) of the canonical
JSON of the record without its ``hash`` key (sorted keys, no whitespace, UTF-8), so it covers ``seq`` and ``prev``:
a deleted, reordered, inserted or edited line breaks the chain at that line.

With a key (:func:`load_key`: ``$LOCKSTEP_LEDGER_KEY``, else the file ``$LOCKSTEP_LEDGER_KEY_FILE``), the chain is
*keyed*: ``hash`` is the HMAC-SHA256 of the same bytes with that key, and the first record says so (``"mac":
"hmac-sha256"``, never the key). Whoever can write the ledger but has no key cannot rewrite its history; with a
key configured an unkeyed ledger fails (no downgrade), and a keyed ledger does not verify without the key.

The chain alone cannot tell a ledger whose tail was cut off from a run that was killed. An *anchor* (a small JSON
file outside the ledger directory, rewritten atomically after every append) holds the ledger's head (``seq`` and
``hash`` of its last record): :func:`check_anchor` reports a ledger with fewer records than its anchor as truncated.
The anchor is looked up where the configuration says (:func:`anchor_dir`, :func:`anchor_path`), never where the
ledger says: the path its first record names is information only.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import hmac
import json
import os
import re
import stat

FORMAT_VERSION = 1
GENESIS = "0" * 64
DIR_MODE = 0o700
FILE_MODE = 0o600
ANCHOR_DIR_ENV = "LOCKSTEP_LEDGER_ANCHOR_DIR"
DEFAULT_ANCHOR_DIR = os.path.join("~", ".local", "state", "lockstep", "anchors")
KEY_ENV = "LOCKSTEP_LEDGER_KEY"
KEY_FILE_ENV = "LOCKSTEP_LEDGER_KEY_FILE"
MAC = "hmac-sha256"  # the ``mac`` of the first record of a keyed ledger
MIN_KEY_LENGTH = 16  # bytes
REDACTED = "********"
LEDGER_SUFFIX = ".jsonl"
# The last record of a finished ledger: a run's release_finished, or a one-record operator action (bin/lockstep lock
# break) that has no run around it.
COMPLETE_EVENTS = ("release_finished", "lock_broken")
DEFAULT_SECRET_PATTERNS = (
    "*password*", "*passwd*", "*secret*", "*token*", "*private_key*", "*api_key*", "*apikey*", "*passphrase*",
    "*credential*", "vault_*",
)


def _json_default(value):
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    try:
        return str(value)
    except Exception:  # a vault-encrypted value that cannot be decrypted here: never its ciphertext or an error
        return REDACTED


def plain(value):
    """Return ``value`` as plain JSON data (str/int/float/bool/None/list/dict), stringifying anything else."""
    return json.loads(json.dumps(value, default=_json_default, ensure_ascii=False))


def canonical(record):
    """Canonical bytes of a record: sorted keys, compact separators, UTF-8."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default).encode("utf-8")


def record_hash(record, key=None):
    """Hex digest of the canonical record without its ``hash`` key: sha256, or HMAC-SHA256 with ``key`` (bytes)."""
    body = canonical({k: v for k, v in record.items() if k != "hash"})
    if key is not None:
        return hmac.new(key, body, hashlib.sha256).hexdigest()
    return hashlib.sha256(body).hexdigest()


def seal(record, seq, prev, key=None):
    """Return a copy of ``record`` with ``seq``, ``prev`` and ``hash`` set; with ``key``, the first record (``seq``
    0) says the chain is keyed (``mac``) and ``hash`` is an HMAC."""
    sealed = dict(plain(record))
    sealed["seq"] = seq
    sealed["prev"] = prev
    sealed.pop("hash", None)
    if seq == 0:
        sealed.pop("mac", None)  # only the writer says whether the chain is keyed
        if key is not None:
            sealed["mac"] = MAC
    sealed["hash"] = record_hash(sealed, key)
    return sealed


def load_key(key=None, key_file=None):
    """The ledger key (bytes): ``key`` (text) when set, else the content of the file ``key_file``, surrounding
    whitespace stripped from either; None when neither is set (an unkeyed chain). Raises ValueError for an
    unreadable key file or a key shorter than ``MIN_KEY_LENGTH`` bytes."""
    if key:
        data = (key.encode("utf-8") if isinstance(key, str) else bytes(key)).strip()
        source = "the ledger key"
    elif key_file:
        try:
            with open(os.path.expanduser(key_file), "rb") as f:
                data = f.read().strip()
        except OSError as ex:
            raise ValueError(f"cannot read the ledger key file {key_file}: {ex.strerror or ex}") from ex
        source = f"the ledger key in {key_file}"
    else:
        return None
    if len(data) < MIN_KEY_LENGTH:
        raise ValueError(f"{source} is shorter than {MIN_KEY_LENGTH} bytes")
    return data


def configured_key(environ=None):
    """The key the environment configures (``$LOCKSTEP_LEDGER_KEY``, else the file ``$LOCKSTEP_LEDGER_KEY_FILE``),
    or None; raises ValueError like :func:`load_key`."""
    env = os.environ if environ is None else environ
    return load_key(env.get(KEY_ENV), env.get(KEY_FILE_ENV))


def line_of(record):
    """The JSON Lines line (bytes, newline-terminated) written for a sealed record."""
    return canonical(record) + b"\n"


class VerifyResult:
    """Outcome of :func:`verify`: ``ok``, ``records`` (count of good records), ``bad_seq`` / ``bad_line`` (1-based
    line number) and ``reason`` of the first bad record, and ``complete`` (the last record is ``release_finished``).
    ``mac`` is the chain's mode (``hmac-sha256`` for a keyed ledger, else None); ``no_key`` is set when a keyed
    ledger could not be verified for want of a key, ``downgraded`` when an unkeyed ledger met a configured key."""

    def __init__(self, ok, records, bad_seq=None, bad_line=None, reason=None, complete=False, last_event=None,
                 hashes=None, anchor=None, events=None, mac=None, no_key=False, downgraded=False):
        self.hashes = hashes or []  # hash of each good record, by seq
        self.events = events or []  # event of each good record, by seq
        # the ``anchor`` key of the first record: where the run says it kept the ledger's head. Information only:
        # never used to find the anchor (a forger would name his own).
        self.anchor = anchor
        self.mac = mac
        self.no_key = no_key
        self.downgraded = downgraded
        self.ok = ok
        self.records = records
        self.bad_seq = bad_seq
        self.bad_line = bad_line
        self.reason = reason
        self.complete = complete
        self.last_event = last_event

    def __repr__(self):
        return f"VerifyResult({self.__dict__!r})"


def verify_lines(lines, key=None):
    """Check the chain of an iterable of raw lines (bytes or str). Returns a :class:`VerifyResult`.

    ``key`` (bytes, see :func:`load_key`) is the configured key: a keyed ledger (its first record's ``mac``) is
    verified with it and fails without it; with a key, an unkeyed ledger fails (a keyed one rewritten without the
    key)."""
    prev = GENESIS
    count = 0
    last_event = None
    hashes = []
    events = []
    anchor = None
    mac = None
    for lineno, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError:
                return VerifyResult(False, count, count, lineno, "line is not UTF-8")
        if not raw.endswith("\n"):
            return VerifyResult(False, count, count, lineno, "line is not newline-terminated (torn or appended write)")
        try:
            rec = json.loads(raw)
        except ValueError as exc:
            return VerifyResult(False, count, count, lineno, f"line is not valid JSON: {exc}")
        if not isinstance(rec, dict):
            return VerifyResult(False, count, count, lineno, "line is not a JSON object")
        seq = rec.get("seq")
        if seq != count:
            return VerifyResult(False, count, count, lineno,
                                f"sequence number is {seq!r}, expected {count} (record deleted, inserted or "
                                "reordered)")
        if rec.get("prev") != prev:
            return VerifyResult(False, count, count, lineno,
                                "prev hash does not match the previous record (record deleted, inserted or reordered)")
        if count == 0:
            # The first record says whether the chain is keyed; its own MAC covers that word.
            anchor = rec.get("anchor")
            mac = rec.get("mac")
            if mac is not None and mac != MAC:
                return VerifyResult(False, 0, 0, lineno, f"unknown chain mode mac={mac!r}", anchor=anchor, mac=mac)
            if mac and key is None:
                return VerifyResult(False, 0, 0, lineno, f"keyed ledger ({mac}): no key to verify its MAC (set "
                                    f"${KEY_ENV} or ${KEY_FILE_ENV}, or give --key-file)", anchor=anchor, mac=mac,
                                    no_key=True)
            if not mac and key is not None:
                return VerifyResult(False, 0, 0, lineno, "unkeyed ledger but a key is configured: a keyed ledger "
                                    "rewritten without the key, or a ledger written without one (unset the key to "
                                    "check it as a plain chain)", anchor=anchor, downgraded=True)
        digest = rec.get("hash")
        expected = record_hash(rec, key if mac else None)
        if not isinstance(digest, str) or not hmac.compare_digest(digest.encode("utf-8"), expected.encode("ascii")):
            what = "record MAC does not match its content (record edited or forged, or keyed with another key)" \
                if mac else "record hash does not match its content (record edited)"
            return VerifyResult(False, count, count, lineno, what, anchor=anchor, mac=mac)
        prev = digest
        hashes.append(prev)
        events.append(rec.get("event"))
        last_event = rec.get("event")
        count += 1
    if count == 0:
        return VerifyResult(False, 0, 0, 1, "ledger is empty")
    return VerifyResult(True, count, complete=(last_event in COMPLETE_EVENTS), last_event=last_event, hashes=hashes,
                        anchor=anchor, events=events, mac=mac)


def verify(path, key=None):
    """Verify the ledger at ``path`` (with ``key``, see :func:`verify_lines`). Returns a :class:`VerifyResult`
    (``bad_seq`` is the first bad record)."""
    with open(path, "rb") as f:
        return verify_lines(f.read().splitlines(keepends=True), key=key)


def read_records(path):
    """All records of a ledger as dicts (raises ValueError on a line that is not JSON)."""
    records = []
    with open(path, "rb") as f:
        for raw in f:
            if raw.strip():
                records.append(json.loads(raw.decode("utf-8")))
    return records


def newest_ledger(directory):
    """Path of the most recently modified ``*.jsonl`` file in ``directory`` or None."""
    try:
        names = [n for n in os.listdir(directory) if n.endswith(LEDGER_SUFFIX)]
    except OSError:
        return None
    if not names:
        return None
    paths = [os.path.join(directory, n) for n in names]
    return max(paths, key=lambda p: (os.stat(p).st_mtime_ns, p))


def private_dir(directory, tighten=True):
    """Create ``directory`` (and its parents) if missing, mode 0700 whatever the umask: ledgers and anchors are for
    their owner only. An existing directory this user owns is tightened to 0700 too (``tighten``), unless it is a
    shared sticky directory such as ``/tmp``."""
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=DIR_MODE, exist_ok=True)
        os.chmod(directory, DIR_MODE)
        return
    if not tighten:
        return
    st = os.stat(directory)
    if st.st_uid == os.geteuid() and not st.st_mode & stat.S_ISVTX and stat.S_IMODE(st.st_mode) != DIR_MODE:
        os.chmod(directory, DIR_MODE)


def private_file(path, flags=os.O_WRONLY | os.O_CREAT | os.O_EXCL):
    """Open ``path`` with ``flags`` and mode 0600, set again with ``fchmod`` (the umask can only take bits away, an
    existing file keeps its mode otherwise). Returns the descriptor."""
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd


class LedgerWriter:
    """Append-only writer: every :meth:`append` writes one whole line with a single ``write(2)`` on an
    ``O_APPEND`` descriptor, then ``fsync``. The directory is fsynced once when the file is created. The directory is
    made 0700 (an existing one only with ``private_directory``: not a shared one such as ``$TMPDIR``) and the file
    0600.

    With ``anchor`` (a path outside the ledger's directory), the ledger's head is written there after every append
    (:func:`write_anchor`); ``anchor_error`` holds the first error doing so (the ledger itself goes on). With ``key``
    (bytes, see :func:`load_key`) the chain is keyed (:func:`seal`)."""

    def __init__(self, path, fsync=True, anchor=None, private_directory=True, key=None):
        self.path = path
        self.seq = 0
        self.prev = GENESIS
        self._key = key
        self._fsync = fsync
        self.anchor = anchor
        self.anchor_error = None
        directory = os.path.dirname(os.path.abspath(path))
        private_dir(directory, tighten=private_directory)
        self._fd = private_file(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND)
        if fsync:
            dfd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def append(self, record):
        sealed = seal(record, self.seq, self.prev, self._key)
        data = line_of(sealed)
        end = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(f"short write to ledger {self.path} ({written} of {len(data)} bytes)")
            if self._fsync:
                os.fsync(self._fd)
        except OSError:
            # never leave a torn line behind: cut the file back to the last whole record
            try:
                os.ftruncate(self._fd, end)
            except OSError:
                pass
            raise
        self.seq += 1
        self.prev = sealed["hash"]
        if self.anchor is not None:
            try:
                write_anchor(self.anchor, self.path, sealed["seq"], sealed["hash"], fsync=self._fsync)
            except OSError as ex:
                if self.anchor_error is None:
                    self.anchor_error = f"cannot write the anchor {self.anchor}: {ex}"
        return sealed

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# --- anchors -----------------------------------------------------------------------------------------------------

def anchor_dir(configured=None):
    """The anchor directory: ``configured``, else ``$LOCKSTEP_LEDGER_ANCHOR_DIR``, else
    ``~/.local/state/lockstep/anchors``; None when set to an empty string (anchoring off)."""
    value = configured if configured is not None else os.environ.get(ANCHOR_DIR_ENV, DEFAULT_ANCHOR_DIR)
    if not value:
        return None
    return os.path.abspath(os.path.expanduser(value))


def anchor_path(directory, ledger_path):
    """Where the anchor of ``ledger_path`` lives in ``directory``: keyed by the ledger's real path (a hash of it,
    plus the file name for people)."""
    real = os.path.realpath(ledger_path)
    digest = hashlib.sha256(real.encode("utf-8")).hexdigest()[:16]
    return os.path.join(directory, f"{digest}-{os.path.basename(real)}.anchor.json")


def write_anchor(path, ledger_path, seq, head, fsync=True):
    """Replace the anchor at ``path`` atomically (a 0600 temporary file renamed over it) with the ledger's head."""
    directory = os.path.dirname(path)
    private_dir(directory)
    tmp = f"{path}.{os.getpid()}.tmp"
    data = json.dumps({"ledger": os.path.realpath(ledger_path), "seq": seq, "hash": head, "records": seq + 1},
                      sort_keys=True).encode("utf-8") + b"\n"
    fd = private_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        os.write(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_anchor(path):
    """The anchor at ``path`` as a dict, or None when there is none; raises ValueError when it is unreadable."""
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as ex:
        raise ValueError(f"anchor {path} unreadable: {ex}") from ex
    if not isinstance(data, dict) or not isinstance(data.get("seq"), int) or not isinstance(data.get("hash"), str):
        raise ValueError(f"anchor {path} is not an anchor (seq, hash)")
    return data


class AnchorResult:
    """Outcome of :func:`check_anchor`: ``state`` is ``anchored`` (the ledger ends at its anchor's head),
    ``behind`` (one record after the head: a run stopped between its ledger and anchor writes), ``unanchored`` (no
    anchor is expected and none was found: a cut tail is not detectable), or a failure: ``truncated``, ``diverged``,
    ``extended``, ``missing``, ``unreadable``. ``path`` is the anchor looked at, ``recorded`` the path the ledger's
    first record names (information only)."""

    OK_STATES = ("anchored", "behind", "unanchored")

    def __init__(self, state, message, path=None, recorded=None):
        self.state, self.message, self.path, self.recorded = state, message, path, recorded

    @property
    def ok(self):
        return self.state in self.OK_STATES

    def __repr__(self):
        return f"AnchorResult({self.state!r}, {self.message!r})"


def check_anchor(result, ledger_path, anchor=None, directory=None):
    """Check a verified ledger (``result`` of :func:`verify`) against its anchor: ``anchor`` (a path the operator
    gives) when given, else the one the anchor directory (``directory``, see :func:`anchor_dir`) holds for
    ``ledger_path``. Never the anchor the ledger names: a forged ledger would name a forged anchor.

    No anchor is a failure (``missing``) when one is expected: ``anchor`` was given, the anchor directory exists
    (anchors are kept on this controller), or the ledger says it was anchored. Otherwise it is ``unanchored``."""
    base = anchor_dir(directory)
    path = anchor or (anchor_path(base, ledger_path) if base else None)
    recorded = result.anchor if isinstance(result.anchor, str) and result.anchor else None
    note = ""
    if recorded and recorded != path:
        note = f" (the ledger names the anchor {recorded}: not used)"
    if path is None:
        return AnchorResult("unanchored", f"unanchored (anchoring off){note}: a cut tail would not be detected",
                            recorded=recorded)
    try:
        data = read_anchor(path)
    except ValueError as ex:
        return AnchorResult("unreadable", str(ex), path, recorded)
    if data is None:
        if anchor:
            return AnchorResult("missing", f"the anchor {path} given with --anchor does not exist", path, recorded)
        if os.path.isdir(base):
            return AnchorResult("missing", f"no anchor at {path}, yet anchors are kept in {base}: this ledger's was "
                                           f"removed, or the ledger was moved or copied (give its anchor with "
                                           f"--anchor), or written with anchoring off{note}", path, recorded)
        if recorded:
            return AnchorResult("missing", f"no anchor at {path} (no anchor directory {base}), but the ledger says it "
                                           f"was anchored{note}: set the anchor directory "
                                           f"(${ANCHOR_DIR_ENV}) or give its anchor with --anchor", path, recorded)
        return AnchorResult("unanchored", f"unanchored (no anchor at {path}): a cut tail would not be detected",
                            path, recorded)
    seq, head = data["seq"], data["hash"]
    records = result.records
    if records <= seq:
        return AnchorResult("truncated", f"truncated: the anchor {path} holds record seq {seq} but the ledger ends "
                                         f"at seq {records - 1} ({seq + 1 - records} record(s) missing from its "
                                         "tail)", path, recorded)
    if result.hashes[seq] != head:
        return AnchorResult("diverged", f"record seq {seq} differs from the anchor {path} (the ledger was rewritten "
                                        "from that record or before)", path, recorded)
    if records == seq + 1:
        return AnchorResult("anchored", f"anchored at seq {seq}{note}", path, recorded)
    finished = seq < len(result.events) and result.events[seq] in COMPLETE_EVENTS
    if records == seq + 2 and not finished:
        return AnchorResult("behind", f"anchored at seq {seq}, one record after it (a run stopped between writing "
                                      f"the ledger and its anchor){note}", path, recorded)
    if finished:
        return AnchorResult("extended", f"{records - seq - 1} record(s) after the anchored head seq {seq} of {path}, "
                                        f"a {result.events[seq]} that ended the ledger (nothing is written after it)",
                            path, recorded)
    return AnchorResult("extended", f"{records - seq - 1} records after the anchored head seq {seq} of {path} (not "
                                    "written by the run that kept the anchor)", path, recorded)


# --- secrets -----------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=16)
def _secret_names(patterns):
    """One compiled expression for a tuple of glob patterns (an action walks thousands of names per task)."""
    return re.compile("|".join(fnmatch.translate(str(p).lower()) for p in patterns)) if patterns else None


def is_secret_name(name, patterns):
    """True when a variable name matches one of the (case-insensitive) glob ``patterns``."""
    matcher = _secret_names(tuple(patterns))
    return matcher is not None and matcher.match(str(name).lower()) is not None


def _collect_strings(value, out):
    if isinstance(value, dict):
        for v in value.values():
            _collect_strings(v, out)
    elif isinstance(value, (list, tuple, set)):
        for v in value:
            _collect_strings(v, out)
    elif value is not None and not isinstance(value, bool):
        text = str(value)
        if len(text) >= 4:
            out.add(text)


def redact_vars(variables, patterns):
    """Return ``(redacted_copy, secret_values)``: top-level (and nested dict) keys matching ``patterns`` have their
    value replaced by ``REDACTED``; ``secret_values`` holds every string of at least 4 characters found under them."""
    secrets = set()

    def walk(value):
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if is_secret_name(k, patterns):
                    _collect_strings(v, secrets)
                    out[str(k)] = REDACTED
                else:
                    out[str(k)] = walk(v)
            return out
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        return value

    return plain(walk(variables or {})), secrets


def scrub(value, secrets):
    """Replace every occurrence of a secret value inside any string (or dict key) of ``value`` by ``REDACTED``."""
    if not secrets:
        return value
    ordered = sorted(secrets, key=len, reverse=True)

    def fix(text):
        for s in ordered:
            if s in text:
                text = text.replace(s, REDACTED)
        return text

    def walk(v):
        if isinstance(v, str):
            return fix(v)
        if isinstance(v, dict):
            return {fix(str(k)): walk(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x) for x in v]
        return v

    return walk(value)


# --- tables --------------------------------------------------------------------------------------------------------

def _cell(value):
    if value is None or value == "":
        return "-"
    text = str(value)
    return text.replace("\n", " ")


def format_table(headers, rows):
    """Plain text table, columns left-aligned and separated by two spaces; no trailing whitespace."""
    cells = [[_cell(h) for h in headers]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


SUMMARY_HEADERS = ("host", "before", "after", "phase", "result")


def format_summary(summary):
    """The end-of-run summary (deterministic: no times). ``summary`` is the ``release_finished`` record (or a dict
    with ``status``, ``version_before``, ``version_after``, ``hosts`` {host: {before, after, phase, result}},
    ``halted_by`` {gate, host, message} or None, ``ledger``)."""
    lines = ["LOCKSTEP RELEASE SUMMARY: status {}, version {} -> {}".format(
        _cell(summary.get("status")), _cell(summary.get("version_before")), _cell(summary.get("version_after")))]
    hosts = summary.get("hosts") or {}
    rows = []
    for host in sorted(hosts):
        h = hosts[host] or {}
        rows.append((host, h.get("before"), h.get("after"), h.get("phase"), h.get("result")))
    lines.append(format_table(SUMMARY_HEADERS, rows))
    halted = summary.get("halted_by")
    if halted:
        line = "halted by gate {} on host {}".format(_cell(halted.get("gate")), _cell(halted.get("host")))
        if halted.get("message"):
            line += ": {}".format(_cell(halted.get("message")))
        lines.append(line)
    else:
        lines.append("not halted by any gate")
    if summary.get("rehearsal"):
        lines.append("rehearsal: {}".format(_cell(summary["rehearsal"])))
    if summary.get("found_dead"):
        lines.append("found dead, not changed by this release (out of traffic where the load balancer confirmed "
                     "it): {}".format(", ".join(str(h) for h in summary["found_dead"])))
    if summary.get("ledger"):
        lines.append("ledger: {}".format(summary["ledger"]))
    return "\n".join(lines)


def _details(rec):
    ev = rec.get("event")
    if ev == "release_started":
        return "by {}@{} version {} playbook {} limit {}".format(
            _cell(rec.get("user")), _cell(rec.get("controller")), _cell(rec.get("version")),
            _cell(rec.get("playbook")), _cell(rec.get("limit")))
    if ev == "play_started":
        return "{} hosts {}".format(_cell(rec.get("play")), ",".join(rec.get("hosts") or []) or "-")
    if ev == "host_state":
        state = rec.get("state") or {}
        return f"version {_cell(state_version(state))}" if isinstance(state, dict) else _cell(state)
    if ev == "gate":
        text = "{} {}".format(rec.get("gate"), "passed" if rec.get("passed") else "HALTED")
        halted = rec.get("halted") or []
        if halted:
            text += " ({})".format("; ".join("{}: {}".format(h.get("host"), h.get("message")) for h in halted))
        elif rec.get("message"):
            text += ": {}".format(rec.get("message"))
        return text
    if ev == "wave":
        return "wave {}/{} {}/{} hosts done".format(
            _cell(rec.get("index")), _cell(rec.get("count")), _cell(rec.get("done")), _cell(rec.get("total")))
    if ev in ("host_failed", "host_unreachable"):
        return "{}{}: {}".format(rec.get("task"), " (ignored)" if rec.get("ignored") else "", _cell(rec.get("message")))
    if ev == "rollback_step":
        return "{}: {}".format(rec.get("task"), rec.get("status"))
    if ev == "status_reported":
        data = rec.get("data") or {}
        return "lockstep_status {}".format(_cell(data.get("lockstep_status")))
    if ev == "release_finished":
        return "status {} ({})".format(_cell(rec.get("status")), _cell(rec.get("status_source")))
    if ev == "audit":
        text = "audit {} version {}".format("passed" if rec.get("passed") else "FAILED", _cell(rec.get("version")))
        problems = rec.get("problems") or []
        if problems:
            text += " ({})".format("; ".join("{}: {}".format(p.get("host"), p.get("message")) for p in problems))
        return text
    if ev == "lock_broken":
        return "release lock {} broken by {}@{} (run {})".format(
            _cell(rec.get("path")), _cell(rec.get("user")), _cell(rec.get("controller")),
            _cell((rec.get("lock") or {}).get("run_id")))
    if ev == "ledger_error":
        return _cell(rec.get("message"))
    return ""


def format_story(records):
    """A release's story as a table, one row per record."""
    rows = []
    for rec in records:
        host = rec.get("host")
        if host is None and rec.get("event") == "gate":
            host = rec.get("reporter")
        rows.append((rec.get("seq"), rec.get("ts"), rec.get("event"), rec.get("phase"), host, _details(rec)))
    return format_table(("seq", "time", "event", "phase", "host", "details"), rows)


VERSION_KEYS = ("version", "running_version", "active_version", "current_version", "current", "running")


def state_version(state):
    """The version a ``lockstep_state`` reports: the first of ``VERSION_KEYS`` present (a nested dict's ``version``
    is used for ``current``/``running``)."""
    if not isinstance(state, dict):
        return None
    for key in VERSION_KEYS:
        value = state.get(key)
        if isinstance(value, dict):
            value = value.get("version")
        if value not in (None, ""):
            return value
    return None
