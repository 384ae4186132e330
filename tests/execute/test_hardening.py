"""The red team's classes (issue 10): answers in memory, task data, host sockets, poisoned slots, shared
uids, result-pipe floods, orphaned programs. One property per test; a program does the hostile thing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from selfdistill.execute.outcome import Status
from selfdistill.execute.pool import SandboxPool
from tests.execute.helpers import GOOD_ADD, assert_job, call_job, io_job, require, run

REPO = Path(__file__).resolve().parents[2]

# Scans its own anonymous memory (heap, arenas: where freed frames of the worker would still lie) for
# strings shaped like the secrets below, and raises with what it found, so the outcome's detail shows it.
SCANNER = textwrap.dedent(
    """
    import ctypes, re
    def scan():
        pat, found = re.compile(rb"SECRET[0-9a-f]{32}"), set()
        for line in open("/proc/self/maps"):
            fields = line.split()
            if not fields[1].startswith("r") or (len(fields) > 5 and not fields[5].startswith("[heap")):
                continue
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if hi - lo <= 1 << 28:
                found.update(pat.findall(ctypes.string_at(lo, hi - lo)))
        return sorted(x.decode() for x in found)
    """
)


def _secret() -> str:
    return "SECRET" + uuid.uuid4().hex


# --- 1. expected outputs are not in the untrusted process's memory -----------------------------------------


def test_a_heap_scan_finds_what_the_worker_holds_but_not_the_expected_stdout():
    """Control first: the input (which the worker does hold) is found, so the scan works; then the
    expected output, which only the pool holds, is not, in the same job and in later jobs."""
    program = SCANNER + "raise RuntimeError('found ' + ' '.join(scan()))\n"
    seen_input, expected = _secret(), _secret()
    with SandboxPool(workers=1) as pool:
        for _ in range(2):
            outcome = pool.run_one(io_job(program, [(seen_input, expected), (seen_input, expected)], memory_mb=512))
            assert outcome.status is Status.ERROR, outcome
            assert seen_input in outcome.detail  # the scanner works
            assert expected not in outcome.detail


def test_a_heap_scan_does_not_find_expected_call_return_values():
    program = SCANNER + "def f(x):\n    raise RuntimeError('found ' + ' '.join(scan()))\n"
    seen_arg, expected = _secret(), _secret()
    with SandboxPool(workers=1) as pool:
        for _ in range(2):
            job = call_job(program, "f", [(f'["{seen_arg}"]', f'"{expected}"')], memory_mb=512)
            outcome = pool.run_one(job)
            assert outcome.status is Status.ERROR, outcome
            assert seen_arg in outcome.detail
            assert expected not in outcome.detail


def test_returning_what_the_scan_finds_does_not_pass_a_call_test(pool):
    program = SCANNER + "def f(x):\n    found = scan()\n    return found[-1] if found else None\n"
    assert run(pool, call_job(program, "f", [("[1]", f'"{_secret()}"')], memory_mb=512)).status is Status.FAILED


# --- 3. task data files are not in the sandbox's view --------------------------------------------------------


def test_human_evals_data_file_is_not_readable(pool):
    require(pool, view="minimal")
    from selfdistill.tasks.humaneval import shipped_path

    path = str(shipped_path())
    assert os.path.exists(path)
    program = f"import os\nassert not os.path.exists({path!r})\nassert os.listdir({os.path.dirname(path)!r}) == []\n"
    assert run(pool, assert_job(program + GOOD_ADD)).status is Status.PASSED


def test_the_repository_around_the_package_is_not_in_view(pool):
    require(pool, view="minimal")
    program = (f"import os\nassert not os.path.exists({str(REPO / 'tests')!r})\n"
               f"assert os.path.isdir({str(REPO / 'selfdistill')!r})\n")
    assert run(pool, assert_job(program + GOOD_ADD)).status is Status.PASSED


# --- 4. host pathname sockets are not reachable --------------------------------------------------------------


def _socket_dirs() -> list[str]:
    dirs = [d for d in ("/run", "/var/run", "/var/lib", "/dev") if os.path.isdir(d)]
    return dirs + [str(REPO)]


@pytest.mark.parametrize("directory", _socket_dirs())
def test_a_world_writable_host_socket_cannot_be_reached(pool, directory):
    require(pool, view="minimal")
    path = os.path.join(os.path.realpath(directory), f".selfdistill-test-{uuid.uuid4().hex[:8]}.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(path)
    except OSError as e:
        pytest.skip(f"cannot bind a socket in {directory}: {e}")
    try:
        os.chmod(path, 0o777)
        server.listen(1)
        server.setblocking(False)
        program = f"import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect({path!r})\ns.send(b'x')\n"
        outcome = run(pool, assert_job(program + GOOD_ADD))
        assert outcome.status is Status.ERROR
        assert "FileNotFoundError" in outcome.detail or "ConnectionRefused" in outcome.detail
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()
        os.unlink(path)


# --- 5. a program cannot poison its slot ---------------------------------------------------------------------

DEEP_TREE = "import os\nfor i in range(1500):\n    os.mkdir('d')\n    os.chdir('d')\n    open('f', 'w').close()\n"
FILL_DISK = (
    "i = 0\ntry:\n    while True:\n        open(f'fill{i}', 'wb').write(b'x' * (15 << 20))\n        i += 1\n"
    "except OSError:\n    pass\n"
)
FILL_INODES = "import os\ntry:\n    for i in range(200000):\n        os.mkdir(f'i{i}')\nexcept OSError:\n    pass\n"


@pytest.mark.parametrize("poison", [DEEP_TREE, FILL_DISK, FILL_INODES], ids=["deep-tree", "full-disk", "no-inodes"])
def test_what_a_program_leaves_in_its_dir_is_its_own_and_the_next_job_runs(pool, poison):
    outcome = pool.run_one(assert_job(poison + "def add(a, b):\n    return 3\n", timeout_s=30))
    assert outcome.status is Status.FAILED, outcome  # judged on its answer, never infra
    for i in range(3):
        after = pool.run_one(assert_job("open('x', 'w').write('y' * 1000)\n" + GOOD_ADD, job_id=f"after{i}"))
        assert after.status is Status.PASSED, after


def test_a_job_dir_under_the_host_tmp_is_removed_without_recursion(tmp_path):
    from selfdistill.execute.worker import remove_tree

    path = tmp_path / "root"
    path.mkdir()
    here = os.getcwd()
    try:
        os.chdir(path)
        for _ in range(1500):  # deeper than PATH_MAX (4096 bytes)
            os.mkdir("ddd")
            os.chdir("ddd")
        open("f", "w").close()
        os.chmod(".", 0o000)
    finally:
        os.chdir(here)
    remove_tree(str(path))
    assert not path.exists()
    assert os.getcwd() == "/"
    os.chdir(here)


def test_a_job_dir_that_cannot_be_removed_keeps_the_verdict_and_retires_the_slot(tmp_path, monkeypatch):
    """Cleanup never turns a verdict into infra; the worker answers, then exits to be replaced."""
    import types

    from selfdistill.execute import confine, isolation, worker

    def stuck(path, sandbox):
        raise OSError(16, "Device or resource busy")

    monkeypatch.setattr(worker, "_run_kind", lambda job, ctx: ("failed", "case 0: wrong", {}))
    monkeypatch.setattr(worker, "sweep", lambda sandbox: None)
    monkeypatch.setattr(worker, "_remove_jobdir", stuck)
    monkeypatch.setattr(confine, "point_environment", lambda jobdir: None)
    ctx = types.SimpleNamespace(sandbox=isolation.Sandbox("none", 0, str(tmp_path), False, None, {}), broken=None)
    assert worker._run_in_jobdir({}, ctx) == ("failed", "case 0: wrong", {})
    assert "Device or resource busy" in ctx.broken


# --- 6. two runs never share slot uids -----------------------------------------------------------------------


def test_two_pools_alive_at_once_use_disjoint_uids():
    threads = ("import threading\nts = [threading.Thread(target=lambda: None) for _ in range(8)]\n"
               "[t.start() for t in ts]\n[t.join() for t in ts]\n")
    with SandboxPool(workers=2) as a, SandboxPool(workers=2) as b:
        uids_a, uids_b = a.slot_uids(), b.slot_uids()
        if os.geteuid() == 0:
            assert None not in uids_a + uids_b
            assert len(set(uids_a + uids_b)) == 4
        sleeper = assert_job("import time\ntime.sleep(1.5)\n" + GOOD_ADD, job_id="sleep")
        for outcome in a.imap([sleeper, sleeper]):  # processes held under a's uids meanwhile
            assert outcome.status is Status.PASSED
        assert b.run_one(assert_job(threads + GOOD_ADD)).status is Status.PASSED


# --- 7. flooding the result pipe -----------------------------------------------------------------------------


def test_a_result_pipe_flood_is_the_programs_error_and_the_worker_stays_small(pool):
    flood = ("import os\nline = b'x' * 7 + b'\\n'\nchunk = line * 8192\nfor _ in range(96 << 20 >> 16):\n"
             "    os.write(3, chunk)\n")
    outcome = run(pool, assert_job(flood + GOOD_ADD, timeout_s=60))
    assert outcome.status is Status.ERROR
    assert "result pipe" in outcome.detail
    for outer in pool.worker_pids():  # the worker, and its namespace's init (the process that read the pipe)
        kids = [int(k) for t in Path(f"/proc/{outer}/task").iterdir() for k in (t / "children").read_text().split()]
        for pid in [outer, *kids]:
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
            peak_kb = int(next(x for x in status if x.startswith("VmHWM")).split()[1])
            assert peak_kb < 256 << 10, f"the worker peaked at {peak_kb} kB"


# --- 8. killing the harness ends its programs ----------------------------------------------------------------

HARNESS = """
import sys, time
sys.path.insert(0, {repo!r})
from selfdistill.execute.pool import SandboxPool
from tests.execute.helpers import assert_job, GOOD_ADD
with SandboxPool(workers=1) as pool:
    print("uids", *pool.slot_uids(), "workers", *pool.worker_pids(), flush=True)
    if {run_job}:
        pool.run_one(assert_job("import time\\ntime.sleep(120)\\n" + GOOD_ADD, timeout_s=300))
    time.sleep(120)
"""


def _processes_of(uid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                status = Path(f"/proc/{name}/status").read_text()
            except OSError:
                continue
            if int(next(x for x in status.splitlines() if x.startswith("Uid:")).split()[1]) == uid:
                found.append(int(name))
    return found


def test_kill_9_of_the_harness_ends_its_workers_and_running_programs():
    if os.geteuid() != 0:
        pytest.skip("finds the program by its slot uid, which needs root")
    code = HARNESS.format(repo=str(REPO), run_job=True)
    harness = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=str(REPO))
    try:
        fields = harness.stdout.readline().split()
        uid, worker = int(fields[1]), int(fields[3])
        deadline = time.monotonic() + 20
        while not _processes_of(uid) and time.monotonic() < deadline:  # the program is running
            time.sleep(0.05)
        assert _processes_of(uid), "the program never started"
        harness.send_signal(signal.SIGKILL)
        harness.wait()
        deadline = time.monotonic() + 5
        while (_processes_of(uid) or os.path.exists(f"/proc/{worker}")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _processes_of(uid), "the program outlived the harness"
        assert not os.path.exists(f"/proc/{worker}") or "zombie" in Path(f"/proc/{worker}/status").read_text()
    finally:
        if harness.poll() is None:
            harness.kill()


@pytest.mark.slow  # a whole harness subprocess started and killed; the fast lane keeps the kill -9 test above
def test_a_worker_whose_harness_is_gone_exits_while_idle():
    """EOF on its job pipe: the worker loop returns (the same path PR_SET_PDEATHSIG backs up)."""
    code = HARNESS.format(repo=str(REPO), run_job=False)
    harness = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    worker = int(harness.stdout.readline().split()[-1])
    harness.kill()
    harness.wait()
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{worker}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{worker}")


LEAVE_BEHIND = (
    "import os\nopen('mine', 'w').write('x')\nos.chmod('.', 0o777)\nleft = []\n"
    "try:\n    os.setxattr('.', 'user.note', b'answer')\nexcept OSError:\n    pass\n"
    "for d in ('/tmp', '/dev/shm', '/dev', '/var', '/home', '/run', '/root', '/opt', '/srv', '/mnt'):\n"
    "    try:\n        open(os.path.join(d, 'left-behind'), 'w').write('x')\n        left.append(d)\n"
    "    except OSError:\n        pass\n"
    "assert not left, f'wrote outside the job dir: {left}'\n"
)
FIND_LEFTOVERS = (
    "import os\nassert os.listdir('.') == [], os.listdir('.')\n"
    "assert os.stat('.').st_mode & 0o777 == 0o700 and os.listxattr('.') == []\n"
    "for d in ('/tmp', '/dev/shm', '/dev', '/var', '/home', '/run', '/root', '/opt', '/srv', '/mnt'):\n"
    "    assert not os.path.exists(os.path.join(d, 'left-behind')), d\n"
)


@pytest.mark.parametrize("mode", ["auto", "userns"])
def test_nothing_outside_the_job_dir_is_writable_and_the_next_job_starts_empty(mode):
    """In userns mode children keep the worker's uid: only read-only mounts stop them there."""
    try:
        pool = SandboxPool(workers=1, mode=mode)
        pool.start()
    except Exception as e:  # noqa: BLE001
        pytest.skip(f"mode {mode} unavailable here: {e}")
    try:
        first = pool.run_one(assert_job(LEAVE_BEHIND + GOOD_ADD))
        assert first.status is Status.PASSED, first
        second = pool.run_one(assert_job(FIND_LEFTOVERS + GOOD_ADD))
        assert second.status is Status.PASSED, second
    finally:
        pool.close()
