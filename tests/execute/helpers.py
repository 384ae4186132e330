"""Job builders and checks shared by the sandbox tests."""

from __future__ import annotations

import os

import pytest

from selfdistill.execute.isolation import UID_BASE
from selfdistill.execute.outcome import Job, Outcome, Status
from selfdistill.execute.pool import SandboxPool
from selfdistill.tasks.problem import AssertTests, CallCase, CallTests, IOCase, IOTests

ADD_TESTS = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert abs(candidate(-1, 1.5) - 0.5) < 1e-9\n"
GOOD_ADD = "def add(a, b):\n    return a + b\n"
WRONG_ADD = "def add(a, b):\n    return 3\n"  # right for (1, 2) only


def assert_job(program: str, tests: str = ADD_TESTS, entry_point: str | None = "add", **kw) -> Job:
    return Job(kw.pop("job_id", "job"), program, AssertTests(tests), entry_point=entry_point, **kw)


def io_job(program: str, cases: list[tuple[str, str]], **kw) -> Job:
    return Job(kw.pop("job_id", "io"), program, IOTests(tuple(IOCase(i, o) for i, o in cases)), **kw)


def call_job(program: str, fn_name: str, cases: list[tuple[str, str]], **kw) -> Job:
    tests = CallTests(fn_name, tuple(CallCase(a, e) for a, e in cases))
    return Job(kw.pop("job_id", "call"), program, tests, **kw)


def run(pool: SandboxPool, job: Job) -> Outcome:
    """Run one job and check the harness survived it: the same pool still passes a correct program."""
    outcome = pool.run_one(job)
    after = pool.run_one(assert_job(GOOD_ADD, job_id="after"))
    assert after.status is Status.PASSED, f"harness did not survive {job.job_id}: {after}"
    return outcome


def require(pool: SandboxPool, **levels: str) -> None:
    """Skip unless the pool achieved these isolation levels (the property is not claimed otherwise)."""
    missing = {k: v for k, v in levels.items() if pool.isolation.get(k) != v}
    if missing:
        pytest.skip(f"needs isolation {missing}; this machine gave {pool.isolation}")


def slot_processes(pool=None, n_slots: int = 64) -> list[int]:
    """Host pids of processes running as one of `pool`'s slot uids (any slot uid when no pool is given: then
    another run's sandbox on this machine, e.g. a parallel test worker, counts too)."""
    uids = {u for u in pool.slot_uids() if u is not None} if pool is not None else set(
        range(UID_BASE, UID_BASE + n_slots))
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                uid_line = next(line for line in f if line.startswith("Uid:"))
        except (OSError, StopIteration):
            continue
        if int(uid_line.split()[1]) in uids:
            found.append(int(name))
    return found
