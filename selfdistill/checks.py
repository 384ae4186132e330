"""`selfdistill check SPEC`: the spec validated whole, then what depends on data: the held-out set
loads, its errata and exclusions apply, its dated problems sit inside the declared window, and it is
large enough (below 200 problems the `heldout-below-200` anti-pattern is named, as a warning; the
verdict carries the stamp). Every stage that recommends anything calls this first,
so no recommendation can come from an incomplete or inconsistent spec. A spec that contains one of
the strategy's anti-patterns (selfdistill/antipatterns.py) is refused the same way, naming each.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from selfdistill.antipatterns import find_antipatterns
from selfdistill.errors import SpecError
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
            f"held-out {self.spec.heldout.task}"
            + (f" + {self.spec.heldout.mbpp_share} MBPP" if self.spec.heldout.mbpp_share else "")
            + f": {len(h.problems)} problems{excluded}; "
            f"n={d.n}, k={d.k}, gap threshold {d.gap_threshold_pp:g} pp; "
            f"budget {self.spec.gpu_hours_total:g} GPU-hours; comparator {self.spec.comparator.kind.value}"
        )


def check_spec(path: str | Path, run_dir: Path | None = None) -> CheckReport:
    spec = load_spec(path)
    refuse_antipatterns(spec, Path(path), run_dir)
    h = spec.heldout
    heldout = load_heldout(
        h.task, errata=h.errata, exclude=h.exclude,
        window_start=h.release_window_start, window_end=h.release_window_end,
        mbpp_share=h.mbpp_share, mbpp_seed=h.mbpp_seed, ngram=spec.pool.ngram,
    )
    return CheckReport(spec, heldout)


def refuse_antipatterns(spec: Spec, path: Path, run_dir: Path | None) -> None:
    found = find_antipatterns(spec, run_dir)
    if found:
        raise SpecError(
            f"error: {path} contains {len(found)} anti-pattern{'s' if len(found) != 1 else ''} the SSD strategy "
            "refuses:\n" + "\n".join(a.line() for a in found)
        )
