"""VERDICTS: the precondition verdict (deliverable A) as pure, table-tested functions.

The rule table lives in docs/decision-rule.md.
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
]
