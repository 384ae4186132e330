"""A sandbox worker: `python -m selfdistill.execute.worker <slot> [auto|root|userns|none]`.

Started by `SandboxPool`, one per slot. It isolates itself once (isolation.py), pre-imports the stdlib
modules programs use so forks start warm, snapshots pristine builtins (guard.py), then loops: read a
job frame on stdin (assert tests are compiled here, once per distinct test code, since every sample of a
task shares them), create a job dir and point HOME/TMPDIR at it, launch one child per program run (one
per case for stdin/stdout tests) and watch it until it exits or the job's wall deadline passes
(launch.py), judge (judge.py), remove the job dir, answer one frame on stdout.

Keep imports minimal: no numpy, no pydantic, nothing from selfdistill.tasks. The worker never runs
program code itself; it only forks. Expected outputs never reach this process: the pool compares
stdin/stdout text (one round trip per case, `ask`) and call return values (sent back with the answer).
Not covered here: what a child can do to itself (see child.py) or see (see isolation.py).
"""

from __future__ import annotations

import gc
import importlib
import itertools
import json
import logging
import os
import resource
import signal
import stat
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
WORKER_AS_BYTES = 2 << 30  # the worker's own address space (soft limit; children set their own)


class BadJob(ValueError):
    """The job frame is malformed: an INFRA fault, never the program's."""


class SlotBroken(Exception):
    """The job dir could not be cleaned: this worker answers, then exits, and the pool starts a fresh one."""


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    slot, mode = int(args[0]), (args[1] if len(args) > 1 else "auto")
    uid = int(args[2]) if len(args) > 2 and args[2] != "-" else None
    parent = int(args[3]) if len(args) > 3 else None
    isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)  # the harness dies -> we die, and our namespace
    if parent is not None and os.getppid() != parent:  # it died before the prctl took effect
        os._exit(1)
    logging.basicConfig(level=logging.WARNING, format=f"sandbox worker {slot}: %(levelname)s %(message)s")
    job_in, job_out = _private_stdio()
    sandbox = isolation.enter(slot, mode, uid)
    confine.scrub_worker_environment()
    confine.make_stdio()
    _preimport()
    isolation.prctl(isolation.PR_SET_NO_NEW_PRIVS, 1)  # inherited: setuid binaries cannot raise a child's privileges
    snapshot = Snapshot()
    stage = child.Stage(snapshot)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft > WORKER_AS_BYTES:  # a flood cannot grow the worker without bound
        resource.setrlimit(resource.RLIMIT_AS, (WORKER_AS_BYTES, hard))
    gc.collect()
    gc.freeze()  # children's garbage collections no longer touch (and copy) the worker's pages
    protocol.write_frame(job_out, {"hello": sandbox.report})
    try:
        serve(job_in, job_out, Context(sandbox, snapshot, stage, job_in))
    finally:
        if not sandbox.pid_namespace:  # job dirs live in the host's /tmp: leave nothing behind
            remove_tree(sandbox.job_root)


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
        ctx.ask = lambda question: _ask(job_in, job_out, question)
        answer = handle(frame, ctx)
        protocol.write_frame(job_out, answer)
        if ctx.broken or ctx.orphaned:
            log.error("slot cannot continue (%s); exiting so the pool starts a fresh one",
                      "harness gone" if ctx.orphaned else ctx.broken)
            sys.exit(3)


def _ask(job_in: int, job_out: int, question: dict) -> dict:
    """One round trip to the pool, which alone holds the expected outputs (stdin/stdout cases)."""
    protocol.write_frame(job_out, question)
    reply = protocol.read_frame(job_in)
    if reply is None:
        raise protocol.ProtocolError("the pool closed the job stream mid-job")
    return reply


def handle(frame: dict, ctx: Context) -> dict:
    start = time.monotonic()
    job_id = str(frame.get("job_id", ""))
    extra: dict = {}
    try:
        job = parse_job(frame)
        del frame
        status, detail, extra = _run_in_jobdir(job, ctx)
    except BadJob as e:
        status, detail = judge.INFRA, judge.short(f"malformed job: {e}")
    except Exception as e:  # a harness fault must become INFRA, not kill the slot
        log.exception("job %s", job_id)
        status, detail = judge.INFRA, judge.short(f"worker error: {type(e).__name__}: {e}")
    answer = {"job_id": job_id, "status": status, "detail": detail, "duration_s": round(time.monotonic() - start, 6)}
    return answer | extra


def parse_job(frame: dict) -> dict:
    """The child spec. The frame carries no expected outputs: the pool keeps them and compares (stdin/stdout
    text, call return values) itself; this process, which forks untrusted children, never held them."""
    try:
        tests, kind = frame["tests"], frame["tests"]["kind"]
        job = {
            "job_id": str(frame.get("job_id", "")),
            "kind": kind,
            "program": _str(frame["program"]),
            "timeout_s": float(frame["timeout_s"]),
            "memory_mb": int(frame["memory_mb"]),
            "entry_point": frame.get("entry_point"),
        }
        _PARSERS[kind](tests, job)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise BadJob(f"{type(e).__name__}: {e}") from None
    if not (0 < job["timeout_s"] <= confine.MAX_TIMEOUT_S and job["memory_mb"] >= confine.MIN_MEMORY_MB):
        raise BadJob(f"need 0 < timeout_s <= {confine.MAX_TIMEOUT_S:g} and memory_mb >= {confine.MIN_MEMORY_MB}")
    return job


def _str(value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _parse_assert(tests: dict, job: dict) -> None:
    job["code"] = code = _str(tests["code"])
    job["tests_code"] = _compiled_tests(code)


_tests_cache: dict[str, object] = {}
TESTS_CACHE_SIZE = 512


def _compiled_tests(code: str):
    """Every sample of a task has the same tests: compile them once per worker, not once per child."""
    if code not in _tests_cache:
        if len(_tests_cache) >= TESTS_CACHE_SIZE:
            _tests_cache.clear()
        _tests_cache[code] = child.compile_tests(code)
    return _tests_cache[code]


def _parse_io(tests: dict, job: dict) -> None:
    cases = _cases(tests)
    job["inputs"] = [_str(c["input"]) for c in cases]
    job["stdout_caps"] = [int(c["stdout_cap"]) for c in cases]


def _parse_call(tests: dict, job: dict) -> None:
    cases = _cases(tests)
    job["fn_name"] = _str(tests["fn_name"])
    job["args"] = [json.loads(_str(c["args_json"])) for c in cases]
    if not all(isinstance(a, list) for a in job["args"]):
        raise ValueError("args_json must be a JSON array")


def _cases(tests: dict) -> list:
    cases = tests["cases"]
    if not isinstance(cases, list) or not cases:
        raise ValueError("a job needs at least one test case (zero cases would pass without running)")
    return cases


_PARSERS = {"assert": _parse_assert, "io": _parse_io, "call": _parse_call}


def _run_in_jobdir(job: dict, ctx: Context) -> tuple[str, str, dict]:
    try:
        jobdir = _make_jobdir(ctx.sandbox)
    except OSError as e:  # a fresh tmpfs (or dir) per job: nothing a program did can cause this
        ctx.broken = f"could not create a job dir: {e}"
        return judge.INFRA, judge.short(f"could not create the job dir: {e}"), {}
    job["jobdir"] = jobdir
    confine.point_environment(jobdir)
    try:
        return _run_kind(job, ctx)
    finally:  # the verdict stands whatever cleanup meets; a slot it cannot clean is replaced
        try:
            sweep(ctx.sandbox)
            _remove_jobdir(jobdir, ctx.sandbox)
        except Exception as e:  # noqa: BLE001
            ctx.broken = f"could not clean {jobdir}: {type(e).__name__}: {e}"


def _run_kind(job: dict, ctx: Context) -> tuple[str, str, dict]:
    """`timeout_s` is one wall-clock budget for the whole job: stdin/stdout cases share it."""
    deadline = time.monotonic() + job["timeout_s"]

    def run(stdin: bytes | None = None, stdout_cap: int | None = None) -> judge.RunResult:
        return run_process(job, ctx, deadline, stdin, stdout_cap)

    if job["kind"] == "assert":
        return (*judge.judge_assert(run()), {})
    if job["kind"] == "call":
        return judge.call_evidence(run(), len(job["args"]))
    for i, stdin in enumerate(job["inputs"]):
        result = run(stdin.encode(), job["stdout_caps"][i])
        verdict = judge.io_case_ending(result, i)
        if verdict:
            return (*verdict, {})
        stdout = (result.stdout or b"").decode("utf-8", "replace")
        del result
        if not ctx.ask({"job_id": job.get("job_id", ""), "compare": i, "stdout": stdout}).get("same"):
            return judge.FAILED, f"case {i}", {"compared": i}
    return judge.PASSED, "", {}


_jobdir_numbers = itertools.count(1)


_jobdir_mounted = False


def _make_jobdir(sandbox: isolation.Sandbox) -> str:
    """In our own mount namespace: a tmpfs of the job's own at JOBDIR. One that the last job left exactly
    as it was made (empty, same mode, no xattrs) is used again; any other is unmounted whole (`_remove_jobdir`)."""
    global _jobdir_mounted
    if sandbox.pid_namespace:
        if not _jobdir_mounted:
            isolation.mount_jobdir(isolation.JOBDIR, sandbox.uid)
            _jobdir_mounted = True
        return isolation.JOBDIR
    path = os.path.join(sandbox.job_root, f"job{next(_jobdir_numbers)}")
    os.mkdir(path, 0o700)
    if sandbox.uid is not None:
        os.chown(path, sandbox.uid, sandbox.gid)
    return path


def _remove_jobdir(path: str, sandbox: isolation.Sandbox) -> None:
    global _jobdir_mounted
    if sandbox.pid_namespace:
        if _as_made(path, sandbox):
            return
        _jobdir_mounted = False
        isolation.unmount(path)  # whatever is in it (a 1,500-deep tree, a full disk) goes in one call
        if os.path.ismount(path):
            raise OSError(f"{path} is still mounted")
        return
    remove_tree(path)
    if os.path.lexists(path):
        raise OSError(f"{path} is still there")


def _as_made(path: str, sandbox: isolation.Sandbox) -> bool:
    """True if the job dir is as a fresh tmpfs would be: empty, mode 0700, owned by the slot, no xattrs."""
    try:
        st = os.lstat(path)
        owner = os.getuid() if sandbox.uid is None else sandbox.uid
        return (stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == owner
                and st.st_gid == (os.getgid() if sandbox.gid is None else sandbox.gid)
                and not os.listdir(path) and not os.listxattr(path))  # fmt: skip
    except OSError:
        return False


def remove_tree(root: str) -> None:
    """rmtree without recursion (a 1,500-deep tree made shutil.rmtree raise RecursionError), without long
    paths (it walks by chdir, so a tree deeper than PATH_MAX goes too) and without following symlinks; a
    directory its owner made unreadable is opened up first (we are its owner or root). Single-threaded
    callers only: it changes the working directory, and restores "/"."""
    if not os.path.lexists(root):
        return
    os.chdir(os.path.dirname(os.path.abspath(root)))
    levels = [[os.path.basename(os.path.abspath(root))]]  # names still to remove, per depth below the start
    try:
        while levels:
            pending = levels[-1]
            if not pending:
                levels.pop()
                if levels:
                    os.chdir("..")
                    os.rmdir(levels[-1].pop())
                continue
            name = pending[-1]
            try:
                st = os.lstat(name)
            except FileNotFoundError:
                pending.pop()
                continue
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(name)
                pending.pop()
                continue
            os.chmod(name, 0o700)
            os.chdir(name)
            levels.append(os.listdir("."))
    finally:
        os.chdir("/")


if __name__ == "__main__":
    main()
