"""From a task name or a file path to a list of problems, and the small-held-out-set warning.

`load_task(name_or_path)`:
  a registered name ("humaneval")   the loader for that name (offline data shipped with a package)
  anything else                     a path to a JSONL file (`.jsonl` or `.jsonl.gz`), whose format is
                                    read off the keys of its first record:
      question_id + question_content          LiveCodeBench release format
      task_id, prompt, canonical_solution,    HumanEval format
      test and entry_point
      otherwise                               the generic schema (docs/tasks.md)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from selfdistill.errors import DataError
from selfdistill.tasks.humaneval import FIELDS as HUMANEVAL_FIELDS
from selfdistill.tasks.humaneval import load_humaneval
from selfdistill.tasks.jsonl import load_jsonl
from selfdistill.tasks.livecodebench import load_livecodebench
from selfdistill.tasks.loading import first_record, require_file
from selfdistill.tasks.problem import Problem

log = logging.getLogger(__name__)

NAMED: dict[str, Callable[[], list[Problem]]] = {"humaneval": load_humaneval}
MIN_HELDOUT = 200
_LCB_KEYS = frozenset({"question_id", "question_content"})


def load_task(name_or_path: str | Path) -> list[Problem]:
    """The problems of a named task or of a task file (format detected as in the module docstring)."""
    key = str(name_or_path)
    if key.lower() in NAMED:
        return NAMED[key.lower()]()
    path = Path(key).expanduser()
    require_file(
        path,
        f"a task name ({' | '.join(sorted(NAMED))}) or a path to a JSONL task file "
        "(generic schema in docs/tasks.md, LiveCodeBench or HumanEval format)",
    )
    return _FORMATS[detect_format(path)](path)


def detect_format(path: Path) -> str:
    """ "livecodebench", "humaneval" or "jsonl", from the keys of the file's first record."""
    record = first_record(path)
    if record is None:
        raise DataError(f"{path}: holds no records; expected one JSON object per line (docs/tasks.md)")
    keys = set(record)
    if keys >= _LCB_KEYS:
        return "livecodebench"
    if set(HUMANEVAL_FIELDS) <= keys:
        return "humaneval"
    return "jsonl"


_FORMATS: dict[str, Callable[[Path], list[Problem]]] = {
    "livecodebench": load_livecodebench,
    "humaneval": load_humaneval,
    "jsonl": load_jsonl,
}


def warn_if_small(
    heldout: Sequence[Problem], name: str = "held-out set", minimum: int = MIN_HELDOUT
) -> str | None:
    """Log and return a warning when a held-out set has fewer than `minimum` problems, else None."""
    if len(heldout) >= minimum:
        return None
    message = (
        f"{name} has {len(heldout)} problems (fewer than {minimum}): pass@k differences of a few points "
        "will be within noise; use a larger held-out set, or read the confidence intervals rather than "
        "the point estimates"
    )
    log.warning(message)
    return message
