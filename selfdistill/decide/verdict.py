"""The Precondition Verdict (deliverable A): is SSD the right next training move for this model?

Simple Self-Distillation (arXiv 2604.01193) fine-tunes a code model on its own raw samples. It can
only condense what the model already does sometimes: the measurable precondition is a gap between
pass@k and pass@1. `precondition_verdict` is a pure function of the measured (value, ci_low,
ci_high) triples and a small set of `Rules`; the rule table (rows R1-R6) is in
docs/decision-rule.md and every row is table-tested in tests/decide/test_verdict.py.

What this does not do: read files, compute statistics, or apply a verdict per slice (see
`selfdistill.decide.precondition`). Fractions are 0..1 here; the justification speaks pp.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import Enum
from typing import NamedTuple

from selfdistill.decide import justify
from selfdistill.decide.settle import problems_to_settle
from selfdistill.errors import DataError, SpecError


class VerdictKind(str, Enum):
    GO_SSD = "GO-SSD"
    GO_VERIFIER_AWARE_SSD = "GO-VERIFIER-AWARE-SSD"
    GO_OTHER = "GO-OTHER"
    INCONCLUSIVE = "INCONCLUSIVE"


class OtherMove(str, Enum):
    SFT_EXTERNAL = "SFT on external data or retrieval"
    REJECTION_SAMPLING = "rejection sampling"
    RL_VERIFIER = "RL with a verifier"
    DO_NOTHING = "do nothing"


class FailureCost(str, Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Estimate(NamedTuple):
    """A measured fraction and its 95% CI, all 0..1 (a gap may be negative)."""

    value: float
    ci_low: float
    ci_high: float

    @classmethod
    def of(cls, x, name: str, lowest: float = 0.0) -> Estimate:
        """From a (value, ci_low, ci_high) triple or a metrics.json entry; validated."""
        if isinstance(x, Mapping):
            x = (x.get("value"), x.get("ci_low"), x.get("ci_high"))
        try:
            est = cls(*(float(v) for v in x))
        except (TypeError, ValueError):
            raise DataError(f"{name} must be (value, ci_low, ci_high) numbers, got {x!r}") from None
        if not all(math.isfinite(v) and lowest <= v <= 1.0 for v in est):
            raise DataError(f"{name}={tuple(est)} must be fractions in [{lowest:g}, 1] (not pp)")
        if est.ci_low > est.ci_high:
            raise DataError(f"{name} has ci_low={est.ci_low} above ci_high={est.ci_high}")
        return est


@dataclass(frozen=True)
class Rules:
    """Thresholds of the rule table, fractions 0..1. Defaults are documented in docs/decision-rule.md."""

    gap_threshold: float = 0.05  # 5 pp: the smallest pass@k - pass@1 gap worth condensing
    floor: float = 0.05  # pass@k ci_high below this: the model lacks the knowledge (R1)
    ceiling: float = 0.95  # pass@1 ci_low at or above this: nothing to gain (R2)
    verifier_available: bool = False  # the prompt pool has tests that can filter samples
    failure_cost: FailureCost = FailureCost.MEDIUM  # how costly a regression is

    def __post_init__(self) -> None:
        for name in ("gap_threshold", "floor", "ceiling"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 < value < 1.0):
                raise SpecError(f"rules.{name}={value!r} must be a fraction strictly between 0 and 1 (5 pp = 0.05)")
        if self.floor >= self.ceiling:
            raise SpecError(f"rules.floor={self.floor} must be below rules.ceiling={self.ceiling}")
        try:
            object.__setattr__(self, "failure_cost", FailureCost(self.failure_cost))
        except ValueError:
            raise SpecError(f"rules.failure_cost={self.failure_cost!r} must be one of: low | medium | high") from None

    def to_json(self) -> dict:
        return {**asdict(self), "failure_cost": self.failure_cost.value}


DEFAULT_RULES = Rules()


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    other: OtherMove | None
    rule_id: str  # the row of the rule table that fired: "R1" .. "R6"
    justification: str  # one paragraph, pp
    k: int
    gap: Estimate
    pass1: Estimate
    passk: Estimate
    n_problems: int | None = None  # problems behind the gap CI, when known
    problems_needed: int | None = None  # INCONCLUSIVE only: total problems that would likely settle it

    def to_json(self) -> dict:
        return {
            "kind": self.kind.value,
            "other": self.other.value if self.other else None,
            "rule_id": self.rule_id,
            "justification": self.justification,
            "k": self.k,
            "gap": self.gap._asdict(),
            "pass1": self.pass1._asdict(),
            "passk": self.passk._asdict(),
            "n_problems": self.n_problems,
            "problems_needed": self.problems_needed,
        }


def _decide(gap: Estimate, pass1: Estimate, passk: Estimate, rules: Rules) -> tuple[str, VerdictKind, OtherMove | None]:
    """The rule table, top row first; the first row that matches fires."""
    if passk.ci_high < rules.floor:
        return "R1", VerdictKind.GO_OTHER, OtherMove.SFT_EXTERNAL
    if pass1.ci_low >= rules.ceiling:
        return "R2", VerdictKind.GO_OTHER, OtherMove.DO_NOTHING
    if gap.ci_low >= rules.gap_threshold:
        if rules.verifier_available and rules.failure_cost is FailureCost.HIGH:
            return "R4", VerdictKind.GO_VERIFIER_AWARE_SSD, None
        return "R3", VerdictKind.GO_SSD, None
    if gap.ci_high < rules.gap_threshold:
        return "R5", VerdictKind.GO_OTHER, OtherMove.SFT_EXTERNAL
    return "R6", VerdictKind.INCONCLUSIVE, None


def precondition_verdict(
    gap,
    pass1,
    passk,
    k: int,
    rules: Rules = DEFAULT_RULES,
    *,
    n_problems: int | None = None,
    n_samples_per_problem: int | None = None,
) -> Verdict:
    """The verdict from measured pass@k - pass@1 `gap`, `pass1`, `passk`, each (value, ci_low,
    ci_high) in 0..1. `n_problems` (problems behind the gap CI) lets an INCONCLUSIVE verdict say how
    many problems would settle it; `n_samples_per_problem` lets it say whether more samples help."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise DataError(f"k={k!r}: the precondition compares pass@k with pass@1, so k must be an int >= 2")
    if n_problems is not None and n_problems < 1:
        raise DataError(f"n_problems={n_problems!r} must be >= 1 when given")
    gap, pass1, passk = (
        Estimate.of(gap, "gap", lowest=-1.0),
        Estimate.of(pass1, "pass@1"),
        Estimate.of(passk, f"pass@{k}"),
    )
    rule_id, kind, other = _decide(gap, pass1, passk, rules)
    needed = None
    if kind is VerdictKind.INCONCLUSIVE and n_problems is not None:
        needed = problems_to_settle(gap, rules.gap_threshold, n_problems)
    facts = justify.Facts(gap, pass1, passk, k, rules, n_problems, n_samples_per_problem, needed)
    return Verdict(kind, other, rule_id, justify.paragraph(rule_id, facts), k, gap, pass1, passk, n_problems, needed)
