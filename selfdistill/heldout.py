"""The held-out set as a stage sees it: problems loaded, errata and exclusions applied, the release-date
window enforced, the small-set warning raised, and provenance recorded (file sha256, what was left out
and why), so results can show exactly what they were computed on.

A held-out problem dated outside the declared window is refused unless it is excluded, through the
same refusal as pool/held-out overlap (`tasks.contamination.refuse_if_contaminated`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from selfdistill.errors import DataError
from selfdistill.tasks.contamination import check_contamination, refuse_if_contaminated
from selfdistill.tasks.errata import Exclusion, apply_errata, load_errata
from selfdistill.tasks.humaneval import shipped_path
from selfdistill.tasks.problem import Problem
from selfdistill.tasks.registry import load_task, warn_if_small


@dataclass(frozen=True)
class HeldoutSet:
    problems: list[Problem]
    excluded: list[Exclusion] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)


def load_heldout(
    task: str,
    errata: str | Path | None = None,
    exclude: Sequence[str] = (),
    window_start: dt.date | None = None,
    window_end: dt.date | None = None,
) -> HeldoutSet:
    problems = load_task(task)
    excluded: list[Exclusion] = []
    if errata:
        problems, excluded = apply_errata(problems, load_errata(Path(errata)))
    problems, by_spec = _apply_exclude(problems, exclude)
    excluded += by_spec
    if window_start or window_end:
        report = check_contamination([], problems, window_start=window_start, window_end=window_end)
        refuse_if_contaminated(report)
    small = warn_if_small(problems)
    provenance = {
        "task": task,
        "task_sha256": _sha256(shipped_path() if task.lower() == "humaneval" else Path(task)),
        "n_problems": len(problems),
        "excluded": [{"task_id": e.task_id, "reason": e.reason} for e in excluded],
        "release_window": [str(window_start) if window_start else None, str(window_end) if window_end else None],
    }
    return HeldoutSet(problems, excluded, [small] if small else [], provenance)


def _apply_exclude(problems: list[Problem], exclude: Sequence[str]) -> tuple[list[Problem], list[Exclusion]]:
    ids = {p.task_id for p in problems}
    unknown = sorted(set(exclude) - ids)
    if unknown:
        raise DataError(
            f"heldout.exclude names {len(unknown)} ids that the held-out set does not have: "
            f"{', '.join(unknown[:10])}; fix or remove them"
        )
    drop = set(exclude)
    reason = "excluded by the spec (heldout.exclude)"
    return [p for p in problems if p.task_id not in drop], [Exclusion(i, reason) for i in exclude]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
