"""Launch one child for one program run and watch it: fork, pipes, deadline, sweep, raw result.

Used by worker.py for every run. `run_process` forks (see `fast_fork`), gives the child its stdin
(a memfd with the case input, or /dev/null), a result pipe, a stderr pipe and, for stdin/stdout
tests, a stdout pipe; polls the child's pidfd and the pipes with bounded buffers until the child exits
or the wall deadline passes (then SIGKILL); then `sweep`s every process the run left behind, so the
pipes reach EOF, and returns a `judge.RunResult`. Messages count only on lines carrying this run's
nonce. Not covered: judging (judge.py), what the child does (child.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import math
import os
import select
import signal
import threading
import time

from selfdistill.execute import child, isolation, judge
from selfdistill.execute.guard import Snapshot

log = logging.getLogger("selfdistill.execute.launch")

READ_CHUNK = 1 << 16
RESULT_CAP = 32 << 20  # bytes a run may write to its result pipe in all; more kills it (a flood is an ERROR)
STDERR_TAIL = 4096


class Context:
    """Everything a job needs from its worker, built once at startup."""

    def __init__(self, sandbox: isolation.Sandbox, snapshot: Snapshot, stage: child.Stage, job_in: int | None = None):
        self.sandbox, self.snapshot, self.stage = sandbox, snapshot, stage
        self.fork = fast_fork()
        self.job_in = job_in  # the pool's end: hung up while a job runs = the harness is gone
        self.ask = None  # set by the worker loop: a round trip to the pool
        self.broken: str | None = None  # why this slot must be replaced after the current answer
        self.orphaned = False


def run_process(job: dict, ctx: Context, deadline: float, stdin: bytes | None,
                stdout_cap: int | None) -> judge.RunResult:  # fmt: skip
    """Fork one child for `job`, watch it until it exits or `deadline`, then sweep its descendants."""
    nonce = os.urandom(16).hex()
    wall_s = max(deadline - time.monotonic(), 0.001)
    job["cpu_s"] = math.ceil(wall_s) + 1
    ours, theirs = _open_channels(stdin, capture_stdout=stdout_cap is not None)
    report = child.make_reporter(nonce)
    try:
        pid = ctx.fork()
        if pid == 0:
            try:
                child.main(job, ctx.sandbox, theirs, report, ctx.snapshot, ctx.stage)
            finally:
                os._exit(child.SETUP_FAILED)
    finally:
        for fd in set(theirs):
            os.close(fd)
    if pid < 0:
        for fd in ours.values():
            os.close(fd)
        raise OSError(ctypes.get_errno(), "fork failed")
    watch = _Watch(pid, ours, deadline, stdout_cap, nonce, ctx.job_in)
    try:
        status, cpu_s = watch.wait()
        sweep(ctx.sandbox)
        watch.drain()
    finally:
        watch.close()
    if watch.orphaned:
        ctx.orphaned = True
    return judge.RunResult(
        wait_status=status,
        timed_out=watch.timed_out,
        cpu_s=cpu_s,
        cpu_limit_s=job["cpu_s"],
        wall_limit_s=job["timeout_s"],
        messages=watch.messages.finish(),
        stderr_tail=bytes(watch.buffers["stderr"][-STDERR_TAIL:]).decode("utf-8", "replace"),
        stdout=bytes(watch.buffers["stdout"]) if stdout_cap is not None else None,
        stdout_overflow=watch.overflow,
        result_overflow=watch.messages.overflow,
    )


def _open_channels(stdin: bytes | None, capture_stdout: bool) -> tuple[dict, tuple[int, int, int, int]]:
    """Our read ends by name, and the child's (stdin, stdout, stderr, result) fds."""
    ours: dict[str, int] = {}
    ends: dict[str, int] = {}
    for name in ("result", "stderr") + (("stdout",) if capture_stdout else ()):
        ours[name], ends[name] = os.pipe()
    devnull = os.open(os.devnull, os.O_RDWR)
    stdin_fd = devnull if stdin is None else _memfd(stdin)
    theirs = (stdin_fd, ends.get("stdout", devnull), ends["stderr"], ends["result"])
    if devnull not in theirs:
        os.close(devnull)
    return ours, theirs


def _memfd(data: bytes) -> int:
    """An in-memory file holding `data`, positioned at its start (a pipe would need a writer thread)."""
    fd = os.memfd_create("stdin")
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


class _Watch:
    """Poll a child's pidfd and pipes until it exits or the deadline passes; keep bounded buffers."""

    def __init__(self, pid: int, fds: dict[str, int], deadline: float, stdout_cap: int | None, nonce: str = "",
                 job_in: int | None = None):  # fmt: skip
        self.pid, self.deadline, self.stdout_cap = pid, deadline, stdout_cap
        self.fds = dict(fds)
        self.names = {fd: name for name, fd in fds.items()}
        self.buffers = {"stderr": bytearray(), "stdout": bytearray()}
        self.messages = _Messages(nonce)
        self.timed_out = self.overflow = self.orphaned = False
        self.job_in = job_in
        self.pidfd = os.pidfd_open(pid)
        self.poller = select.poll()
        self.poller.register(self.pidfd, select.POLLIN)
        for fd in fds.values():
            self.poller.register(fd, select.POLLIN)
        if job_in is not None:  # the pool never writes while a program runs: any event is its end
            self.poller.register(job_in, 0)  # POLLHUP/POLLERR are always reported

    def wait(self) -> tuple[int, float]:
        """Returns the wait status and the CPU seconds the child used."""
        while not self._step():
            pass
        _, status, usage = os.wait4(self.pid, 0)
        return status, usage.ru_utime + usage.ru_stime

    def _step(self) -> bool:
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.timed_out = True
            return self._kill()
        for fd, _ in self.poller.poll(max(left * 1000, 1)):
            if fd == self.pidfd:
                return True
            if fd == self.job_in:
                self.orphaned = True
                self.poller.unregister(fd)
                return self._kill()
            if not self._read(fd) and (self.overflow or self.messages.overflow):
                return self._kill()
        return False

    def _kill(self) -> bool:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            os.kill(self.pid, signal.SIGKILL)
        return True

    def _read(self, fd: int) -> bool:
        """Read one chunk; False at EOF or when the stdout cap is hit."""
        data = os.read(fd, READ_CHUNK)
        if not data:
            self.poller.unregister(fd)
            del self.fds[self.names[fd]]
            os.close(fd)
            return False
        name = self.names[fd]
        if name == "result":
            return self.messages.feed(data)
        buf = self.buffers[name]
        buf += data
        if name == "stderr" and len(buf) > 4 * STDERR_TAIL:
            del buf[:-STDERR_TAIL]
        elif name == "stdout" and len(buf) > self.stdout_cap:
            self.overflow = True
            return False
        return True

    def drain(self) -> None:
        """Read what is left once every writer is dead (or, without a PID namespace, what is there)."""
        for name, fd in list(self.fds.items()):
            os.set_blocking(fd, False)
            try:
                while name in self.fds and self._read(fd):
                    pass
            except BlockingIOError:
                pass

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()
        os.close(self.pidfd)


class _Messages:
    """The child's messages, parsed as they arrive: lines that start with this run's nonce. Anything else
    is program noise, dropped at once; past RESULT_CAP bytes in all the run is killed (`overflow`), so
    a flood of short lines costs the worker neither memory nor time."""

    def __init__(self, nonce: str):
        self.prefix = nonce.encode() + b" "
        self.partial = bytearray()
        self.total = 0
        self.out: list[dict] = []
        self.overflow = False

    def feed(self, data: bytes) -> bool:
        """False once the cap is passed (the caller kills the run)."""
        self.total += len(data)
        if self.total > RESULT_CAP:
            self.overflow = True
            self.partial.clear()
            return False
        self.partial += data
        end = self.partial.rfind(b"\n")
        if end >= 0:
            for line in bytes(self.partial[:end]).split(b"\n"):
                self._line(line)
            del self.partial[: end + 1]
        return True

    def _line(self, line: bytes) -> None:
        if line.startswith(self.prefix):
            try:
                msg = json.loads(line[len(self.prefix) :])
            except ValueError:
                return
            if isinstance(msg, dict):
                self.out.append(msg)

    def finish(self) -> list[dict]:
        if self.partial and not self.overflow:
            self._line(bytes(self.partial))
        self.partial.clear()
        return self.out


def _messages(data: bytes, nonce: str) -> list[dict]:
    """The child's messages in `data` (for tests)."""
    m = _Messages(nonce)
    m.feed(data)
    return m.finish()


def fast_fork():
    """`os.fork` minus CPython's after-fork hooks, which cost a child ~170 page copies (~0.7 ms here).

    Those hooks (threading, random, logging re-initialisation) only matter when other threads may
    hold locks at the fork; the worker has exactly one thread, checked here. The child reseeds
    `random` itself. Falls back to `os.fork` where libc's fork is not reachable.
    """
    if threading.active_count() != 1:
        log.warning("worker has %d threads; using os.fork", threading.active_count())
        return os.fork
    try:
        libc_fork = ctypes.PyDLL(None, use_errno=True).fork  # PyDLL: the GIL stays held across the call
    except (OSError, AttributeError):
        return os.fork
    libc_fork.restype = ctypes.c_int
    libc_fork.argtypes = []
    return libc_fork


def sweep(sandbox: isolation.Sandbox) -> None:
    """Kill and reap every process a job left behind: daemons, fork bombs, stopped processes."""
    while _has_children():
        targets = [-1] if sandbox.pid_namespace else _descendants(os.getpid())  # -1: all in our PID ns
        for pid in targets:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _has_children() -> bool:
    """Reap what has exited; True while some child (or adopted orphan) is still alive."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True


def _descendants(root: int) -> list[int]:
    """Every process below `root`, via /proc/<pid>/task/<tid>/children (no PID namespace to kill)."""
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            found += kids
            stack += kids
    return found
