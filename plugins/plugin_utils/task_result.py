# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A TaskResult's host, task and data for lockstep's callbacks: public properties since ansible-core 2.19,
underscored before (2.16-2.18)."""

from __future__ import annotations


def host_of(result):
    host = getattr(result, "host", None)
    return host if host is not None else result._host


def task_of(result):
    task = getattr(result, "task", None)
    return task if task is not None else result._task


def data_of(result):
    """The result's data as a dict (an empty one when there is none)."""
    data = getattr(result, "result", None)
    if not isinstance(data, dict):
        data = getattr(result, "_result", None)
    return data if isinstance(data, dict) else {}
