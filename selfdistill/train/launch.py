"""A training launch that cannot double-train: worker lifetime tied to the launcher, one job per directory.

- `die_with_parent()`: Linux's PR_SET_PDEATHSIG, so a process gets SIGTERM when the process that started
  it dies, SIGKILL included. The round sets it on the launcher it starts (`accelerate launch` or this
  Python), and every worker of a launcher (LOCAL_RANK set) sets it on itself, so killing any process up
  the chain (`selfdistill ssd`, accelerate, torch's elastic agent) ends the workers under it instead of
  leaving them training to the end. A job started by hand without a launcher does not set it (under
  nohup it must outlive its shell). Elsewhere than Linux it does nothing.
- `with hold_output(out_dir):` each rank holds an exclusive `flock` on `<out>/locks/rank<R>.lock` (pid
  inside) while it trains; the kernel releases it when the process ends, however it ends. A second
  launch into the same directory while a rank of the first still runs is refused (`DataError`, exit 2)
  naming its pid, instead of training a second time beside it.
- `resolve_launcher(argv, base)`: a config file named in train.launcher (`--config_file X`,
  `--deepspeed_config_file X`) by a relative path is relative to the spec file; when no such file is
  there, the name of a config shipped in the package (`examples/accelerate/zero3.yaml`, or `zero3.yaml`)
  means the packaged copy (selfdistill/data/accelerate/, which examples/accelerate/ links to).

Not here: what is trained (finetune.py).
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selfdistill.errors import DataError

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
PACKAGED_CONFIGS = Path(__file__).resolve().parent.parent / "data" / "accelerate"
CONFIG_OPTIONS = ("--config_file", "--config-file", "--deepspeed_config_file", "--deepspeed-config-file")


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send `sig` to this process when its parent dies; exit now if it already has."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)  # the process's own symbols (libc's prctl): no lookup, fork-safe
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed (errno %d); this process may outlive its launcher",
                    ctypes.get_errno())
        return
    if parent == 1 or os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), sig)


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


@contextmanager
def hold_output(out_dir: Path) -> Iterator[Path]:
    """Lock this rank's file in `out_dir`; refuse when another process (a rank of an earlier launch that
    is still running) holds it. Ranks of one launch lock different files, so they never refuse each other."""
    locks = out_dir / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    path = locks / f"rank{rank()}.lock"
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DataError(
            f"error: another training job is running in {out_dir} (pid {_read_pid(path) or '?'} holds {path}); "
            "wait for it to finish, or stop it, then run the same command again: it resumes from the last checkpoint"
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield path
    finally:
        handle.close()  # releases the lock (as the process's end would)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def resolve_launcher(argv: list[str], base: Path) -> tuple[list[str], list[str]]:
    """(argv with its config files resolved, problems): see the module doc."""
    out, problems = list(argv), []
    for i, arg in enumerate(argv):
        option, _, inline = arg.partition("=")
        if option not in CONFIG_OPTIONS:
            continue
        if inline:
            value = inline
        elif i + 1 < len(argv):
            value = argv[i + 1]
        else:
            problems.append(f"  train.launcher: {option} names no file")
            continue
        path, problem = _config_path(option, value, base)
        if problem:
            problems.append(problem)
        elif inline:
            out[i] = f"{option}={path}"
        else:
            out[i + 1] = path
    return out, problems


def _config_path(option: str, value: str, base: Path) -> tuple[str, str | None]:
    path = Path(value).expanduser()
    if path.is_absolute():
        return (str(path), None) if path.is_file() else (value, f"  train.launcher {option} {value!r}: no such file")
    if (base / path).is_file():
        return str(base / path), None
    packaged = PACKAGED_CONFIGS / path.name
    if packaged.is_file() and value in (path.name, f"examples/accelerate/{path.name}"):
        return str(packaged), None
    shipped = ", ".join(sorted(p.name for p in PACKAGED_CONFIGS.glob("*.yaml")))
    return value, (f"  train.launcher {option} {value!r}: no such file (looked at {base / path}; "
                   f"configs shipped with selfdistill: {shipped})")
