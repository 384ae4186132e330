"""Verdict rules (judge.py) on hand-made run results, and the pool/worker framing (protocol.py)."""

from __future__ import annotations

import os
import signal

import pytest

from selfdistill.execute import judge, protocol
from selfdistill.execute.judge import RunResult

READY = {"event": "ready"}


def exited(code: int) -> int:
    return code << 8


def killed(sig: int) -> int:
    return sig


def result(status: int, *messages: dict, **kw) -> RunResult:
    defaults = {"timed_out": False, "cpu_s": 0.1, "cpu_limit_s": 3, "wall_limit_s": 2.0}
    return RunResult(wait_status=status, messages=list(messages), **(defaults | kw))


@pytest.mark.parametrize(
    ("run", "status"),
    [
        (result(exited(0), READY, {"event": "passed"}), judge.PASSED),
        (result(exited(1), READY, {"event": "failed", "detail": "x"}), judge.FAILED),
        (result(exited(1), READY, {"event": "memory", "detail": "MemoryError"}), judge.MEMORY),
        (result(exited(0), READY), judge.ERROR),  # exit 0 but no verdict: an early exit
        (result(exited(3), READY, {"event": "passed"}), judge.ERROR),  # passed, then a bad exit
        (result(exited(0), {"event": "passed"}), judge.INFRA),  # never got ready: confinement failed
        (result(exited(71), {"event": "infra", "detail": "setuid failed"}), judge.INFRA),
        (result(killed(signal.SIGKILL), READY, timed_out=True), judge.TIMEOUT),
        (result(killed(signal.SIGXCPU), READY), judge.TIMEOUT),
        (result(killed(signal.SIGKILL), READY, cpu_s=4.0), judge.TIMEOUT),  # the CPU hard limit
        (result(killed(signal.SIGKILL), READY), judge.ERROR),
        (result(killed(signal.SIGSEGV), READY), judge.ERROR),
        (result(killed(signal.SIGABRT), READY, stderr_tail="Fatal Python error: MemoryError"), judge.MEMORY),
    ],
)
def test_assert_verdicts(run, status):
    assert judge.judge_assert(run)[0] == status


def test_infra_cannot_be_claimed_after_ready():
    run = result(exited(71), READY, {"event": "infra", "detail": "trust me"})
    assert judge.judge_assert(run)[0] == judge.ERROR


def test_the_first_verdict_after_ready_wins():
    run = result(exited(0), READY, {"event": "failed", "detail": "no"}, {"event": "passed"})
    assert judge.judge_assert(run)[0] == judge.FAILED


def case(i: int, text: str | None) -> dict:
    return {"event": "case", "index": i, "json": text}


def test_call_passes_only_with_every_case_and_done():
    done = {"event": "done"}
    assert judge.judge_call(result(exited(0), READY, case(0, "1"), case(1, "[2]"), done), [1, [2]])[0] == judge.PASSED
    assert judge.judge_call(result(exited(0), READY, case(0, "1"), done), [1, [2]])[0] == judge.ERROR
    assert judge.judge_call(result(exited(0), READY, case(0, "1"), case(1, "[2]")), [1, [2]])[0] == judge.ERROR


def test_call_first_mismatch_beats_a_later_timeout():
    run = result(killed(signal.SIGKILL), READY, case(0, "5"), timed_out=True)
    assert judge.judge_call(run, [1, 2]) == (judge.FAILED, "case 0: expected 1, got 5")


def test_call_compares_values_not_text():
    run = result(exited(0), READY, case(0, '{"b": 1.0, "a": [1, 2]}'), {"event": "done"})
    assert judge.judge_call(run, [{"a": [1, 2], "b": 1}])[0] == judge.PASSED


def test_io_case_verdicts():
    ok = result(exited(0), READY, stdout=b"4\n")
    assert judge.judge_io_case(ok, "4", 0) is None
    assert judge.judge_io_case(result(exited(0), READY, stdout=b"5\n"), "4", 0)[0] == judge.FAILED
    assert (
        judge.judge_io_case(result(exited(1), READY, {"event": "error", "detail": "E"}, stdout=b"4"), "4", 0)[0]
        == judge.ERROR
    )
    overflow = result(killed(signal.SIGKILL), READY, stdout=b"x" * 10, stdout_overflow=True)
    assert judge.judge_io_case(overflow, "4", 0)[0] == judge.FAILED


@pytest.mark.parametrize(
    ("got", "want", "equal"),
    [
        ("1 2\n3\n", "1 2\n3", True),
        ("  1 2  \r\n3\n\n", "1 2\n3\n", True),
        ("1.50 2", "1.5 2.0", True),  # LiveCodeBench: equal as Decimals
        ("1 2", "1 3", False),
        ("1\n2", "1 2", False),
        ("", "", True),
        ("abc", "ABC", False),
    ],
)
def test_compare_output(got, want, equal):
    assert (judge.compare_output(got, want) is None) is equal


def test_details_are_short():
    run = result(exited(1), READY, {"event": "error", "detail": "x" * 5000})
    assert len(judge.judge_assert(run)[1]) <= judge.DETAIL_CHARS


def test_frames_round_trip_and_end_cleanly():
    r, w = os.pipe()
    protocol.write_frame(w, {"a": 1, "b": "é"})
    protocol.write_frame(w, {"c": [1, 2]})
    os.close(w)
    assert protocol.read_frame(r) == {"a": 1, "b": "é"}
    assert protocol.read_frame(r) == {"c": [1, 2]}
    assert protocol.read_frame(r) is None
    os.close(r)


def test_truncated_frame_is_a_protocol_error():
    r, w = os.pipe()
    os.write(w, protocol.encode_frame({"a": 1})[:-2])
    os.close(w)
    with pytest.raises(protocol.ProtocolError):
        protocol.read_frame(r)
    os.close(r)
