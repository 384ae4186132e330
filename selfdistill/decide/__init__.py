"""VERDICTS: the precondition verdict (deliverable A) as pure, table-tested functions.

The rule table lives in docs/decision-rule.md: the gap at every k (ks.py), the rule (verdict.py), its
justification (justify.py), which verdicts start the round (refuse.py), how many problems would settle an
inconclusive one (settle.py), and the measured coverage of the CIs (coverage.py).
"""

from selfdistill.decide.precondition import PreconditionReport, precondition_from_metrics
from selfdistill.decide.render import render_precondition
from selfdistill.decide.verdict import (
    Estimate,
    FailureCost,
    OtherMove,
    Rules,
    Verdict,
    VerdictKind,
    precondition_verdict,
    verdict_over_ks,
)

__all__ = [
    "Estimate",
    "FailureCost",
    "OtherMove",
    "PreconditionReport",
    "Rules",
    "Verdict",
    "VerdictKind",
    "precondition_from_metrics",
    "precondition_verdict",
    "render_precondition",
    "verdict_over_ks",
]
