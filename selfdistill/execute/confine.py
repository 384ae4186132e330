"""Confinement of a freshly forked child, before any program code runs (called by child.main).

In order: wire fds 0-3 and close every other fd (the pool's pipes among them), start a new session,
set rlimits (CPU seconds, address space, file size, processes, core dumps, open files), enter the job
dir (HOME/TMPDIR already name it: the worker sets them before forking, `point_environment`), drop
capabilities (user-namespace mode), drop to the slot uid/gid with no supplementary groups, install
fresh stdio objects. RLIMIT_AS covers the interpreter inherited from the worker (~27 MB of address
space), so `memory_mb` is the whole process, as a fresh `python` would be.

Not covered: seccomp filtering of syscalls; cgroups. RLIMIT_AS is per process, so a job's processes
together may hold up to NPROC x memory_mb (xfail test), and nothing caps a job's CPU share: up to NPROC
busy processes compete with other slots until the wall deadline. Disk: RLIMIT_FSIZE per file, and the
worker's /tmp tmpfs size in total.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import random
import resource
import signal
import sys

from selfdistill.execute import isolation

RESULT_FD = 3
MIN_MEMORY_MB = 64  # RLIMIT_AS below what a forked child already maps (~27 MB) plus headroom is no cap at all
MAX_TIMEOUT_S = 600.0
FSIZE_BYTES = 16 << 20
NPROC = 32
NOFILE = 256
PR_CAPBSET_DROP = 24

_inherited_streams: list = []  # the worker's own stdio objects: freeing them would close fds 0-2
STDIO: tuple = ()  # text streams on fds 0-2 for children, made once by `make_stdio`


def make_stdio() -> None:
    """Called once in the worker: the stdio objects every child installs (still unused, so empty)."""
    global STDIO
    _inherited_streams.extend((sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__))
    STDIO = (  # they live as long as the process: no context manager
        open(0, encoding="utf-8", errors="surrogateescape", closefd=False),  # noqa: SIM115
        open(1, "w", encoding="utf-8", closefd=False),  # noqa: SIM115
        open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1),  # noqa: SIM115
    )


def wire_fds(stdin: int, stdout: int, stderr: int, result: int) -> None:
    """Sources are >= 3 (the worker keeps 0-2 open), so only the last dup2 can land on a source fd."""
    for target, fd in ((0, stdin), (1, stdout), (2, stderr), (RESULT_FD, result)):
        os.dup2(fd, target)
    os.closerange(RESULT_FD + 1, 1 << 20)  # the pool's pipes and every other worker fd


def confine(spec: dict, sandbox: isolation.Sandbox) -> None:
    os.setsid()
    _set_limits(spec["cpu_s"], spec["memory_mb"], nproc=sandbox.uid is not None or sandbox.mode == "userns")
    os.chdir(spec["jobdir"])
    os.umask(0o077)
    if sandbox.mode == "userns":
        _drop_capabilities()
    if sandbox.uid is not None:
        os.setgroups([])
        os.setresgid(sandbox.gid, sandbox.gid, sandbox.gid)
        os.setresuid(sandbox.uid, sandbox.uid, sandbox.uid)
    if not sandbox.pid_namespace:  # after the uid change, which clears it: the worker dies -> so do we
        isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
    _fresh_interpreter_state()


def _set_limits(cpu_s: int, memory_mb: int, nproc: bool) -> None:
    limits = {
        resource.RLIMIT_CPU: (cpu_s, cpu_s + 1),  # SIGXCPU at the soft limit, SIGKILL one second later
        resource.RLIMIT_AS: (memory_mb << 20, memory_mb << 20),
        resource.RLIMIT_FSIZE: (FSIZE_BYTES, FSIZE_BYTES),
        resource.RLIMIT_CORE: (0, 0),
        resource.RLIMIT_NOFILE: (NOFILE, NOFILE),
    }
    if nproc:  # counted per uid (per user namespace): pointless as root, harmful when sharing our uid
        limits[resource.RLIMIT_NPROC] = (NPROC, NPROC)
    for which, value in limits.items():
        resource.setrlimit(which, value)


def point_environment(jobdir: str) -> None:
    """Called in the WORKER before it forks a job's children (the worker's environment is already
    minimal, see `scrub_worker_environment`): HOME and TMPDIR name the job dir. Done there rather than
    in each child, the child inherits it without writing (copying) the pages these objects live on."""
    os.environ["HOME"] = os.environ["TMPDIR"] = jobdir
    tempfile = sys.modules.get("tempfile")
    if tempfile is not None:
        tempfile.tempdir = None  # recomputed from TMPDIR


def scrub_worker_environment() -> None:
    """Called once in the worker: what every child inherits (the pool also starts us with little)."""
    os.environ.clear()
    os.environ.update(
        PATH="/usr/local/bin:/usr/bin:/bin",
        LANG="C.UTF-8",
        PYTHONHASHSEED="0",
        PYTHONDONTWRITEBYTECODE="1",
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )


def _drop_capabilities() -> None:
    """In a user namespace we are uid 0 with every capability in it: drop them all."""
    for cap in range(64):
        try:
            isolation.prctl(PR_CAPBSET_DROP, cap)
        except OSError:
            break
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = (ctypes.c_uint32 * 6)()
    isolation.libc_call("capset", header, data)


def _fresh_interpreter_state() -> None:
    sys.stdin, sys.stdout, sys.stderr = sys.__stdin__, sys.__stdout__, sys.__stderr__ = STDIO
    sys.argv = ["program.py"]
    atexit._clear()  # handlers the worker registered (logging) are not the program's
    random.seed(0)  # forks reseed from urandom: make programs that use `random` reproducible
