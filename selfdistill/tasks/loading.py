"""Shared reading helpers for the task loaders: JSONL records with their line numbers, and the
error wording every loader uses (file:line, the field, the value, how to fix).

Reads `.jsonl` and gzip-compressed `.jsonl.gz`. Does not validate any schema: each loader does.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from selfdistill.errors import DataError
from selfdistill.rundir import read_jsonl
from selfdistill.tasks.problem import Problem

MAX_LISTED_ERRORS = 20
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def require_file(path: Path, expected: str) -> None:
    """DataError when `path` is not a readable file; `expected` says what should be there."""
    if not path.exists():
        raise DataError(f"{path}: no such file; expected {expected}")
    if not path.is_file():
        raise DataError(f"{path}: is not a file; expected {expected}")


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """Yield (1-based line number, record) for each non-blank line; each record must be a JSON object."""
    return read_jsonl(path, "a task file")


def first_record(path: Path) -> dict | None:
    """The first record of a JSONL file (None if the file holds none)."""
    for _, record in iter_jsonl(path):
        return record
    return None


def load_records(
    path: Path, parse: Callable[[dict], tuple[Problem | None, list[str]]], id_key: str, hint: str, empty: str
) -> list[Problem]:
    """Problems from a JSONL task file: each record parsed by `parse`; an id (`record[id_key]`) seen twice
    names both lines; every bad line is collected and reported at once; a file with none is refused."""
    problems: list[Problem] = []
    errors: list[str] = []
    first_line: dict[str, int] = {}
    for lineno, record in iter_jsonl(path):
        problem, bad = parse(record)
        key = record.get(id_key)
        if isinstance(key, str) and key in first_line:
            bad.append(f"{id_key} {show(key)} duplicates line {first_line[key]}; {id_key}s must be unique")
        elif isinstance(key, str):
            first_line[key] = lineno
        errors += [f"line {lineno}: {b}" for b in bad]
        if problem is not None and not bad:
            problems.append(problem)
    raise_collected(path, errors, hint)
    if not problems:
        raise DataError(f"{path}: holds no problems; {empty}")
    return problems


def raise_collected(path: Path, errors: list[str], hint: str) -> None:
    """Raise one DataError listing every collected `file:line: field ...` error (up to a cap)."""
    if not errors:
        return
    shown = errors[:MAX_LISTED_ERRORS]
    more = len(errors) - len(shown)
    lines = [f"{path}: {len(errors)} problem{'s' if len(errors) != 1 else ''} in the task file:"]
    lines += [f"  {e}" for e in shown]
    if more:
        lines.append(f"  ... and {more} more")
    lines.append(f"  {hint}")
    raise DataError("\n".join(lines))


def parse_date(value: object) -> dt.date | None:
    """A strict YYYY-MM-DD date (None if not one). `date.fromisoformat` alone also takes 20240101."""
    if not isinstance(value, str) or not _DATE_RE.match(value):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def suggest(key: str, allowed: set[str] | frozenset[str]) -> str:
    """' (did you mean "x"?)' for a likely typo of an allowed key, else ''."""
    close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def show(value: object) -> str:
    """A value as it appears in JSON, clipped for error messages."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return _clip(text)


def _clip(text: str, limit: int = 80) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."
