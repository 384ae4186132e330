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


def split_ids(
    task_ids: Sequence[str], fraction: float, seed: int, groups: Sequence[Sequence[str]] = ()
) -> tuple[list[str], list[str]]:
    """(pool ids, rest ids), each in the order of `task_ids`; the pool holds round(fraction x N) ids.

    `groups`: sets of ids that must land on the same side (near-duplicate prompts: a task's own copies
    would otherwise put one on each side and contaminate the held-out set). Units (a group, or a single
    id) are shuffled, then taken in order while the pool stays at or below its target size; a unit that
    would overshoot is passed over for a later, smaller one. With no groups this is the plain split."""
    check_fraction(fraction)
    if len(set(task_ids)) != len(task_ids):
        raise DataError("the task to split has duplicate task ids; every id must be unique")
    grouped = {i: min(g) for g in groups for i in g}
    units: dict[str, list[str]] = {}
    for i in sorted(task_ids):
        units.setdefault(grouped.get(i, i), []).append(i)
    order = sorted(units)
    random.Random(seed).shuffle(order)
    n_pool = round(fraction * len(task_ids))
    if n_pool == 0 or n_pool == len(task_ids):
        raise DataError(
            f"split fraction {fraction} of {len(task_ids)} problems leaves "
            f"{'no pool' if n_pool == 0 else 'nothing held out'}; pick a fraction that keeps at least one "
            "problem on each side (or a larger task)"
        )
    chosen: set[str] = set()
    for key in order:
        if len(chosen) + len(units[key]) <= n_pool:
            chosen.update(units[key])
    if not chosen or len(chosen) == len(task_ids):
        raise DataError(f"split fraction {fraction}: near-duplicate groups leave one side empty; pick another fraction")
    return [i for i in task_ids if i in chosen], [i for i in task_ids if i not in chosen]


def near_duplicate_groups(problems, n: int) -> list[list[str]]:
    """Connected groups of a task's problems whose prompts share a word n-gram (the contamination check
    run on the task against itself); singletons are left out."""
    from selfdistill.tasks.contamination import check_contamination

    parent = {p.task_id: p.task_id for p in problems}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    report = check_contamination(problems, problems, n=n)
    for a, b in report.pairs:
        if a != b:
            parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for p in problems:
        groups.setdefault(find(p.task_id), []).append(p.task_id)
    return [sorted(g) for g in groups.values() if len(g) > 1]


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
