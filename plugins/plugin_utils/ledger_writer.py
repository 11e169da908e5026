# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ledger callback's writer: where a run's records go. The ledger file first; once it cannot be created or
written, a fallback file, else stderr. It never stops the run (stopping mid-release would strand switched hosts and
the lock): it tells the run's tasks, whose plan refuses and whose forward gates halt (LOCKSTEP_LEDGER_BROKEN)."""

from __future__ import annotations

import datetime
import os
import sys
import tempfile

from ansible_collections.lockstep.release.plugins.module_utils.ledger import LedgerWriter, anchor_path, line_of, seal
from ansible_collections.lockstep.release.plugins.plugin_utils.gates import LEDGER_BROKEN_ENV

# Names this very run's ledger for its tasks (plugins/action/plan.py, the kill switch's roles): workers are forked
# from the controller's process after the callback set it.
LEDGER_FILE_ENV = "LOCKSTEP_LEDGER_FILE"


def utc_stamp():
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class StderrWriter:
    """The last resort of a ledger that cannot write anywhere: the chained records, one JSON line each, on stderr."""

    path = "stderr"
    anchor = None
    anchor_error = None

    def __init__(self, key=None):
        self.seq, self.prev = 0, "0" * 64
        self._key = key

    def append(self, record):
        sealed = seal(record, self.seq, self.prev, self._key)
        sys.stderr.write("lockstep-ledger: " + line_of(sealed).decode("utf-8"))
        sys.stderr.flush()
        self.seq += 1
        self.prev = sealed["hash"]
        return sealed


class RecordSink:
    """A run's chain of records: ``open`` the ledger, ``append`` each record (sealed and returned), whatever breaks.

    ``broken``: why the ledger could not be created or written (None while it can); ``fallback``: where the records
    went then (a file in ``$TMPDIR``, or ``stderr``).
    """

    def __init__(self, display, anchor_dir, clean=lambda value: value):
        self._display = display
        self._clean = clean  # scrubs a secret out of what the sink writes of its own (the reason it broke)
        self._anchor_dir = anchor_dir
        self._key = None
        self._anchor_warned = False
        self.writer = None
        self.broken = None
        self.fallback = None

    @property
    def path(self):
        return getattr(self.writer, "path", None)

    @property
    def seq(self):
        return getattr(self.writer, "seq", 0)

    @property
    def anchor(self):
        return getattr(self.writer, "anchor", None)

    def _new_writer(self, path, private_directory=True):
        anchor = anchor_path(self._anchor_dir, path) if self._anchor_dir else None
        return LedgerWriter(path, anchor=anchor, private_directory=private_directory, key=self._key)

    def open(self, path, key=None, key_error=None):
        """Create the ledger at ``path``, keyed with ``key``; a ledger that cannot be (``key_error``: an unusable
        key) falls back at once."""
        self._key = key
        if key_error:
            self._fall_back(f"cannot create ledger {path}: {key_error}")
        else:
            try:
                self.writer = self._new_writer(path)
            except Exception as ex:
                self._fall_back(f"cannot create ledger {path}: {ex}")

    def announce(self):
        """Tell the run's tasks which ledger is theirs (its plan checks it is this very run's), or that none is."""
        if self.broken is None and self.writer is not None:
            os.environ[LEDGER_FILE_ENV] = os.path.abspath(self.writer.path)
        else:
            os.environ.pop(LEDGER_FILE_ENV, None)

    def append(self, rec):
        if self.writer is None:
            return None
        try:
            sealed = self.writer.append(rec)
        except Exception as ex:  # disk full, file removed, ...
            return self._fall_back(f"cannot append to ledger {self.writer.path}: {ex}", rec)
        error = getattr(self.writer, "anchor_error", None)
        if error and not self._anchor_warned:
            self._anchor_warned = True
            self._display.warning(f"lockstep ledger: {error}; a cut tail of {self.writer.path} will not be detected")
        return sealed

    def _fall_back(self, message, rec=None):
        """Every record from now on in a fallback file (or on stderr), and the run's tasks told
        (LOCKSTEP_LEDGER_BROKEN): the plan refuses to start, the forward gates halt, so the rollback and finish
        still run."""
        broken, self.broken = self.writer, message
        path = os.path.join(tempfile.gettempdir(), "lockstep-ledger-fallback-%d.jsonl" % os.getpid())
        try:
            self.writer = self._new_writer(path, private_directory=False)  # $TMPDIR is shared: the file is 0600
            self.fallback = path
        except Exception:
            self.writer = StderrWriter(self._key)
            self.fallback = "stderr"
        self._display.error(f"lockstep ledger: {message} - halting the release; records continue in {self.fallback}")
        # Worker processes are forked from this one for every task: the plan and the gates read this variable.
        os.environ[LEDGER_BROKEN_ENV] = f"{message}; records continue in {self.fallback}"
        first = {"event": "ledger_fallback", "ts": (rec or {}).get("ts") or utc_stamp(),
                 "message": self._clean(message), "ledger": getattr(broken, "path", None),
                 "ledger_seq": getattr(broken, "seq", None), "ledger_prev": getattr(broken, "prev", None)}
        if getattr(self.writer, "anchor", None):
            first["anchor"] = self.writer.anchor
        self.writer.append(first)
        return self.writer.append(rec) if rec is not None else None
