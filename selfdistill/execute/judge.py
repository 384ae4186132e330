"""Verdicts: from how a child process ended and what it reported, to a (status, detail) pair.

Pure functions over `RunResult`, run in the worker (outside the untrusted process). The rules:
- nothing counts before the child's `ready` message; a child that never got ready is an INFRA fault
  (its confinement failed), after `ready` nothing the child says can make it INFRA;
- the worker's wall deadline, SIGXCPU, or SIGKILL at the CPU hard limit -> TIMEOUT;
- a signal otherwise -> ERROR (MEMORY when stderr says the allocator failed);
- assert tests: PASSED only for a `passed` message followed by exit status 0;
- call tests: every case's JSON must equal the expected value (compared here), then `done`, exit 0;
- io cases: exit status 0 and stdout equal to the expected output, LiveCodeBench-style: the whole
  text stripped, split on newlines, each line stripped, lines equal as text or as lists of Decimals.
Not covered: judging stderr, per-case time limits (the job's `timeout_s` is one wall budget).
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

PASSED, FAILED, ERROR, TIMEOUT, MEMORY, INFRA = "passed", "failed", "error", "timeout", "memory", "infra"
DETAIL_CHARS = 300
MEMORY_HINTS = ("MemoryError", "Cannot allocate memory", "out of memory", "std::bad_alloc")
Verdict = tuple[str, str]


@dataclass
class RunResult:
    """One child process, as the worker saw it."""

    wait_status: int
    timed_out: bool
    cpu_s: float
    cpu_limit_s: int
    wall_limit_s: float
    messages: list[dict] = field(default_factory=list)  # nonce-checked, in order
    stderr_tail: str = ""
    stdout: bytes | None = None
    stdout_overflow: bool = False
    result_overflow: bool = False  # the program flooded the private result pipe

    @property
    def ready(self) -> bool:
        return any(m.get("event") == "ready" for m in self.messages)

    def after_ready(self) -> list[dict]:
        for i, m in enumerate(self.messages):
            if m.get("event") == "ready":
                return self.messages[i + 1 :]
        return []


def short(text: str, limit: int = DETAIL_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def ending(r: RunResult) -> Verdict | None:
    """The verdict that how the process ended imposes on its own, or None if the messages decide."""
    if not r.ready:
        infra = next((m.get("detail", "") for m in r.messages if m.get("event") == "infra"), "")
        return INFRA, short(f"sandbox could not start the program: {infra or _exit_text(r)} {_last_line(r)}")
    if r.result_overflow:
        return ERROR, "wrote more than the harness reads to its private result pipe (fd 3); killed"
    if r.timed_out:
        return TIMEOUT, f"wall-clock limit of {r.wall_limit_s:g}s exceeded"
    sig = _signal(r.wait_status)
    if sig is None:
        return None
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and r.cpu_s >= r.cpu_limit_s):
        return TIMEOUT, f"CPU-time limit of {r.cpu_limit_s}s exceeded"
    if any(h in r.stderr_tail for h in MEMORY_HINTS):
        return MEMORY, short(f"killed by {signal.Signals(sig).name}: {_last_line(r)}")
    return ERROR, short(f"killed by {_signal_name(sig)} {_last_line(r)}")


def judge_assert(r: RunResult) -> Verdict:
    found = ending(r)
    if found:
        return found
    verdict = next((m for m in r.after_ready() if m.get("event") in (PASSED, FAILED, ERROR, MEMORY)), None)
    code = _exit_code(r.wait_status)
    if verdict is None:
        if code == 0:
            return ERROR, "exited with status 0 before the tests finished (early exit)"
        return ERROR, short(f"exited with status {code} without a result {_last_line(r)}")
    if verdict["event"] == PASSED and code != 0:
        return ERROR, f"exited with status {code} after the tests"
    return verdict["event"], short(verdict.get("detail", ""))


def judge_call(r: RunResult, expected: list) -> Verdict:
    status, detail, evidence = call_evidence(r, len(expected))
    return compare_call(evidence["cases"], expected) or (status, detail)


def call_evidence(r: RunResult, n_cases: int) -> tuple[str, str, dict]:
    """Run in the worker, which never sees expected values: the verdict that holds if every returned value
    in `evidence["cases"]` (cases 0.., in order, as the child JSON-encoded them) equals its expected value.
    The pool checks that (`compare_call`); a mismatch there makes the case FAILED."""
    messages = r.after_ready()
    cases = {m.get("index"): m for m in messages if m.get("event") == "case"}
    shown: list[dict] = []
    for i in range(n_cases):
        if i not in cases:
            return (*(ending(r) or _call_stopped(messages, r, i)), {"cases": shown})
        shown.append({"json": cases[i].get("json"), "detail": cases[i].get("detail")})
    found = ending(r)
    if found:
        return (*found, {"cases": shown})
    if any(m.get("event") == "done" for m in messages) and _exit_code(r.wait_status) == 0:
        return PASSED, "", {"cases": shown}
    return (ERROR, short(f"exited with status {_exit_code(r.wait_status)} after the last case {_last_line(r)}"),
            {"cases": shown})


def compare_call(shown: list, expected: list) -> Verdict | None:
    """In the pool: the first returned value that differs from its expected value, as a FAILED verdict."""
    for i, (message, want) in enumerate(zip(shown, expected, strict=False)):
        mismatch = _call_mismatch(message if isinstance(message, dict) else {}, want)
        if mismatch:
            return FAILED, short(f"case {i}: {mismatch}")
    return None


def _call_mismatch(message: dict, want) -> str | None:
    if message.get("json") is None:
        return message.get("detail") or "no return value"
    try:
        got = json.loads(message["json"])
    except (TypeError, ValueError):
        return "unreadable return value"
    if got != want:
        return f"expected {json.dumps(want)[:120]}, got {message['json'][:120]}"
    return None


def _call_stopped(messages: list[dict], r: RunResult, i: int) -> Verdict:
    raised = next((m for m in messages if m.get("event") in (ERROR, MEMORY)), None)
    if raised:
        return raised["event"], short(raised.get("detail", ""))
    return ERROR, short(f"exited with status {_exit_code(r.wait_status)} before case {i} {_last_line(r)}")


def judge_io_case(r: RunResult, expected: str, index: int) -> Verdict | None:
    """None when the case passed."""
    found = io_case_ending(r, index)
    if found:
        return found
    mismatch = compare_output((r.stdout or b"").decode("utf-8", "replace"), expected)
    return (FAILED, short(f"case {index}: {mismatch}")) if mismatch else None


def io_case_ending(r: RunResult, index: int) -> Verdict | None:
    """In the worker: the case's verdict when how it ended decides it; None when its stdout must be compared
    (by the pool, which alone holds the expected output)."""
    if r.ready and r.stdout_overflow:  # the worker killed it for that: not a signal verdict
        return FAILED, f"case {index}: stdout exceeded {len(r.stdout or b'')} bytes"
    found = ending(r)
    if found:
        return found
    code = _exit_code(r.wait_status)
    if code != 0:
        raised = next((m for m in r.after_ready() if m.get("event") in (ERROR, MEMORY)), None)
        if raised:
            return raised["event"], short(f"case {index}: {raised.get('detail', '')}")
        return ERROR, short(f"case {index}: exited with status {code} {_last_line(r)}")
    return None


def compare_output(got: str, expected: str) -> str | None:
    """None when equal, LiveCodeBench-style; else a short description of the first difference."""
    got_lines = [line.strip() for line in got.strip().split("\n")]
    want_lines = [line.strip() for line in expected.strip().split("\n")]
    if len(got_lines) != len(want_lines):
        return f"expected {len(want_lines)} lines, got {len(got_lines)}"
    for n, (a, b) in enumerate(zip(got_lines, want_lines, strict=True), 1):
        if a != b and not _decimals_equal(a, b):
            return f"line {n}: expected {b[:100]!r}, got {a[:100]!r}"
    return None


def _decimals_equal(a: str, b: str) -> bool:
    try:
        return [Decimal(t) for t in a.split()] == [Decimal(t) for t in b.split()]
    except (InvalidOperation, ValueError):
        return False


def _signal(status: int) -> int | None:
    return -_exit_code(status) if _exit_code(status) < 0 else None


def _exit_code(status: int) -> int:
    return os.waitstatus_to_exitcode(status)


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _exit_text(r: RunResult) -> str:
    code = _exit_code(r.wait_status)
    return f"killed by {_signal_name(-code)}" if code < 0 else f"exited with status {code}"


def _last_line(r: RunResult) -> str:
    lines = [line for line in r.stderr_tail.strip().splitlines() if line.strip()]
    return f"({lines[-1].strip()[:150]})" if lines else ""
