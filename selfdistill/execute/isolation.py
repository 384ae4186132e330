"""Process-level isolation for one sandbox worker: namespaces, private mounts, per-slot uid.

`enter(slot, mode)` runs once, at worker start, and returns a `Sandbox` describing what it got.
Modes, strongest first (`auto` picks `root` when we run as root, else tries `userns`, else `none`):

- `root`: unshare mount, network, IPC, UTS and PID namespaces; make every mount private; put fresh
  root-owned 0755 tmpfs over the host's world-writable dirs (/tmp, /var/tmp, /dev/shm, /run/lock);
  hide non-traversable ancestors of the interpreter (e.g. /root, mode 0700) behind a tmpfs that
  re-exposes only the Python install read-only; mount a fresh /proc with hidepid=2. Untrusted children
  then run under the slot's own unprivileged uid/gid (61000+slot), so RLIMIT_NPROC applies per slot,
  they can write only their job dir, and they cannot signal the worker.
- `userns`: the same namespaces inside a new user namespace (no root needed), but only our own uid is
  mapped, so children keep the harness user's uid (they can write what that user can write, outside
  the private tmp dirs); capabilities are dropped in the child.
- `none`: no namespaces; job dirs under the host's temp dir, no network isolation, orphans found and
  killed via PR_SET_CHILD_SUBREAPER. As root, children still run as the slot uid (fork bombs stay
  capped; a Python install under a 0700 directory is then unreadable for lazy imports). For
  debugging, or machines where namespaces are forbidden.

With a PID namespace the worker becomes its init (pid 1): orphans of a job reparent to it, and one
`kill(-1, SIGKILL)` from it ends every process a job left behind (daemons included). The process that
was started (the "outer" process) only waits for the init and exits with its status; the init dies with
it (PR_SET_PDEATHSIG), and with the init the whole namespace.

The IPC namespace outlives jobs, so SysV message queues and semaphore sets are disabled in it and
shared memory dies with its last user (`_limit_ipc`). The report says what was achieved, e.g.
{"mode": "root", "network": "netns", "filesystem": "tmpfs+uid", "uid": "dropped", "pid": "pidns",
"fork_limit": "nproc", "proc": "pidns+hidepid", "exposed": [...]}; callers record it with outcomes.

Not covered: reads. A child can read whatever is world-readable on the host (other than the hidden
ancestors), e.g. a dataset file with expected outputs if its permissions allow. No seccomp filter, no
cgroup (memory is capped by RLIMIT_AS, see confine.py). Deliberately broken: anything that needs to
write outside the job dir, e.g. `multiprocessing` locks and pools (POSIX semaphores live in /dev/shm).
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import stat
import sys
import tempfile

log = logging.getLogger(__name__)

MODES = ("auto", "root", "userns", "none")
UID_BASE = 61000  # slot s runs untrusted code as uid/gid UID_BASE + s (need not exist in /etc/passwd)
SHARED_WRITABLE_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
JOB_TMPFS_OPTS = "mode=0755,size=256m,nr_inodes=100000"  # /tmp: holds job dirs (RAM-backed)
OTHER_TMPFS_OPTS = "mode=0755,size=1m,nr_inodes=64"

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 36, 38

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


class Sandbox:
    """What `enter` achieved; read by the worker loop and reported to the pool."""

    def __init__(self, mode: str, slot: int, job_root: str, pid_namespace: bool, drop_uid: bool, report: dict):
        self.mode = mode
        self.slot = slot
        self.job_root = job_root
        self.pid_namespace = pid_namespace
        self.uid = self.gid = UID_BASE + slot if drop_uid else None  # None: children keep our uid
        self.report = report


def libc_call(name: str, *args) -> None:
    """Call a libc function; raise OSError with errno on a -1 return."""
    if getattr(_libc, name)(*args) == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}: {os.strerror(err)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    libc_call("mount", _bytes(source), _bytes(target), _bytes(fstype), flags, _bytes(data))


def _bytes(text: str | None) -> bytes | None:
    return None if text is None else text.encode()


def prctl(option: int, arg: int = 0) -> None:
    libc_call("prctl", option, arg, 0, 0, 0)


def enter(slot: int, mode: str = "auto") -> Sandbox:
    """Isolate this process as far as the machine allows; returns in the sandbox's init process.

    "auto" degrades (root -> userns -> none) and logs why; an explicit mode fails instead.
    """
    if mode not in MODES:
        raise ValueError(f"unknown sandbox mode {mode!r}; use one of {', '.join(MODES)}")
    candidates = {"auto": (["root"] if os.geteuid() == 0 else []) + ["userns", "none"]}.get(mode, [mode])
    for candidate in candidates:
        if candidate == "none":
            return _no_isolation(slot)
        try:
            _unshare(candidate)
        except OSError as e:
            if mode != "auto":
                raise
            log.warning("sandbox slot %d: %s namespaces unavailable (%s); degrading", slot, candidate, e)
            continue
        return _isolate(slot, candidate)
    raise AssertionError("unreachable: 'none' ends every candidate list")


def _unshare(mode: str) -> None:
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID
    if mode == "root":
        libc_call("unshare", flags)
        return
    uid, gid = os.getuid(), os.getgid()
    libc_call("unshare", flags | CLONE_NEWUSER)
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"0 {uid} 1")
    _write("/proc/self/gid_map", f"0 {gid} 1")


def _isolate(slot: int, mode: str) -> Sandbox:
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    needed = _interpreter_paths()
    exposed: list[str] = []
    if mode == "root":  # an unprivileged uid must be able to read the interpreter
        for blocker, paths in _blocked(needed).items():
            exposed += _cover(blocker, "mode=0755,size=1m", paths)
    for d in SHARED_WRITABLE_DIRS:
        if os.path.isdir(d):
            inside = [p for p in needed if p.startswith(d + "/")]
            exposed += _cover(d, JOB_TMPFS_OPTS if d == "/tmp" else OTHER_TMPFS_OPTS, inside)
    _become_init()
    proc = _mount_proc(hidepid=mode == "root")
    _limit_ipc()
    prctl(PR_SET_DUMPABLE, 0)  # same-uid children cannot ptrace the worker
    report = {
        "mode": mode,
        "network": "netns",
        "filesystem": "tmpfs+uid" if mode == "root" else "tmpfs",
        "uid": "dropped" if mode == "root" else "same",
        "pid": "pidns",
        "fork_limit": "nproc",
        "proc": proc,
        "exposed": exposed,
    }
    return Sandbox(mode, slot, "/tmp", True, mode == "root", report)


def _no_isolation(slot: int) -> Sandbox:
    """No namespaces. As root, children still drop to the slot uid: it is what stops a fork bomb."""
    prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of a job reparent to us, so we can find and kill them
    root = os.geteuid() == 0
    job_root = tempfile.mkdtemp(prefix=f"selfdistill-slot{slot}-")
    os.chmod(job_root, 0o711)  # the slot uid must reach its job dir
    report = {
        "mode": "none",
        "network": "none",
        "filesystem": "tmpdir-only",  # the host's /tmp and friends stay writable
        "uid": "dropped" if root else "same",
        "pid": "subreaper",
        "fork_limit": "nproc" if root else "none",
        "proc": "host",
        "exposed": [],
    }
    return Sandbox("none", slot, job_root, False, root, report)


def _become_init() -> None:
    """Fork into the new PID namespace. The parent stays behind as a waiter; the child (pid 1) returns."""
    outer = os.pidfd_open(os.getpid())  # its pid means nothing inside the new namespace; a pidfd does
    pid = os.fork()
    if pid:
        os.close(outer)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        os._exit(code if 0 <= code < 256 else 1)
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setsid()  # our own session and group (1 here), rather than one that has no id in this namespace
    exited = select.select([outer], [], [], 0)[0]  # readable once the process has exited
    os.close(outer)
    if exited:  # the outer died before prctl took effect
        os._exit(1)


def _mount_proc(hidepid: bool) -> str:
    try:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2" if hidepid else None)
    except OSError as e:
        log.warning("sandbox: could not mount a private /proc (%s); children see the host's", e)
        return "host"
    return "pidns+hidepid" if hidepid else "pidns"


def _limit_ipc() -> None:
    """SysV IPC lives as long as the worker's IPC namespace: forbid what could outlive a job."""
    for path, value in (
        ("/proc/sys/kernel/shm_rmid_forced", "1"),
        ("/proc/sys/kernel/msgmni", "0"),
        ("/proc/sys/kernel/sem", "0 0 0 0"),
        ("/proc/sys/fs/mqueue/queues_max", "0"),
    ):
        try:
            _write(path, value)
        except OSError as e:
            log.debug("sandbox: could not set %s (%s)", path, e)


def _blocked(paths: list[str]) -> dict[str, list[str]]:
    """Group paths by their outermost ancestor that others cannot traverse (e.g. /root, mode 0700)."""
    by_blocker: dict[str, list[str]] = {}
    for path in paths:
        blocker = _blocking_ancestor(path)
        if blocker and blocker != path:
            by_blocker.setdefault(blocker, []).append(path)
        elif blocker:
            log.warning("sandbox: %s is not readable by other users; untrusted imports from it fail", path)
    return by_blocker


def _cover(directory: str, tmpfs_opts: str, keep: list[str]) -> list[str]:
    """Mount a fresh tmpfs over `directory`, then bind `keep` (paths under it) back, read-only.

    Host permissions are never changed: the new view exists only in this mount namespace.
    """
    keep = [p for p in keep if not any(p != q and p.startswith(q + "/") for q in keep)]
    fds = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in keep}
    mount("tmpfs", directory, "tmpfs", MS_NOSUID | MS_NODEV, tmpfs_opts)
    for p, fd in fds.items():
        os.makedirs(p, mode=0o755, exist_ok=True)
        mount(f"/proc/self/fd/{fd}", p, None, MS_BIND | MS_REC)
        mount(None, p, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        os.close(fd)
    return keep


def _interpreter_paths() -> list[str]:
    paths = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
    paths.update(p for p in sys.path if p)
    resolved = {os.path.realpath(p) for p in paths}
    return sorted(p for p in resolved if os.path.isdir(p))


def _blocking_ancestor(path: str) -> str | None:
    """The outermost directory on `path` that others cannot traverse, or None."""
    parts = path.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        d = "/" + "/".join(parts[:i])
        if not os.stat(d).st_mode & stat.S_IXOTH:
            return d
    return None


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
