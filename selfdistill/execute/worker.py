"""A sandbox worker: `python -m selfdistill.execute.worker <slot> [auto|root|userns|none]`.

Started by `SandboxPool`, one per slot. It isolates itself once (isolation.py), pre-imports the stdlib
modules programs use so forks start warm, snapshots pristine builtins (guard.py), then loops: read a
job frame on stdin (assert tests are compiled here, once per distinct test code, since every sample of a
task shares them), create a job dir and point HOME/TMPDIR at it, launch one child per program run (one
per case for stdin/stdout tests) and watch it until it exits or the job's wall deadline passes
(launch.py), judge (judge.py), remove the job dir, answer one frame on stdout.

Keep imports minimal: no numpy, no pydantic, nothing from selfdistill.tasks. The worker never runs
program code itself; it only forks. Expected outputs never reach a child's object graph (`secrets`).
Not covered here: what a child can do to itself (see child.py) or see (see isolation.py).
"""

from __future__ import annotations

import gc
import importlib
import itertools
import json
import logging
import os
import shutil
import sys
import time

from selfdistill.execute import child, confine, isolation, judge, protocol
from selfdistill.execute.guard import Snapshot
from selfdistill.execute.launch import Context, run_process, sweep

log = logging.getLogger("selfdistill.execute.worker")

PREIMPORTS = (
    "math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string", "typing",
    "random", "json", "fractions", "decimal", "statistics", "hashlib", "copy", "operator", "datetime",
    "cmath", "array", "dataclasses", "enum", "numbers", "io", "time", "queue", "threading", "struct",
    "textwrap", "unicodedata", "collections.abc", "contextlib", "pprint", "tempfile", "string",
)  # fmt: skip
STDOUT_CAP_MIN = 4 << 20  # io cases: more stdout than max(this, 4x expected) fails the case


class BadJob(ValueError):
    """The job frame is malformed: an INFRA fault, never the program's."""


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    slot, mode = int(args[0]), (args[1] if len(args) > 1 else "auto")
    logging.basicConfig(level=logging.WARNING, format=f"sandbox worker {slot}: %(levelname)s %(message)s")
    job_in, job_out = _private_stdio()
    sandbox = isolation.enter(slot, mode)
    confine.scrub_worker_environment()
    confine.make_stdio()
    _preimport()
    isolation.prctl(isolation.PR_SET_NO_NEW_PRIVS, 1)  # inherited: setuid binaries cannot raise a child's privileges
    snapshot = Snapshot()
    stage = child.Stage(snapshot)
    gc.collect()
    gc.freeze()  # children's garbage collections no longer touch (and copy) the worker's pages
    protocol.write_frame(job_out, {"hello": sandbox.report})
    try:
        serve(job_in, job_out, Context(sandbox, snapshot, stage))
    finally:
        if not sandbox.pid_namespace:  # job dirs live in the host's /tmp: leave nothing behind
            shutil.rmtree(sandbox.job_root, ignore_errors=True)


def _private_stdio() -> tuple[int, int]:
    """Move the job pipes off fds 0/1, so nothing but this loop reads or writes them."""
    job_in, job_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    try:
        os.fstat(2)
    except OSError:  # started without stderr: keep fd 2 taken, or a pipe could land there
        os.dup2(devnull, 2)
    os.close(devnull)
    return job_in, job_out


def _preimport() -> None:
    for name in PREIMPORTS:
        try:
            importlib.import_module(name)
        except ImportError:
            log.warning("pre-import of %s failed", name)


def serve(job_in: int, job_out: int, ctx: Context) -> None:
    while True:
        try:
            frame = protocol.read_frame(job_in)
        except protocol.ProtocolError as e:
            log.error("job stream broken (%s); exiting", e)
            sys.exit(2)
        if frame is None:
            return
        protocol.write_frame(job_out, handle(frame, ctx))


def handle(frame: dict, ctx: Context) -> dict:
    start = time.monotonic()
    job_id = str(frame.get("job_id", ""))
    try:
        job, secrets = parse_job(frame)
        status, detail = _run_in_jobdir(job, secrets, ctx)
    except BadJob as e:
        status, detail = judge.INFRA, judge.short(f"malformed job: {e}")
    except Exception as e:  # a harness fault must become INFRA, not kill the slot
        log.exception("job %s", job_id)
        status, detail = judge.INFRA, judge.short(f"worker error: {type(e).__name__}: {e}")
    return {"job_id": job_id, "status": status, "detail": detail, "duration_s": round(time.monotonic() - start, 6)}


def parse_job(frame: dict) -> tuple[dict, list]:
    """The child spec, and the expected values, popped out of `frame` so no child inherits them."""
    try:
        tests, kind = frame["tests"], frame["tests"]["kind"]
        job = {
            "kind": kind,
            "program": _str(frame["program"]),
            "timeout_s": float(frame["timeout_s"]),
            "memory_mb": int(frame["memory_mb"]),
            "entry_point": frame.get("entry_point"),
        }
        secrets = _PARSERS[kind](tests, job)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise BadJob(f"{type(e).__name__}: {e}") from None
    if not (job["timeout_s"] > 0 and job["memory_mb"] > 0):
        raise BadJob("timeout_s and memory_mb must be positive")
    return job, secrets


def _str(value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _parse_assert(tests: dict, job: dict) -> list:
    job["code"] = code = _str(tests["code"])
    job["tests_code"] = _compiled_tests(code)
    return []


_tests_cache: dict[str, object] = {}
TESTS_CACHE_SIZE = 512


def _compiled_tests(code: str):
    """Every sample of a task has the same tests: compile them once per worker, not once per child."""
    if code not in _tests_cache:
        if len(_tests_cache) >= TESTS_CACHE_SIZE:
            _tests_cache.clear()
        _tests_cache[code] = child.compile_tests(code)
    return _tests_cache[code]


def _parse_io(tests: dict, job: dict) -> list:
    cases = _cases(tests)
    job["inputs"] = [_str(c["input"]) for c in cases]
    return [_str(c.pop("output")) for c in cases]


def _parse_call(tests: dict, job: dict) -> list:
    cases = _cases(tests)
    job["fn_name"] = _str(tests["fn_name"])
    job["args"] = [json.loads(_str(c["args_json"])) for c in cases]
    if not all(isinstance(a, list) for a in job["args"]):
        raise ValueError("args_json must be a JSON array")
    return [json.loads(_str(c.pop("expected_json"))) for c in cases]


def _cases(tests: dict) -> list:
    cases = tests["cases"]
    if not isinstance(cases, list) or not cases:
        raise ValueError("a job needs at least one test case (zero cases would pass without running)")
    return cases


_PARSERS = {"assert": _parse_assert, "io": _parse_io, "call": _parse_call}


def _run_in_jobdir(job: dict, secrets: list, ctx: Context) -> judge.Verdict:
    try:
        jobdir = _make_jobdir(ctx.sandbox)
    except OSError as e:
        return judge.INFRA, judge.short(f"could not create the job dir: {e}")
    job["jobdir"] = jobdir
    confine.point_environment(jobdir)
    try:
        return _run_kind(job, secrets, ctx)
    finally:
        sweep(ctx.sandbox)
        _remove_jobdir(jobdir)


def _run_kind(job: dict, secrets: list, ctx: Context) -> judge.Verdict:
    """`timeout_s` is one wall-clock budget for the whole job: stdin/stdout cases share it."""
    deadline = time.monotonic() + job["timeout_s"]

    def run(stdin: bytes | None = None, stdout_cap: int | None = None) -> judge.RunResult:
        return run_process(job, ctx, secrets, deadline, stdin, stdout_cap)

    if job["kind"] == "assert":
        return judge.judge_assert(run())
    if job["kind"] == "call":
        return judge.judge_call(run(), secrets)
    for i, stdin in enumerate(job["inputs"]):
        cap = max(STDOUT_CAP_MIN, 4 * len(secrets[i]))
        result = run(stdin.encode(), cap)  # forks: no expected value may be in a local here
        verdict = judge.judge_io_case(result, secrets[i], i)
        if verdict:
            return verdict
    return judge.PASSED, ""


_jobdir_numbers = itertools.count(1)


def _make_jobdir(sandbox: isolation.Sandbox) -> str:
    path = os.path.join(sandbox.job_root, f"job{next(_jobdir_numbers)}")
    os.mkdir(path, 0o700)
    if sandbox.uid is not None:
        os.chown(path, sandbox.uid, sandbox.gid)
    return path


def _remove_jobdir(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        shutil.rmtree(path, ignore_errors=True)
    if os.path.lexists(path):
        log.warning("could not remove job dir %s", path)


if __name__ == "__main__":
    main()
