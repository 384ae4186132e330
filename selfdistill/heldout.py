"""The held-out set as a stage sees it: problems loaded (plus a declared, seeded MBPP share), errata and
exclusions applied, the release-date window enforced, the 200-problem minimum named, and provenance
recorded (file sha256, the MBPP share's ids, what was left out and why), so results can show exactly
what they were computed on.

The MBPP share (`heldout.mbpp_share`, `heldout.mbpp_seed`) is how the embedded default meets the
strategy's 200-problem minimum: HumanEval's 164 plus 60 of MultiPL-E's 397 MBPP problems, picked by a
seeded split that keeps near-duplicate prompts together. The same ids are taken out of an "mbpp" prompt
pool before sampling (`selfdistill.pool.load_pool(..., reserved=...)`), and the pool's contamination check
then runs against the whole held-out set, share included.

A held-out problem dated outside the declared window is refused unless it is excluded, through the
same refusal as pool/held-out overlap (`tasks.contamination.refuse_if_contaminated`). A set below the
minimum is not refused here (a user's own set may simply be smaller): `check` names it as the
`heldout-below-200` anti-pattern and every verdict on it is stamped (docs/decision-rule.md).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from selfdistill.antipatterns import below_minimum
from selfdistill.errors import DataError
from selfdistill.rundir import file_sha256
from selfdistill.tasks.contamination import DEFAULT_N, check_contamination, refuse_if_contaminated
from selfdistill.tasks.errata import Exclusion, apply_errata, load_errata
from selfdistill.tasks.humaneval import shipped_path
from selfdistill.tasks.problem import Problem
from selfdistill.tasks.registry import MIN_HELDOUT, load_task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeldoutSet:
    problems: list[Problem]
    excluded: list[Exclusion] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    @property
    def reserved_pool_ids(self) -> list[str]:
        """Ids a prompt pool must not contain: the held-out MBPP share."""
        return list((self.provenance.get("mbpp_share") or {}).get("ids", []))


def load_heldout(
    task: str,
    errata: str | Path | None = None,
    exclude: Sequence[str] = (),
    window_start: dt.date | None = None,
    window_end: dt.date | None = None,
    *,
    mbpp_share: int = 0,
    mbpp_seed: int = 0,
    ngram: int = DEFAULT_N,
) -> HeldoutSet:
    problems = load_task(task)
    share = None
    if mbpp_share:
        extra, share = mbpp_heldout_share(mbpp_share, mbpp_seed, ngram)
        clash = sorted({p.task_id for p in problems} & {p.task_id for p in extra})
        if clash:
            raise DataError(f"heldout.task {task!r} already has the MBPP ids {clash[:5]}; set heldout.mbpp_share = 0")
        problems = problems + extra
    excluded: list[Exclusion] = []
    if errata:
        problems, excluded = apply_errata(problems, load_errata(Path(errata)))
    problems, by_spec = _apply_exclude(problems, exclude)
    excluded += by_spec
    if window_start or window_end:
        report = check_contamination([], problems, window_start=window_start, window_end=window_end)
        refuse_if_contaminated(report)
    small = below_minimum(len(problems))
    if small:
        log.warning(small.line().strip())
    provenance = {
        "task": task,
        "task_sha256": file_sha256(shipped_path() if task.lower() == "humaneval" else Path(task)),
        "n_problems": len(problems),
        "min_problems": MIN_HELDOUT,
        "meets_min_problems": small is None,
        **({"mbpp_share": share} if share else {}),
        "excluded": [{"task_id": e.task_id, "reason": e.reason} for e in excluded],
        "release_window": [str(window_start) if window_start else None, str(window_end) if window_end else None],
    }
    return HeldoutSet(problems, excluded, [small.line().strip()] if small else [], provenance)


def mbpp_heldout_share(n: int, seed: int, ngram: int = DEFAULT_N) -> tuple[list[Problem], dict]:
    """`n` MBPP problems picked by a seeded split that keeps near-duplicate prompts on one side, and
    their record (ids, the ids' sha256, the file's sha256, seed)."""
    from selfdistill.pool import mbpp
    from selfdistill.pool.split import ids_digest, near_duplicate_groups, split_ids

    path = mbpp.mbpp_path()
    problems = mbpp.load_mbpp(path)
    if not 0 < n < len(problems):
        raise DataError(f"heldout.mbpp_share = {n}: pick between 1 and {len(problems) - 1} of the {len(problems)} "
                        "MBPP problems (the rest stay in the prompt pool)")
    ids = [p.task_id for p in problems]
    held, _ = split_ids(ids, n / len(ids), seed, near_duplicate_groups(problems, ngram))
    chosen = set(held)
    record = {"n": len(held), "seed": seed, "n_mbpp": len(ids), "file_sha256": mbpp.SHA256,
              "ids_sha256": ids_digest(held), "ids": held, "ngram": ngram}
    return [p for p in problems if p.task_id in chosen], record


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
