"""One probe's outcome and the rule that turns a base/arm pair of numbers into pass or alert.

Every change is signed arm minus base: `absolute` = arm - base, `relative` = (arm - base) / base
(the denominator floored at `floor`, so a base of 0 does not divide by zero). `direction` says which
side alerts: `rise` when change > threshold, `drop` when -change > threshold, `either` when
|change| > threshold. A change equal to its threshold passes.

Not here: what the numbers measure (`probes`, `safety`) or which thresholds apply (`run`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

_ROUNDOFF = 1e-12  # a change equal to its threshold must pass despite float error


class Family(str, Enum):
    DIVERSITY = "diversity"
    LENGTH = "length"
    DIVERSITY_AT_K = "diversity-at-k"
    STYLE = "style"
    SAFETY = "safety"


class ProbeStatus(str, Enum):
    PASS = "pass"
    ALERT = "alert"
    SKIPPED = "skipped"


class ChangeKind(str, Enum):
    RELATIVE = "relative"
    ABSOLUTE = "absolute"


class Direction(str, Enum):
    RISE = "rise"
    DROP = "drop"
    EITHER = "either"


_VERB = {Direction.RISE: "rises", Direction.DROP: "falls", Direction.EITHER: "moves"}


@dataclass(frozen=True)
class ProbeResult:
    """One probe, JSON-ready through `to_json`. `value`/`base_value` are None when skipped."""

    name: str
    family: Family
    value: float | None
    base_value: float | None
    change: float | None
    change_kind: ChangeKind
    direction: Direction
    threshold: float | None
    status: ProbeStatus
    detail: str
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "family": self.family.value,
            "value": self.value,
            "base_value": self.base_value,
            "change": self.change,
            "change_kind": self.change_kind.value,
            "direction": self.direction.value,
            "threshold": self.threshold,
            "status": self.status.value,
            "detail": self.detail,
            "extra": self.extra,
        }


def skipped(
    name: str,
    family: Family,
    kind: ChangeKind,
    direction: Direction,
    threshold: float | None,
    reason: str,
    extra: dict | None = None,
) -> ProbeResult:
    return ProbeResult(
        name,
        family,
        None,
        None,
        None,
        kind,
        direction,
        threshold,
        ProbeStatus.SKIPPED,
        f"skipped: {reason}",
        extra or {},
    )


def compare(
    name: str,
    family: Family,
    base: float | None,
    arm: float | None,
    threshold: float,
    kind: ChangeKind,
    direction: Direction,
    what: str,
    *,
    floor: float = 0.01,
    extra: dict | None = None,
) -> ProbeResult:
    """Apply one threshold to a base/arm pair; skipped when either number is missing."""
    if base is None or arm is None:
        who = "base" if base is None else "arm"
        return skipped(name, family, kind, direction, threshold, f"no {what} for the {who} (nothing to measure)", extra)
    change = arm - base if kind is ChangeKind.ABSOLUTE else (arm - base) / max(abs(base), floor)
    breach = {Direction.RISE: change, Direction.DROP: -change, Direction.EITHER: abs(change)}[direction]
    status = ProbeStatus.ALERT if breach > threshold + _ROUNDOFF else ProbeStatus.PASS
    shown = f"{change:+.1%} relative" if kind is ChangeKind.RELATIVE else f"{change:+.3f} absolute"
    detail = (
        f"{what}: base {base:.3f} -> arm {arm:.3f} ({shown}); "
        f"alert if it {_VERB[direction]} by more than {threshold:g}{' of the base' if kind is ChangeKind.RELATIVE else ''}"
    )
    return ProbeResult(
        name, family, float(arm), float(base), float(change), kind, direction, threshold, status, detail, extra or {}
    )
