"""What is solved: the `Problem` type and the three kinds of tests a problem can carry.

A program for a completion is `problem.prefix + completion` (HumanEval-style continuation: the prefix
is the prompt) or the completion alone (full programs: LiveCodeBench, chat-model answers). How a test
kind is run lives in `selfdistill.execute`; this module only describes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import Enum


class Difficulty(str, Enum):
    EASY = "easy"
    MEDIUM = "medium"
    HARD = "hard"


@dataclass(frozen=True)
class AssertTests:
    """Python test code run after the program in the same namespace. If it defines `check(candidate)`
    and the problem has an entry point, the harness calls `check(<entry_point>)` (HumanEval);
    otherwise the code's top-level asserts are the tests."""

    code: str
    kind: str = field(default="assert", init=False)


@dataclass(frozen=True)
class IOCase:
    input: str
    output: str


@dataclass(frozen=True)
class IOTests:
    """stdin/stdout pairs: the program runs once per case with `input` on stdin; its stdout must match
    `output` (compared outside the untrusted process, line by line, trailing whitespace ignored)."""

    cases: tuple[IOCase, ...]
    kind: str = field(default="io", init=False)


@dataclass(frozen=True)
class CallCase:
    """One call: `args_json` is a JSON array of positional arguments, `expected_json` the JSON value."""

    args_json: str
    expected_json: str


@dataclass(frozen=True)
class CallTests:
    """LiveCodeBench 'functional' tests: call `Solution().<fn_name>(*args)` (or a top-level function
    `fn_name` when the program defines no `Solution` class) and compare its JSON-encoded result."""

    fn_name: str
    cases: tuple[CallCase, ...]
    kind: str = field(default="call", init=False)


Tests = AssertTests | IOTests | CallTests


@dataclass(frozen=True)
class Problem:
    """One problem. `tests` is None only for prompt-pool entries mined without tests (e.g. from a
    codebase, `selfdistill.pool`); every held-out loader sets it, since a held-out problem is scored."""

    task_id: str
    prompt: str
    tests: Tests | None
    source: str
    entry_point: str | None = None
    difficulty: Difficulty | None = None
    release_date: dt.date | None = None
    prefix: str = ""
    canonical_solution: str | None = None

    def program(self, completion: str) -> str:
        """The program a completion stands for: the prefix (e.g. HumanEval's prompt) then the completion."""
        return self.prefix + completion
