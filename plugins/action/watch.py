# Copyright: lockstep contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for lockstep.release.watch: the post-launch watch Knight lacked.

Scrapes every host's Prometheus metrics concurrently for a while after the last wave and halts on the first
threshold breached. Values are counters since the new process started, so everything the new code did counts.
"""

from __future__ import annotations

import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.lockstep.release.plugins.plugin_utils.gates import gate_result
from ansible_collections.lockstep.release.plugins.plugin_utils.http import fan_out, request, safe_url
from ansible_collections.lockstep.release.plugins.plugin_utils.secrets import scrubbed

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:  # reported when the action runs, so ansible-doc and syntax checks work without it
    text_string_to_metric_families = None


def scrape(url):
    resp = request(url, timeout=5.0)
    if resp.status != 200:
        return None, resp.describe()
    totals = {}
    try:
        for family in text_string_to_metric_families(resp.body):
            for sample in family.samples:
                totals[sample.name] = totals.get(sample.name, 0.0) + float(sample.value)
    except ValueError as e:
        return None, "unparseable metrics at %s: %s" % (safe_url(url), e)
    return totals, None


def evaluate(threshold, totals):
    """Return a breach message or None. A metric the threshold names that the host does not expose is a breach,
    not a zero: a watch that cannot see is not a watch that passed."""
    per = threshold.get("per")
    missing = [m for m in (threshold["metric"], per) if m and m not in totals]
    if missing:
        return "%s: metric %s not exposed" % (threshold.get("name", threshold["metric"]), ", ".join(missing))
    value = totals[threshold["metric"]]
    if per:
        denominator = totals[per]
        # Too little traffic to judge a ratio yet; with none at all there is no ratio (even with min_count 0).
        if denominator <= 0 or denominator < float(threshold.get("min_count", 1)):
            return None
        value = value / denominator
    if "max" in threshold and value > float(threshold["max"]):
        return "%s = %.3g exceeds %s" % (threshold.get("name", threshold["metric"]), value, threshold["max"])
    return None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    ARGS = dict(
        halt=dict(type="bool", default=True),
        metrics_urls=dict(type="dict", required=True),
        thresholds=dict(type="list", elements="dict", default=[]),
        seconds=dict(type="float", default=0),
        interval=dict(type="float", default=2),
        gate=dict(type="str", default="watch"),
    )

    @scrubbed
    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        dummy, a = self.validate_argument_spec(argument_spec=self.ARGS)
        if text_string_to_metric_families is None:
            raise AnsibleActionFail("lockstep.release.watch needs the prometheus_client package on the controller")
        for t in a["thresholds"]:
            if "metric" not in t or "max" not in t:
                raise AnsibleActionFail("watch threshold %r needs at least 'metric' and 'max'" % (t,))
        if not a["thresholds"]:
            # Nothing to hold: a service without metrics is not made to expose them, and the ledger says so.
            return gate_result(a["gate"], {}, [], extra_msg="no thresholds: nothing watched", scrapes=0,
                               seconds=0, halt=a["halt"])
        deadline = time.monotonic() + a["seconds"]
        scrapes = 0
        while True:
            scrapes += 1
            results = fan_out(scrape, a["metrics_urls"])
            hosts, halted = {}, []
            for host, (totals, error) in sorted(results.items()):
                if error:
                    halted.append((host, "metrics scrape failed: %s" % error))
                    continue
                hosts[host] = {t.get("name", t["metric"]): evaluate(t, totals) or "ok" for t in a["thresholds"]}
                for t in a["thresholds"]:
                    breach = evaluate(t, totals)
                    if breach:
                        halted.append((host, "threshold breached during the watch: %s" % breach))
            if halted or time.monotonic() >= deadline:
                return gate_result(a["gate"], hosts, halted, scrapes=scrapes, seconds=a["seconds"], halt=a["halt"])
            time.sleep(min(a["interval"], max(0.0, deadline - time.monotonic())))
