"""One probe's outcome and the rule that turns a base/arm pair of numbers, and the CI of their change,
into pass, watch or alert.

Every change is signed arm minus base: `absolute` = arm - base, `relative` = (arm - base) / max(|base|,
floor) (the floor keeps a base of 0 from dividing by zero). `direction` says which side alerts: `rise`,
`drop`, or `either`. The change carries a paired bootstrap CI over prompts (`uncertainty`):
  alert   the whole CI lies beyond the tolerance (the drift is there, at 95 % confidence)
  watch   only the point estimate does (shown everywhere, blocks nothing)
  pass    otherwise; a change equal to its threshold is not beyond it

Not here: what the numbers measure (`probes`, `safety`), their CIs (`uncertainty`), or which
thresholds apply (`run`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from selfdistill.battery.uncertainty import Change
    from selfdistill.spec import BatterySpec

_ROUNDOFF = 1e-12  # a change equal to its threshold is not beyond it despite float error


class Family(str, Enum):
    DIVERSITY = "diversity"
    LENGTH = "length"
    DIVERSITY_AT_K = "diversity-at-k"
    STYLE = "style"
    SAFETY = "safety"


class ProbeStatus(str, Enum):
    PASS = "pass"
    WATCH = "watch"
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
    ci_low: float | None = None  # paired bootstrap CI of `change`
    ci_high: float | None = None
    n_units: int = 0  # prompts resampled for the CI
    unit: str = "problem"

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "family": self.family.value,
            "value": self.value,
            "base_value": self.base_value,
            "change": self.change,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n_units": self.n_units,
            "unit": self.unit,
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


def beyond(x: float, threshold: float, direction: Direction) -> bool:
    """Does a change `x` lie beyond the tolerance in the alerting direction?"""
    if direction is Direction.RISE:
        return x > threshold + _ROUNDOFF
    if direction is Direction.DROP:
        return -x > threshold + _ROUNDOFF
    return abs(x) > threshold + _ROUNDOFF


def judge(change: float, ci_low: float | None, ci_high: float | None, threshold: float,
          direction: Direction) -> ProbeStatus:
    """ALERT: the whole CI beyond the tolerance; WATCH: only the point estimate; PASS otherwise."""
    whole = ci_low is not None and ci_high is not None and (
        (direction is not Direction.DROP and ci_low > threshold + _ROUNDOFF)
        or (direction is not Direction.RISE and -ci_high > threshold + _ROUNDOFF)
    )
    if whole:
        return ProbeStatus.ALERT
    return ProbeStatus.WATCH if beyond(change, threshold, direction) else ProbeStatus.PASS


def fmt_change(x: float | None, kind: ChangeKind) -> str:
    if x is None:
        return "?"
    return f"{x:+.1%}" if kind is ChangeKind.RELATIVE else f"{x:+.3f}"


def compare(
    name: str,
    family: Family,
    change: Change | None,
    threshold: float,
    kind: ChangeKind,
    direction: Direction,
    what: str,
    *,
    unit: str = "problem",
    extra: dict | None = None,
    missing: str | None = None,
) -> ProbeResult:
    """Apply one threshold to a base/arm `Change` (value, CI); skipped when it is None (`missing` says why)."""
    if change is None:
        return skipped(name, family, kind, direction, threshold, missing or f"no {what} to measure", extra)
    status = judge(change.change, change.ci_low, change.ci_high, threshold, direction)
    ci = (f" [{fmt_change(change.ci_low, kind)}, {fmt_change(change.ci_high, kind)}]"
          if change.ci_low is not None else " (no CI: at most watch)")
    rel = " of the base" if kind is ChangeKind.RELATIVE else ""
    detail = (
        f"{what}: base {change.base:.3f} -> arm {change.arm:.3f} ({fmt_change(change.change, kind)} "
        f"{kind.value}, 95% CI{ci} over {change.n_units} {unit}s); tolerance: {_VERB[direction]} by at most "
        f"{threshold:g}{rel}; alert when the whole CI is beyond it, watch when the point estimate is"
    )
    return ProbeResult(
        name, family, change.arm, change.base, change.change, kind, direction, threshold, status, detail,
        extra or {}, change.ci_low, change.ci_high, change.n_units, unit,
    )


@dataclass(frozen=True)
class Measured:
    """What a probe's function measured: the base/arm `Change` (None: nothing to measure, `missing` says
    why), numbers kept for reading (`extra`), and `what` when the description depends on the data."""

    change: Change | None
    extra: dict = field(default_factory=dict)
    what: str | None = None
    missing: str | None = None


@dataclass(frozen=True)
class Probe:
    """One row of the battery: a probe's name and family, the function that measures its change (from the
    matched inputs; it returns a `Measured`, or a whole `ProbeResult` for a probe read by its own rule),
    the BatterySpec field holding its tolerance (None: a fixed 0), how the change is taken, which side
    alerts, what it measures and over which unit its CI resamples."""

    name: str
    family: Family
    measure: Callable[[Any], Measured | ProbeResult]
    threshold: str | None
    kind: ChangeKind
    direction: Direction
    what: str
    unit: str = "problem"

    def tolerance(self, t: BatterySpec) -> float:
        return float(getattr(t, self.threshold)) if self.threshold else 0.0

    def read(self, m: Measured, t: BatterySpec) -> ProbeResult:
        return compare(self.name, self.family, m.change, self.tolerance(t), self.kind, self.direction,
                       m.what or self.what, unit=self.unit, extra=m.extra, missing=m.missing)

    def skip(self, t: BatterySpec, reason: str, extra: dict | None = None) -> ProbeResult:
        return skipped(self.name, self.family, self.kind, self.direction, self.tolerance(t), reason, extra)
