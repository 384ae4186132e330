"""Normal behaviour of the sandbox pool: verdicts for ordinary programs, lifecycle, harness faults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from selfdistill.execute.outcome import Job, Status
from selfdistill.execute.pool import SandboxPool
from tests.execute.helpers import GOOD_ADD, WRONG_ADD, assert_job, call_job, io_job

# --- assert tests (HumanEval style) ---------------------------------------------------------------


def test_correct_program_passes(pool):
    assert pool.run_one(assert_job(GOOD_ADD)).status is Status.PASSED


def test_wrong_program_fails_with_the_assertion_line(pool):
    outcome = pool.run_one(assert_job(WRONG_ADD))
    assert outcome.status is Status.FAILED
    assert "assert abs(candidate(-1, 1.5) - 0.5) < 1e-9" in outcome.detail


def test_top_level_asserts_without_check(pool):
    job = assert_job(GOOD_ADD, tests="assert add(2, 2) == 4\nassert add(0, 0) == 0\n", entry_point=None)
    assert pool.run_one(job).status is Status.PASSED


def test_syntax_error_is_error(pool):
    outcome = pool.run_one(assert_job("def add(a, b)\n    return a + b\n"))
    assert outcome.status is Status.ERROR
    assert "SyntaxError" in outcome.detail


def test_tests_that_do_not_compile_are_error_naming_the_tests(pool):
    """The worker compiles each task's tests once and caches them; tests that do not compile are
    still compiled (and reported) by the child, as before."""
    outcome = pool.run_one(assert_job(GOOD_ADD, tests="def check(candidate):\n    assert candidate(1, 2) ==\n"))
    assert outcome.status is Status.ERROR
    assert "SyntaxError" in outcome.detail and "<tests>" in outcome.detail


def test_cached_tests_judge_each_program_on_its_own(pool):
    """Same tests for every sample of a task (compiled once per worker): no verdict carries over."""
    verdicts = [pool.run_one(assert_job(p)).status for p in (GOOD_ADD, WRONG_ADD, GOOD_ADD, WRONG_ADD)]
    assert verdicts == [Status.PASSED, Status.FAILED, Status.PASSED, Status.FAILED]
    patched = "import builtins\nbuiltins.abs = lambda x: 0\n" + WRONG_ADD  # makes `abs(...) < 1e-9` true
    assert pool.run_one(assert_job(patched)).status is Status.FAILED


def test_exception_is_error_with_its_type(pool):
    outcome = pool.run_one(assert_job("def add(a, b):\n    raise ValueError('nope')\n"))
    assert outcome.status is Status.ERROR
    assert "ValueError: nope" in outcome.detail


def test_missing_entry_point_is_error(pool):
    assert pool.run_one(assert_job("def plus(a, b):\n    return a + b\n")).status is Status.ERROR


def test_tests_can_call_helpers_defined_in_the_prompt(pool):
    """HumanEval/38: the tests call encode_cyclic, defined in the prompt, not in the tests."""
    program = "def encode(s):\n    return s[::-1]\n\ndef decode(s):\n    return s[::-1]\n"
    tests = "def check(candidate):\n    for s in ['abc', 'hello']:\n        assert candidate(encode(s)) == s\n"
    assert pool.run_one(assert_job(program, tests=tests, entry_point="decode")).status is Status.PASSED


def test_main_block_does_not_run_for_assert_tests(pool):
    program = GOOD_ADD + "if __name__ == '__main__':\n    raise SystemExit(3)\n"
    assert pool.run_one(assert_job(program)).status is Status.PASSED


def test_dataclass_in_program_works(pool):
    """The program's module is registered in sys.modules, as dataclasses need."""
    program = (
        "from dataclasses import dataclass\n@dataclass\nclass P:\n    x: int\ndef add(a, b):\n    return P(a).x + b\n"
    )
    assert pool.run_one(assert_job(program)).status is Status.PASSED


def test_memory_error_is_memory(pool):
    outcome = pool.run_one(assert_job("x = bytearray(10**10)\n" + GOOD_ADD))
    assert outcome.status is Status.MEMORY


def test_infinite_loop_is_timeout(pool):
    outcome = pool.run_one(assert_job("while True:\n    pass\n", timeout_s=1))
    assert outcome.status is Status.TIMEOUT
    assert outcome.duration_s < 3


@pytest.mark.slow  # burns up to 4 s of CPU in four threads; the fast lane keeps test_infinite_loop_is_timeout and
# test_cpu_limit_is_classified_as_timeout_not_error for the single-threaded limits
def test_multithreaded_burner_is_stopped_and_scored_timeout(pool):
    """hashlib releases the GIL: 4 threads burn up to 2 CPU-seconds per second; whichever limit fires
    first (CPU seconds on idle cores, wall clock on busy ones), the job is a timeout."""
    burner = (
        "import hashlib, threading\ndata = b'x' * (1 << 24)\n"
        "def burn():\n    while True:\n        hashlib.sha256(data).digest()\n"
        "for _ in range(4):\n    threading.Thread(target=burn, daemon=True).start()\nburn()\n"
    )
    outcome = pool.run_one(assert_job(burner, timeout_s=4))
    assert outcome.status is Status.TIMEOUT


def test_child_runs_under_a_cpu_seconds_limit_from_its_budget(pool):
    """RLIMIT_CPU = ceil(remaining budget) + 1 s, set before the program runs."""
    program = (
        "import resource\nsoft, hard = resource.getrlimit(resource.RLIMIT_CPU)\nassert (soft, hard) == (4, 5), soft\n"
        "def add(a, b):\n    return a + b\n"
    )
    assert pool.run_one(assert_job(program, timeout_s=3)).status is Status.PASSED


def test_cpu_limit_is_classified_as_timeout_not_error(pool):
    """A program that exhausts its CPU seconds (SIGXCPU) is a timeout; one core for 1 s suffices, far
    below the 20 s wall clock, so machine load cannot turn this into a wall-clock timeout."""
    program = (
        "import resource\nresource.setrlimit(resource.RLIMIT_CPU, (1, resource.getrlimit(resource.RLIMIT_CPU)[1]))\n"
        "while True:\n    pass\n"
    )
    outcome = pool.run_one(assert_job(program, timeout_s=20))
    assert outcome.status is Status.TIMEOUT
    assert "CPU-time limit" in outcome.detail


def test_sleeping_program_hits_the_wall_clock_limit(pool):
    outcome = pool.run_one(assert_job("import time\ntime.sleep(60)\n", timeout_s=1))
    assert outcome.status is Status.TIMEOUT
    assert "wall-clock" in outcome.detail


# --- stdin/stdout tests (LiveCodeBench style) ------------------------------------------------------


def test_io_program_passes(pool):
    program = "n = int(input())\nprint(n * 2)\n"
    assert pool.run_one(io_job(program, [("2\n", "4\n"), ("21", "42")])).status is Status.PASSED


def test_io_wrong_output_fails_on_that_case(pool):
    outcome = pool.run_one(io_job("print(int(input()) + 1)\n", [("3\n", "4\n"), ("5\n", "10\n")]))
    assert outcome.status is Status.FAILED
    assert "case 1" in outcome.detail


def test_io_runs_main_block(pool):
    program = "def main():\n    print(input().upper())\nif __name__ == '__main__':\n    main()\n"
    assert pool.run_one(io_job(program, [("abc\n", "ABC\n")])).status is Status.PASSED


def test_io_compares_lines_stripped_and_numbers_as_decimals(pool):
    assert pool.run_one(io_job("print('1.50  2 ')\nprint('x')\n", [("", "1.5 2\r\nx\n\n")])).status is Status.PASSED


def test_io_sys_exit_zero_after_output_passes(pool):
    assert pool.run_one(io_job("import sys\nprint(7)\nsys.exit(0)\n", [("", "7")])).status is Status.PASSED


def test_io_nonzero_exit_is_error(pool):
    assert pool.run_one(io_job("import sys\nprint(7)\nsys.exit(2)\n", [("", "7")])).status is Status.ERROR


def test_io_output_from_a_worker_thread_counts(pool):
    """Competitive programmers run main() in a thread with a big stack; the interpreter waits for it."""
    program = ("import threading\nthreading.stack_size(1 << 26)\n"
               "threading.Thread(target=lambda: print(int(input()) * 3)).start()\n")
    assert pool.run_one(io_job(program, [("2\n", "6\n")])).status is Status.PASSED


def test_io_atexit_handlers_run(pool):
    program = (
        "import atexit, io, sys\nbuf = io.StringIO()\nsys.stdout = buf\n"
        "atexit.register(lambda: sys.__stdout__.write(buf.getvalue()))\nprint(int(input()) + 1)\n"
    )
    assert pool.run_one(io_job(program, [("1\n", "2\n")])).status is Status.PASSED


def test_io_huge_output_fails_without_exhausting_memory(pool):
    outcome = pool.run_one(io_job("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", [("", "x")]))
    assert outcome.status is Status.FAILED
    assert "stdout exceeded" in outcome.detail


# --- call tests (LiveCodeBench functional) ---------------------------------------------------------


def test_call_solution_method_passes(pool):
    program = ("class Solution:\n    def twoSum(self, nums, target):\n"
               "        return [0, 1] if nums[0] + nums[1] == target else []\n")
    job = call_job(program, "twoSum", [("[[2, 7, 11], 9]", "[0, 1]"), ("[[1, 1], 2]", "[0, 1]")])
    assert pool.run_one(job).status is Status.PASSED


def test_call_top_level_function_passes(pool):
    assert (
        pool.run_one(call_job("def f(a, b):\n    return (a, b)\n", "f", [("[1, 2]", "[1, 2]")])).status is Status.PASSED
    )


def test_call_wrong_value_fails_on_that_case(pool):
    outcome = pool.run_one(call_job("def f(x):\n    return x if x < 5 else 0\n", "f", [("[1]", "1"), ("[9]", "9")]))
    assert outcome.status is Status.FAILED
    assert outcome.detail.startswith("case 1: expected 9, got 0")


def test_call_exception_is_error(pool):
    outcome = pool.run_one(call_job("def f(x):\n    return 1 // x\n", "f", [("[1]", "1"), ("[0]", "0")]))
    assert outcome.status is Status.ERROR
    assert "ZeroDivisionError" in outcome.detail


def test_call_non_json_return_fails(pool):
    assert pool.run_one(call_job("def f():\n    return {1, 2}\n", "f", [("[]", "[1, 2]")])).status is Status.FAILED


# --- pool lifecycle and harness faults --------------------------------------------------------------


def test_isolation_is_reported(pool):
    assert {"mode", "network", "filesystem", "uid", "pid", "fork_limit"} <= pool.isolation.keys()


def test_imap_yields_every_outcome_once():
    jobs = [assert_job(GOOD_ADD if i % 2 else WRONG_ADD, job_id=f"j{i}") for i in range(40)]
    with SandboxPool(workers=2) as pool:
        outcomes = {o.job_id: o.status for o in pool.imap(jobs)}
    assert len(outcomes) == 40
    assert all(s is (Status.PASSED if int(k[1:]) % 2 else Status.FAILED) for k, s in outcomes.items())


def test_run_calls_back_per_outcome(pool):
    seen = []
    pool.run([assert_job(GOOD_ADD, job_id="a"), assert_job(WRONG_ADD, job_id="b")], seen.append)
    assert sorted((o.job_id, o.status) for o in seen) == [("a", Status.PASSED), ("b", Status.FAILED)]


def test_malformed_job_is_infra(pool):
    assert pool.run_one(Job("bad", GOOD_ADD, tests=None)).status is Status.INFRA  # type: ignore[arg-type]


def test_worker_killed_mid_job_gives_infra_and_the_pool_goes_on():
    with SandboxPool(workers=1) as pool:
        victim = pool.worker_pids()[0]
        threading.Timer(0.5, os.kill, (victim, signal.SIGKILL)).start()
        outcome = pool.run_one(assert_job("import time\ntime.sleep(30)\n", timeout_s=20))
        assert outcome.status is Status.INFRA
        assert "respawned" in outcome.detail
        assert pool.run_one(assert_job(GOOD_ADD)).status is Status.PASSED
        assert pool.worker_pids()[0] != victim


def test_mode_none_still_runs_jobs_and_says_so():
    with SandboxPool(workers=1, mode="none") as pool:
        assert pool.isolation["network"] == "none"
        assert pool.run_one(assert_job(GOOD_ADD)).status is Status.PASSED


def test_worker_imports_stay_light():
    """Every fork copies the worker: no numpy, pydantic, rich or task loaders in it."""
    code = (
        "import sys, selfdistill.execute.worker\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('numpy', 'pydantic', 'rich')"
        " or m.startswith('selfdistill.tasks')]\nprint(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="mode"):
        SandboxPool(mode="docker")


def test_throughput_is_not_pathological(pool):
    """Speed claims live in benchmarks/; this only catches a regression to process-per-job costs."""
    jobs = [assert_job(GOOD_ADD, job_id=f"t{i}") for i in range(100)]
    start = time.monotonic()
    assert all(o.status is Status.PASSED for o in pool.imap(jobs))
    assert time.monotonic() - start < 5
