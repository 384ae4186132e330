"""`selfdistill check SPEC`: the spec validated whole, then what depends on data: the held-out set
loads, its errata and exclusions apply, its dated problems sit inside the declared window, and it is
large enough (a warning below 200 problems). Every stage that recommends anything calls this first,
so no recommendation can come from an incomplete or inconsistent spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from selfdistill.heldout import HeldoutSet, load_heldout
from selfdistill.spec import Spec, load_spec


@dataclass(frozen=True)
class CheckReport:
    spec: Spec
    heldout: HeldoutSet

    @property
    def warnings(self) -> list[str]:
        return list(self.heldout.warnings)

    @property
    def summary(self) -> str:
        h, d = self.heldout, self.spec.diagnostics
        excluded = f", {len(h.excluded)} excluded" if h.excluded else ""
        return (
            f"held-out {self.spec.heldout.task}: {len(h.problems)} problems{excluded}; "
            f"n={d.n}, k={d.k}, gap threshold {d.gap_threshold_pp:g} pp; "
            f"budget {self.spec.gpu_hours_total:g} GPU-hours; comparator {self.spec.comparator.kind.value}"
        )


def check_spec(path: str | Path) -> CheckReport:
    spec = load_spec(path)
    h = spec.heldout
    heldout = load_heldout(
        h.task, errata=h.errata, exclude=h.exclude,
        window_start=h.release_window_start, window_end=h.release_window_end,
    )
    return CheckReport(spec, heldout)
