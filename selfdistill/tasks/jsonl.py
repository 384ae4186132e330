"""The generic task format: one JSON object per line, schema in docs/tasks.md.

Required: `task_id`, `prompt`, and exactly one of `tests` (assert-style Python code; with
`entry_point` when it defines `check(candidate)`) or `io` (a list of {"input", "output"} stdin/stdout
pairs). Optional: `difficulty` (easy|medium|hard), `release_date` (YYYY-MM-DD), `prefix`,
`canonical_solution`, `source` (default: the file's name without extensions). `null` means absent.
A prompt pool (`selfdistill.pool`) reads the same schema with `tests_required=False`: there a record
may carry neither tests nor io (its prompt is only sampled, never scored); a held-out set needs one.

Unknown keys are errors (a typo such as "test" must not silently drop the tests), and so are
duplicate task_ids. Every problem in the file is reported at once, each as `line N: field ...`.
Does not run anything: whether the tests pass the canonical solution is `selfdistill.execute`'s job.
"""

from __future__ import annotations

from pathlib import Path

from selfdistill.tasks.loading import load_records, parse_date, require_file, show, suggest
from selfdistill.tasks.problem import AssertTests, Difficulty, IOCase, IOTests, Problem

REQUIRED = frozenset({"task_id", "prompt"})
OPTIONAL = frozenset(
    {"tests", "io", "entry_point", "difficulty", "release_date", "prefix", "canonical_solution", "source"}
)
ALLOWED = REQUIRED | OPTIONAL
_DIFFICULTIES = tuple(d.value for d in Difficulty)
_HINT = "the generic task schema is documented in docs/tasks.md"


def load_jsonl(path: str | Path, *, tests_required: bool = True) -> list[Problem]:
    """Problems from a generic-schema JSONL file (`.jsonl` or `.jsonl.gz`), in file order.
    `tests_required=False` (prompt pools only) also accepts records with neither `tests` nor `io`."""
    path = Path(path)
    require_file(path, "a JSONL task file (schema: docs/tasks.md)")
    source = _stem(path)
    return load_records(
        path, lambda record: parse_record(record, default_source=source, tests_required=tests_required),
        "task_id", _HINT, f"expected one JSON object per line ({_HINT})",
    )


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".jsonl", ".json"):
        name = name.removesuffix(suffix)
    return name or "jsonl"


def parse_record(
    record: dict, default_source: str, *, tests_required: bool = True
) -> tuple[Problem | None, list[str]]:
    """(Problem, []) for a valid record, (None, [what is wrong, one per field]) otherwise."""
    errors = _key_errors(record)
    fields = {k: v for k, v in record.items() if v is not None}
    for name in ("task_id", "prompt"):
        _need_str(fields, name, errors, required=True)
    for name in ("entry_point", "prefix", "canonical_solution", "source"):
        _need_str(fields, name, errors, required=False, nonempty=name in ("entry_point", "source"))
    tests = _tests(fields, errors, tests_required)
    difficulty = _difficulty(fields, errors)
    release_date = _release_date(fields, errors)
    if errors:
        return None, errors
    problem = Problem(
        task_id=fields["task_id"],
        prompt=fields["prompt"],
        tests=tests,
        source=fields.get("source", default_source),
        entry_point=fields.get("entry_point"),
        difficulty=difficulty,
        release_date=release_date,
        prefix=fields.get("prefix", ""),
        canonical_solution=fields.get("canonical_solution"),
    )
    return problem, []


def _key_errors(record: dict) -> list[str]:
    errors = [f"missing field {name}" for name in sorted(REQUIRED) if record.get(name) is None]
    unknown = sorted(set(record) - ALLOWED)
    if unknown:
        named = ", ".join(f'"{k}"{suggest(k, ALLOWED)}' for k in unknown)
        errors.append(
            f"unknown field{'s' if len(unknown) > 1 else ''} {named}; allowed: {', '.join(sorted(ALLOWED))}"
        )
    return errors


def _need_str(fields: dict, name: str, errors: list[str], *, required: bool, nonempty: bool = True) -> None:
    if name not in fields:
        return  # a missing required field is already reported by _key_errors
    value = fields[name]
    if not isinstance(value, str) or (nonempty and not value.strip()):
        errors.append(f"field {name} must be a {'non-empty ' if nonempty else ''}string, got {show(value)}")


def _tests(fields: dict, errors: list[str], required: bool = True) -> AssertTests | IOTests | None:
    has_tests, has_io = "tests" in fields, "io" in fields
    if not (has_tests or has_io or required):
        _check_entry_point(fields, errors)
        return None
    if has_tests == has_io:
        which = "both" if has_tests else "neither"
        errors.append(
            f"has {which} of tests and io; give exactly one: tests (assert-style Python code) "
            'or io (a list of {"input", "output"} stdin/stdout pairs)'
        )
        return None
    if has_tests:
        _check_entry_point(fields, errors)
        code = fields["tests"]
        if not isinstance(code, str) or not code.strip():
            errors.append(f"field tests must be a non-empty string of Python code, got {show(code)}")
            return None
        return AssertTests(code)
    if "entry_point" in fields:
        errors.append("field entry_point applies only to tests (check(candidate)); drop it for io problems")
    return _io_tests(fields["io"], errors)


def _check_entry_point(fields: dict, errors: list[str]) -> None:
    entry = fields.get("entry_point")
    if isinstance(entry, str) and entry.strip() and not entry.isidentifier():
        errors.append(f"field entry_point must be a Python function name, got {show(entry)}")


def _io_tests(value: object, errors: list[str]) -> IOTests | None:
    if not isinstance(value, list) or not value:
        errors.append(
            f'field io must be a non-empty list of {{"input", "output"}} objects, got {show(value)}'
        )
        return None
    cases = []
    for i, case in enumerate(value):
        ok = isinstance(case, dict) and set(case) == {"input", "output"}
        if not ok or not all(isinstance(case[k], str) for k in ("input", "output")):
            errors.append(
                f'field io[{i}] must be {{"input": str, "output": str}} and nothing else, got {show(case)}'
            )
            continue
        cases.append(IOCase(input=case["input"], output=case["output"]))
    return IOTests(tuple(cases)) if len(cases) == len(value) else None


def _difficulty(fields: dict, errors: list[str]) -> Difficulty | None:
    value = fields.get("difficulty")
    if value is None:
        return None
    if value not in _DIFFICULTIES:
        errors.append(
            f"field difficulty is {show(value)}; use one of {' | '.join(_DIFFICULTIES)} or leave it out"
        )
        return None
    return Difficulty(value)


def _release_date(fields: dict, errors: list[str]):
    value = fields.get("release_date")
    if value is None:
        return None
    date = parse_date(value)
    if date is None:
        errors.append(f'field release_date is {show(value)}; write a date as YYYY-MM-DD, e.g. "2024-05-31"')
    return date
