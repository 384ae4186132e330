"""LiveCodeBench code-generation problems from its release JSONL files (`code_generation_lite`,
e.g. `test.jsonl` ... `test6.jsonl`), read offline from a path the user gives.

Fields used (LCB's names): question_id, question_content, starter_code, difficulty, contest_date,
public_test_cases, private_test_cases, metadata. Others (question_title, platform, contest_id) are
ignored. Mapping:
  task_id        question_id
  prompt         question_content, then the starter code in a ```python block when there is one
                 (instruction wording such as "read from stdin" is the generation stage's business,
                 and kept out of prompts so the contamination check does not match boilerplate)
  difficulty     easy | medium | hard;  release_date: the date part of contest_date
  tests          all cases "stdin"      -> IOTests(input, output)
                 all cases "functional" -> CallTests(metadata.func_name): the input's lines are one
                 JSON value per positional argument; the output is one JSON value

Private tests are a JSON string, or in the real release files base64(zlib(pickle(JSON string))).
Unpickling a user's file is code execution, so the pickle goes through `_StrOnlyUnpickler`, which
refuses every global lookup (class, function, persistent id): only plain values such as the str
LCB pickled can be built, anything else is a DataError. Decompressed size is capped at
`MAX_PRIVATE_BYTES`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import io
import json
import pickle
import zlib
from pathlib import Path

from selfdistill.tasks.loading import load_records, require_file, show
from selfdistill.tasks.problem import CallCase, CallTests, Difficulty, IOCase, IOTests, Problem

SOURCE = "livecodebench"
REQUIRED = (
    "question_id", "question_content", "starter_code", "difficulty", "contest_date",
    "public_test_cases", "private_test_cases", "metadata",
)  # fmt: skip
MAX_PRIVATE_BYTES = 1 << 30  # decompressed; the largest lite problems are tens of MB
_HINT = "expected LiveCodeBench code_generation_lite records (docs/tasks.md, 'LiveCodeBench')"


class _StrOnlyUnpickler(pickle.Unpickler):
    """Builds plain values only: every opcode that would look up a class or call a function goes
    through find_class (GLOBAL, STACK_GLOBAL, INST, EXT*) or persistent_load, and both refuse."""

    def find_class(self, module: str, name: str):  # noqa: ARG002
        raise pickle.UnpicklingError(f"refused: the payload asks for {module}.{name}, not a plain string")

    def persistent_load(self, pid):  # noqa: ARG002
        raise pickle.UnpicklingError("refused: the payload uses a persistent id, not a plain string")


def decode_private_tests(value: str) -> list:
    """LCB private tests: JSON text, or base64 -> zlib -> restricted pickle -> JSON text; else ValueError."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        pass
    try:
        packed = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise ValueError("neither JSON nor base64") from e
    pickled = _inflate(packed)
    try:
        payload = _StrOnlyUnpickler(io.BytesIO(pickled)).load()
    except pickle.UnpicklingError as e:
        raise ValueError(f"unsafe or broken pickle ({e})") from e
    except Exception as e:  # a malformed pickle can raise almost anything (EOFError, KeyError...)
        raise ValueError(f"broken pickle ({type(e).__name__}: {e})") from e
    if isinstance(payload, bytes):
        payload = payload.decode("utf-8", errors="strict")
    if not isinstance(payload, str):
        raise ValueError(f"the pickle holds a {type(payload).__name__}, expected a JSON string")
    return json.loads(payload)


def _inflate(packed: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(packed, MAX_PRIVATE_BYTES)
    except zlib.error as e:
        raise ValueError(f"not zlib-compressed ({e})") from e
    if inflater.unconsumed_tail:
        raise ValueError(f"decompresses to more than {MAX_PRIVATE_BYTES} bytes")
    if not inflater.eof:
        raise ValueError("truncated zlib stream")
    return data


def load_livecodebench(path: str | Path) -> list[Problem]:
    """Problems from a LiveCodeBench release JSONL file (`.jsonl` or `.jsonl.gz`), in file order."""
    path = Path(path)
    require_file(path, "a LiveCodeBench release JSONL file (code_generation_lite test*.jsonl)")
    return load_records(path, parse_record, "question_id", _HINT, _HINT)


def parse_record(record: dict) -> tuple[Problem | None, list[str]]:
    """(Problem, []) for a valid LCB record, (None, [what is wrong]) otherwise."""
    missing = [f"missing field {k}" for k in REQUIRED if k not in record]
    if missing:
        return None, missing
    errors: list[str] = []
    qid, content, starter = (record[k] for k in ("question_id", "question_content", "starter_code"))
    for name, value in (("question_id", qid), ("question_content", content), ("starter_code", starter)):
        if not isinstance(value, str) or (name != "starter_code" and not value.strip()):
            errors.append(
                f"field {name} must be a {'non-empty ' * (name != 'starter_code')}string, got {show(value)}"
            )
    difficulty = _difficulty(record["difficulty"], errors)
    release_date = _contest_date(record["contest_date"], errors)
    tests = _tests(record, errors)
    if errors:
        return None, errors
    prompt = content if not starter.strip() else f"{content.rstrip()}\n\n```python\n{starter.rstrip()}\n```\n"
    problem = Problem(
        task_id=qid,
        prompt=prompt,
        tests=tests,
        source=SOURCE,
        difficulty=difficulty,
        release_date=release_date,
    )
    return problem, []


def _difficulty(value: object, errors: list[str]) -> Difficulty | None:
    try:
        return Difficulty(value)
    except ValueError:
        errors.append(f"field difficulty is {show(value)}; LiveCodeBench uses easy | medium | hard")
        return None


def _contest_date(value: object, errors: list[str]) -> dt.date | None:
    try:
        return dt.datetime.fromisoformat(value).date()  # type: ignore[arg-type]
    except (TypeError, ValueError):
        errors.append(
            f'field contest_date is {show(value)}; expected an ISO date such as "2023-08-21T00:00:00"'
        )
        return None


def _json_field(record: dict, name: str, errors: list[str], decode=json.loads):
    value = record[name]
    if not isinstance(value, str):
        return value  # already parsed (a re-export that stored JSON values, not JSON text)
    try:
        return decode(value)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, decode_private_tests' errors, nesting, huge ints
        errors.append(f"field {name} cannot be decoded: {str(e)[:200]}")
        return None


def _tests(record: dict, errors: list[str]) -> IOTests | CallTests | None:
    public = _json_field(record, "public_test_cases", errors)
    private = _json_field(record, "private_test_cases", errors, decode=decode_private_tests)
    metadata = _json_field(record, "metadata", errors)
    if errors:
        return None
    cases = _case_list(public, "public_test_cases", errors) + _case_list(
        private, "private_test_cases", errors
    )
    if errors:
        return None
    if not cases:
        errors.append("has no test cases (public_test_cases and private_test_cases are both empty)")
        return None
    kinds = {c["testtype"] for c in cases}
    if kinds == {"stdin"}:
        return IOTests(tuple(IOCase(input=c["input"], output=c["output"]) for c in cases))
    if kinds == {"functional"}:
        return _call_tests(cases, metadata, errors)
    errors.append(f"mixes test types {sorted(kinds)}; a problem's cases must all be stdin or all functional")
    return None


def _case_list(value: object, name: str, errors: list[str]) -> list[dict]:
    if not isinstance(value, list):
        errors.append(f"field {name} must decode to a list of test cases, got {show(value)}")
        return []
    for i, case in enumerate(value):
        ok = isinstance(case, dict) and all(isinstance(case.get(k), str) for k in ("input", "output"))
        if not ok or case.get("testtype") not in ("stdin", "functional"):
            errors.append(
                f'field {name}[{i}] must be {{"input": str, "output": str, "testtype": '
                f'"stdin"|"functional"}}, got {show(case)}'
            )
            return []
    return value


def _call_tests(cases: list[dict], metadata: object, errors: list[str]) -> CallTests | None:
    fn_name = metadata.get("func_name") if isinstance(metadata, dict) else None
    if not isinstance(fn_name, str) or not fn_name.isidentifier():
        errors.append(
            f"field metadata must name the function for functional tests (func_name), got {show(metadata)}"
        )
        return None
    calls = []
    for i, case in enumerate(cases):
        try:
            args = [json.loads(line) for line in case["input"].split("\n") if line.strip()]
            expected = json.loads(case["output"])
        except (ValueError, RecursionError) as e:  # JSONDecodeError, nesting, 5,000-digit integers
            errors.append(f"functional test case {i} is not one JSON value per line ({str(e)[:120]}): {show(case)}")
            return None
        calls.append(CallCase(args_json=json.dumps(args), expected_json=json.dumps(expected)))
    return CallTests(fn_name=fn_name, cases=tuple(calls))
