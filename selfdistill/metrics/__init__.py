"""NUMBERS: unbiased pass@k, problem-level bootstrap CIs, paired deltas, difficulty slices.

numpy only (no torch). `summarize` turns per-sample outcome records into the metrics.json dict.
"""

from selfdistill.metrics.bootstrap import Interval, PairedDiff, bootstrap_gap, bootstrap_mean, paired_diff
from selfdistill.metrics.passk import pass_at_k
from selfdistill.metrics.slices import SliceSource, proxy_slice
from selfdistill.metrics.summary import ProblemCounts, count_outcomes, summarize

__all__ = [
    "Interval",
    "PairedDiff",
    "ProblemCounts",
    "SliceSource",
    "bootstrap_gap",
    "bootstrap_mean",
    "count_outcomes",
    "paired_diff",
    "pass_at_k",
    "proxy_slice",
    "summarize",
]
