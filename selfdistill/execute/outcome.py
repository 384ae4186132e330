"""The closed set of execution outcomes, and the job/outcome records the sandbox exchanges.

`Status.INFRA` is a harness fault (the sandbox could not run the program as asked). It is never a
model failure: metrics exclude it from pass@k, count it and show it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum

from selfdistill.tasks.problem import Tests


class Status(str, Enum):
    PASSED = "passed"
    FAILED = "failed"  # ran, a test said no (assertion, wrong output, wrong return value)
    ERROR = "error"  # the program raised, did not compile, exited early, or was killed by a signal
    TIMEOUT = "timeout"  # wall-clock or CPU-seconds limit
    MEMORY = "memory"  # memory limit
    INFRA = "infra"  # harness fault: excluded from pass@k, counted, shown


@dataclass(frozen=True)
class Job:
    job_id: str
    program: str
    tests: Tests
    entry_point: str | None = None
    timeout_s: float = 10.0
    memory_mb: int = 1024


@dataclass(frozen=True)
class Outcome:
    job_id: str
    status: Status
    detail: str = ""  # short, human-readable: the failing assert, the exception, the signal
    duration_s: float = 0.0

    def to_json(self) -> dict:
        d = asdict(self)
        d["status"] = self.status.value
        return d
