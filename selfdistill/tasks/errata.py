"""Errata: known-bad benchmark problems, kept as data with reasons (like LiveCodeBench's ERRATA.md).

An errata file is TOML:

    [[exclude]]
    task_id = "HumanEval/47"
    reason = "docstring example says 15.0; tests and canonical solution say 8.0"

`load_errata` validates the file on its own (every entry needs a task_id and a non-empty reason; no
unknown keys; no id twice); `apply_errata` checks every id against the problems it is applied to
(an unknown id is an error: a typo would otherwise exclude nothing) and returns the kept problems
and the exclusions, so that results can show what was left out and why.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from selfdistill.errors import DataError
from selfdistill.tasks.loading import require_file, show, suggest
from selfdistill.tasks.problem import Problem

_ENTRY_KEYS = frozenset({"task_id", "reason"})
_EXAMPLE = '[[exclude]]\n  task_id = "HumanEval/47"\n  reason = "why it is excluded"'


@dataclass(frozen=True)
class Exclusion:
    task_id: str
    reason: str


@dataclass(frozen=True)
class Errata:
    path: Path
    entries: tuple[Exclusion, ...]

    @property
    def task_ids(self) -> frozenset[str]:
        return frozenset(e.task_id for e in self.entries)


def load_errata(path: str | Path) -> Errata:
    """Read and validate an errata TOML file; every problem is reported at once."""
    path = Path(path)
    require_file(path, f"an errata TOML file of entries like\n  {_EXAMPLE}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, ValueError, RecursionError) as e:  # ValueError: huge ints
        raise DataError(f"{path}: not valid TOML ({type(e).__name__}: {str(e)[:120]}); entries look like\n"
                        f"  {_EXAMPLE}") from None
    errors = [
        f'unknown top-level key "{k}"{suggest(k, {"exclude"})}' for k in sorted(set(data) - {"exclude"})
    ]
    raw = data.get("exclude", [])
    if not isinstance(raw, list):
        errors.append("exclude must be an array of tables: write each entry as [[exclude]], not [exclude]")
        raw = []
    entries = _entries(raw, errors)
    if errors:
        raise DataError(
            f"{path}: {len(errors)} problem{'s' * (len(errors) != 1)} in the errata file:\n"
            + "\n".join(f"  {e}" for e in errors)
            + f"\n  each entry looks like\n  {_EXAMPLE}"
        )
    return Errata(path=path, entries=tuple(entries))


def _entries(raw: list, errors: list[str]) -> list[Exclusion]:
    entries: list[Exclusion] = []
    seen: set[str] = set()
    for i, item in enumerate(raw, start=1):
        where = f"[[exclude]] entry #{i}"
        if not isinstance(item, dict):
            errors.append(f"{where} must be a table, got {show(item)}")
            continue
        task_id, reason = item.get("task_id"), item.get("reason")
        where += f" (task_id = {show(task_id)})" if task_id is not None else ""
        errors += [
            f'{where}: unknown key "{k}"{suggest(k, _ENTRY_KEYS)}' for k in sorted(set(item) - _ENTRY_KEYS)
        ]
        if not isinstance(task_id, str) or not task_id.strip():
            errors.append(f"{where}: task_id must be a non-empty string, got {show(task_id)}")
        if not isinstance(reason, str) or not reason.strip():
            got = "nothing" if reason is None else show(reason)
            errors.append(f"{where}: reason must say why the problem is excluded, got {got}")
        if isinstance(task_id, str) and task_id in seen:
            errors.append(f"{where}: task_id {show(task_id)} is listed twice")
        if isinstance(task_id, str) and isinstance(reason, str) and task_id.strip() and reason.strip():
            seen.add(task_id)
            entries.append(Exclusion(task_id=task_id, reason=reason.strip()))
    return entries


def apply_errata(problems: list[Problem], errata: Errata) -> tuple[list[Problem], list[Exclusion]]:
    """(problems not excluded, in order; the exclusions applied). DataError names ids not in `problems`."""
    known = {p.task_id for p in problems}
    unknown = [e.task_id for e in errata.entries if e.task_id not in known]
    if unknown:
        sample = ", ".join(sorted(known)[:3])
        raise DataError(
            f"{errata.path}: {len(unknown)} task_id{'s' * (len(unknown) != 1)} not in the task set: "
            f"{', '.join(unknown)}\n  the task set has {len(known)} problems (ids like {sample}); "
            "fix the spelling or remove those entries"
        )
    excluded = errata.task_ids
    kept = [p for p in problems if p.task_id not in excluded]
    return kept, list(errata.entries)
