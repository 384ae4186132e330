"""`SandboxPool`: run many untrusted programs against their tests, in parallel, on sandbox workers.

    with SandboxPool(workers=2) as pool:
        print(pool.isolation)           # what this machine allowed, to record with the outcomes
        for outcome in pool.imap(jobs): # completion order; match by job_id
            ...

One worker process per slot (worker.py), each fed by one thread of this process pulling from a shared
queue. Programs never run in this process: a worker forks one child per program run. Expected outputs
of call and stdin/stdout tests never leave this process: workers get inputs, send back what the program
returned or printed, and this process compares. Each slot runs programs as a uid leased for this pool
(`UidLease`), so concurrent runs never share one.

Job fields, as the sandbox reads them: `timeout_s` is ONE wall-clock budget for the whole job (the
cases of an IOTests job run one after another, each in a fresh process, within it); each process
also gets RLIMIT_CPU = ceil(remaining budget) + 1 s. `memory_mb` caps the address space of the whole
process (RLIMIT_AS), interpreter included (~27 MB), as for a fresh `python`. Stdin/stdout cases stop
at the first failing one; the outcome's detail names it.

Failure policy: a worker that dies (killed from outside, crashed), stops answering for the job's
`timeout_s` + `grace_s`, or breaks the protocol is killed and respawned, and the job it held becomes
`Status.INFRA` with a detail. It is NOT retried: a job that kills its worker would kill the next one
too, and INFRA is excluded from pass@k and shown, so re-running it is the caller's decision (resume).
A job the pool cannot serialise (unknown test kind) is INFRA too. Not covered: limits on the total
memory of all workers (each child is capped by RLIMIT_AS), fairness between concurrent `imap` calls.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import queue
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Self

import selfdistill
from selfdistill.errors import SandboxError
from selfdistill.execute import judge, protocol
from selfdistill.execute.isolation import MODES, UID_BASE, UID_RANGE
from selfdistill.execute.outcome import Job, Outcome, Status
from selfdistill.tasks.problem import AssertTests, CallTests, IOTests

log = logging.getLogger(__name__)

# Not `python -I`: that would ignore PYTHONHASHSEED, and a fixed hash seed keeps set/dict-of-str
# iteration order, hence outcomes, reproducible across workers and runs. The environment is ours
# entirely (`env=WORKER_ENV`), so what -I guards against (PYTHONPATH, PYTHONSTARTUP...) is absent.
WORKER_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "MALLOC_ARENA_MAX": "2"}
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(selfdistill.__file__)))
_BOOTSTRAP = f"import sys; sys.path.insert(0, {_PACKAGE_ROOT!r}); from selfdistill.execute.worker import main; main()"


STDOUT_CAP_MIN = 4 << 20  # io cases: more stdout than max(this, 4x expected) fails the case
UID_LOCK_DIRS = ("/run/lock", "/var/lock", "/dev/shm", "/tmp")  # first that exists: shared by every run here


def job_to_wire(job: Job) -> dict:
    """The frame a worker receives: inputs only. Expected outputs (stdin/stdout text, call return values)
    stay in this process, which compares them (`_Worker.run`); assert tests carry their test code, which
    must run beside the program. Raises TypeError for tests it cannot describe."""
    tests = job.tests
    if isinstance(tests, AssertTests):
        wire_tests: dict = {"kind": "assert", "code": tests.code}
    elif isinstance(tests, IOTests):
        cases = [{"input": c.input, "stdout_cap": max(STDOUT_CAP_MIN, 4 * len(c.output))} for c in tests.cases]
        wire_tests = {"kind": "io", "cases": cases}
    elif isinstance(tests, CallTests):
        wire_tests = {"kind": "call", "fn_name": tests.fn_name,
                      "cases": [{"args_json": c.args_json} for c in tests.cases]}
    else:
        raise TypeError(f"tests of type {type(tests).__name__} are not AssertTests, IOTests or CallTests")
    return {
        "job_id": job.job_id,
        "program": job.program,
        "tests": wire_tests,
        "entry_point": job.entry_point,
        "timeout_s": job.timeout_s,
        "memory_mb": job.memory_mb,
    }


class UidLease:
    """Unprivileged uids for this run's slots, each held by an flock on a file in a machine-wide lock dir,
    so two runs on one machine (score and eval, two scores) never share a uid: RLIMIT_NPROC counts
    processes per uid machine-wide. Released when the pool closes, or by the kernel when we die."""

    def __init__(self) -> None:
        self._held: dict[int, int] = {}
        self.directory = next((d for d in UID_LOCK_DIRS if os.path.isdir(d)), "/tmp")

    def take(self) -> int:
        lock_dir = os.path.join(self.directory, "selfdistill-sandbox-uids")
        os.makedirs(lock_dir, mode=0o755, exist_ok=True)
        for uid in range(UID_BASE, UID_BASE + UID_RANGE):
            if uid in self._held:
                continue
            fd = os.open(os.path.join(lock_dir, str(uid)), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self._held[uid] = fd
            return uid
        raise SandboxError(f"all {UID_RANGE} sandbox uids from {UID_BASE} are leased by other runs ({lock_dir})")

    def release(self) -> None:
        for fd in self._held.values():
            os.close(fd)
        self._held.clear()


class _Worker:
    """The harness side of one worker process: start, send a job, await its answer, kill."""

    def __init__(self, slot: int, mode: str, startup_timeout_s: float, uid: int | None = None):
        self.slot, self.mode, self.startup_timeout_s, self.uid = slot, mode, startup_timeout_s, uid
        self.proc: subprocess.Popen | None = None
        self.isolation: dict = {}

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-s", "-P", "-c", _BOOTSTRAP, str(self.slot), self.mode,
             "-" if self.uid is None else str(self.uid), str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=WORKER_ENV,  # nothing of ours (API keys, tokens) reaches a child, not even /proc/self/environ
            cwd="/",
            start_new_session=True,  # a Ctrl-C in the terminal is for us, not for the workers
        )

    def await_hello(self) -> dict:
        try:
            hello = self._read(self.startup_timeout_s)
        except (OSError, protocol.ProtocolError) as e:
            hello = f"{type(e).__name__}: {e}"
        if not isinstance(hello, dict) or not isinstance(hello.get("hello"), dict):
            self.kill()
            raise SandboxError(
                f"sandbox worker {self.slot} (mode={self.mode}) did not start: {hello!r:.200}; its stderr is above. "
                'If this machine forbids namespaces, SandboxPool(mode="none") runs without them.'
            )
        self.isolation = hello["hello"]
        return self.isolation

    def run(self, job: Job, frame: dict, grace_s: float) -> Outcome:
        start = time.monotonic()
        deadline = start + job.timeout_s + grace_s
        verdict: judge.Verdict | None = None
        try:
            protocol.write_frame(self.proc.stdin.fileno(), frame)
            while True:
                answer = self._read(max(deadline - time.monotonic(), 0.001))
                if not (isinstance(answer, dict) and "compare" in answer):
                    break
                verdict = self._compare_io(job, answer)  # the worker asks; only we hold the expected output
                protocol.write_frame(self.proc.stdin.fileno(), {"same": verdict is None})
        except (OSError, protocol.ProtocolError) as e:
            answer = f"{type(e).__name__}: {e}"
        if isinstance(answer, dict) and answer.get("job_id") == job.job_id:
            try:
                status, detail = Status(answer["status"]), str(answer["detail"])
                if "cases" in answer and status is not Status.INFRA:
                    verdict = judge.compare_call(answer["cases"],
                                                 [json.loads(c.expected_json) for c in job.tests.cases])
                if verdict is not None and status is not Status.INFRA:
                    status, detail = Status(verdict[0]), verdict[1]
                return Outcome(job.job_id, status, detail, float(answer["duration_s"]))
            except (KeyError, ValueError, TypeError, AttributeError) as e:
                answer = f"malformed answer {str(answer)[:200]}: {e}"
        detail = self._death_detail(answer)
        self.kill()
        return Outcome(job.job_id, Status.INFRA, detail, round(time.monotonic() - start, 6))

    @staticmethod
    def _compare_io(job: Job, question: dict) -> judge.Verdict | None:
        i, stdout = question["compare"], question["stdout"]
        if not isinstance(i, int) or not isinstance(stdout, str) or not 0 <= i < len(job.tests.cases):
            raise protocol.ProtocolError(f"bad compare request {str(question)[:100]}")
        mismatch = judge.compare_output(stdout, job.tests.cases[i].output)
        return (judge.FAILED, judge.short(f"case {i}: {mismatch}")) if mismatch else None

    def _read(self, timeout_s: float):
        """The next frame, or a string saying why there is none (timeout, EOF)."""
        fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], timeout_s)
        if not ready:
            return f"no answer within {timeout_s:g}s"
        frame = protocol.read_frame(fd)
        return frame if frame is not None else "worker closed its pipe"

    def _death_detail(self, why) -> str:
        code = self.proc.poll() if self.proc else None
        if code is None and self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.proc.wait(timeout=0.5)
        status = f"exit status {code}" if code is not None else "still running"
        return f"sandbox worker {self.slot} failed while running this job ({why}; {status}); respawned"[:300]

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is None:
            return
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                stream.close()
        if self.proc.poll() is None:
            self.proc.kill()  # the worker's namespace init dies with it (PR_SET_PDEATHSIG)
        self.proc.wait()
        self.proc = None

    def close(self, timeout_s: float = 5.0) -> None:
        """Ask politely (EOF on its stdin), then kill."""
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=timeout_s)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


class SandboxPool:
    """Workers that run `Job`s in sandboxes. Use as a context manager.

    `workers`: processes (default: CPU count). `mode`: "auto" (root -> "root", else "userns", else
    "none"), or one of those to insist; see isolation.py. `grace_s`: how long past a job's `timeout_s`
    a silent worker is given before it is declared dead.
    """

    def __init__(self, workers: int | None = None, *, mode: str = "auto", grace_s: float = 30.0,
                 startup_timeout_s: float = 60.0):  # fmt: skip
        if mode not in MODES:
            raise ValueError(f"mode={mode!r}; use one of {', '.join(MODES)}")
        self.n_workers = max(1, workers or os.cpu_count() or 1)
        self.mode, self.grace_s, self.startup_timeout_s = mode, grace_s, startup_timeout_s
        self._workers: list[_Worker] = []
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._isolation: dict | None = None
        self._uids = UidLease()

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        """Start every worker; raises SandboxError if one cannot start."""
        drop = os.geteuid() == 0 and self.mode in ("auto", "root", "none")  # root: children run as a leased uid
        try:
            self._workers = [_Worker(slot, self.mode, self.startup_timeout_s, self._uids.take() if drop else None)
                             for slot in range(self.n_workers)]  # fmt: skip
            for w in self._workers:
                w.start()
            reports = [w.await_hello() for w in self._workers]
        except BaseException:
            for w in self._workers:
                w.kill()
            self._uids.release()
            raise
        self._isolation = reports[0]
        if any(r != reports[0] for r in reports):
            log.warning("sandbox workers report different isolation: %s", reports)
        log.info("sandbox: %d workers, isolation %s", self.n_workers, self._isolation)
        for w in self._workers:
            t = threading.Thread(target=self._feed, args=(w,), name=f"sandbox-feeder-{w.slot}", daemon=True)
            t.start()
            self._threads.append(t)

    def close(self) -> None:
        for _ in self._threads:
            self._tasks.put(None)
        for t in self._threads:
            t.join()
        self._threads.clear()
        for w in self._workers:
            w.close()
        self._uids.release()

    @property
    def isolation(self) -> dict:
        """What the workers achieved, e.g. {"network": "netns", "filesystem": "tmpfs+uid", ...}."""
        if self._isolation is None:
            raise RuntimeError("the pool has not started")
        return dict(self._isolation)

    def worker_pids(self) -> list[int | None]:
        """Process ids of the workers (for diagnostics and tests)."""
        return [w.pid for w in self._workers]

    def slot_uids(self) -> list[int | None]:
        """The uid each slot's programs run as (None: the harness's own uid)."""
        return [w.uid for w in self._workers]

    # --- running -------------------------------------------------------------------------------

    def imap(self, jobs: Iterable[Job]) -> Iterator[Outcome]:
        """Outcomes in completion order. Jobs are pulled lazily, a few per worker ahead."""
        if not self._threads:
            raise RuntimeError("start the pool first (use `with SandboxPool() as pool:`)")
        results: queue.SimpleQueue = queue.SimpleQueue()
        cancelled = threading.Event()
        source, pending, exhausted = iter(jobs), 0, False
        try:
            while True:
                while not exhausted and pending < 2 * self.n_workers:
                    job = next(source, None)
                    if job is None:
                        exhausted = True
                    else:
                        self._tasks.put((job, results, cancelled))
                        pending += 1
                if pending == 0:
                    return
                yield results.get()
                pending -= 1
        finally:
            cancelled.set()  # jobs still queued for an abandoned iterator are skipped

    def run(self, jobs: Iterable[Job], on_outcome: Callable[[Outcome], None]) -> None:
        """Call `on_outcome` for each outcome, in completion order, in the calling thread."""
        for outcome in self.imap(jobs):
            on_outcome(outcome)

    def run_one(self, job: Job) -> Outcome:
        return next(iter(self.imap([job])))

    def _feed(self, worker: _Worker) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            job, results, cancelled = task
            if cancelled.is_set():
                continue
            try:
                outcome = self._run_on(worker, job)
            except Exception as e:  # a harness bug must not hang the caller
                log.exception("sandbox feeder %d", worker.slot)
                outcome = Outcome(job.job_id, Status.INFRA, f"harness error: {type(e).__name__}: {e}"[:300])
            results.put(outcome)

    def _run_on(self, worker: _Worker, job: Job) -> Outcome:
        try:
            frame = job_to_wire(job)
        except (TypeError, AttributeError) as e:
            return Outcome(job.job_id, Status.INFRA, f"malformed job: {e}"[:300])
        if not worker.alive:
            try:
                worker.start()
                worker.await_hello()
            except (OSError, SandboxError) as e:
                log.error("sandbox worker %d could not be respawned: %s", worker.slot, e)
                return Outcome(job.job_id, Status.INFRA, f"sandbox worker {worker.slot} could not start: {e}"[:300])
        return worker.run(job, frame, self.grace_s)
