"""A reproducible, disjoint split of one task into a prompt pool and the rest (`split:<task>` pools).

The task's ids are sorted (so the split does not depend on file order), shuffled with
`random.Random(seed)`, and the first round(fraction x N) go to the pool; the rest stay available as the
held-out set. Same ids, fraction and seed: same split, on any machine and Python 3.11+. Both sides are
recorded by the sha256 of their sorted ids, so a run's provenance pins exactly which problems were
trained on and which were measured.

Not here: loading the task (`selfdistill.tasks.registry.load_task`), removing the pool side from a
held-out set (the caller does that with `PromptPool.exclude_from_heldout`).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from pathlib import Path

from selfdistill.errors import DataError
from selfdistill.tasks.registry import NAMED


def split_ids(task_ids: Sequence[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(pool ids, rest ids), each in the order of `task_ids`; the pool holds round(fraction x N) ids."""
    check_fraction(fraction)
    if len(set(task_ids)) != len(task_ids):
        raise DataError("the task to split has duplicate task ids; every id must be unique")
    order = sorted(task_ids)
    random.Random(seed).shuffle(order)
    n_pool = round(fraction * len(order))
    if n_pool == 0 or n_pool == len(order):
        raise DataError(
            f"split fraction {fraction} of {len(order)} problems leaves "
            f"{'no pool' if n_pool == 0 else 'nothing held out'}; pick a fraction that keeps at least one "
            "problem on each side (or a larger task)"
        )
    chosen = set(order[:n_pool])
    return [i for i in task_ids if i in chosen], [i for i in task_ids if i not in chosen]


def check_fraction(fraction: float) -> None:
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction < 1:
        raise DataError(
            f"split fraction is {fraction!r}; it is the share of the task that goes to the prompt pool "
            "and must lie strictly between 0 and 1, e.g. 0.5"
        )


def ids_digest(ids: Sequence[str]) -> str:
    """sha256 of the sorted ids, one per line: names a side of a split independently of order."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


def same_task(a: str, b: str | None) -> bool:
    """Whether two task arguments name the same task: a registered name (any case) or the same file."""
    if b is None:
        return False
    if a.lower() in NAMED or b.lower() in NAMED:
        return a.lower() == b.lower()
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
