"""Adversarial programs against the sandbox: one property per test, the exact status, and that the
harness survived (`run` checks the pool still passes a correct program afterwards).

Properties that need an isolation level this machine did not give are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from selfdistill.execute.outcome import Status
from selfdistill.execute.pool import SandboxPool
from tests.execute.helpers import GOOD_ADD, assert_job, require, run, slot_processes

# --- processes ---------------------------------------------------------------------------------------


def test_fork_bomb_times_out_and_leaves_no_process(pool):
    require(pool, fork_limit="nproc", uid="dropped")
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    outcome = run(pool, assert_job(bomb, timeout_s=2))
    assert outcome.status is Status.TIMEOUT
    assert slot_processes(pool) == []  # this pool's uids: a parallel test worker's sandbox is not ours


def test_daemonized_grandchild_is_killed(pool):
    require(pool, uid="dropped")
    daemon = (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        time.sleep(60)\n    os._exit(0)\n" + GOOD_ADD
    )
    outcome = run(pool, assert_job(daemon))
    assert outcome.status is Status.PASSED
    assert outcome.duration_s < 5  # the worker did not wait for the daemon
    assert slot_processes(pool) == []  # this pool's uids: a parallel test worker's sandbox is not ours


def test_killing_the_parent_does_not_work(pool):
    require(pool, uid="dropped")
    attack = "import os\ntry:\n    os.kill(os.getppid(), 9)\nexcept OSError:\n    pass\n" + GOOD_ADD
    assert run(pool, assert_job(attack)).status is Status.PASSED


def test_kill_minus_one_does_not_reach_the_harness(pool):
    require(pool, pid="pidns")
    attack = "import os\ntry:\n    os.kill(-1, 9)\nexcept OSError:\n    pass\n" + GOOD_ADD
    assert run(pool, assert_job(attack)).status is Status.PASSED


def test_killpg_of_the_parent_group_does_not_work(pool):
    require(pool, uid="dropped")
    attack = "import os\ntry:\n    os.killpg(os.getpgid(os.getppid()), 9)\nexcept OSError:\n    pass\n" + GOOD_ADD
    assert run(pool, assert_job(attack)).status is Status.PASSED


def test_harness_pid_is_out_of_reach(pool):
    require(pool, pid="pidns")
    attack = f"import os\ntry:\n    os.kill({os.getpid()}, 9)\nexcept OSError:\n    pass\n" + GOOD_ADD
    assert run(pool, assert_job(attack)).status is Status.PASSED  # and we are still here


def test_killing_itself_is_error(pool):
    outcome = run(pool, assert_job("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n" + GOOD_ADD))
    assert outcome.status is Status.ERROR
    assert "SIGKILL" in outcome.detail


# --- memory and disk -----------------------------------------------------------------------------------


def test_huge_allocation_is_memory(pool):
    assert run(pool, assert_job("x = bytearray(10**10)\n" + GOOD_ADD)).status is Status.MEMORY


def test_growing_list_is_memory(pool):
    bomb = "xs = []\nwhile True:\n    xs.append([0] * 10**6)\n"
    assert run(pool, assert_job(bomb, memory_mb=256)).status is Status.MEMORY


@pytest.mark.xfail(
    strict=True,
    reason="NOT contained: memory_mb is RLIMIT_AS per process, so a job's processes together may hold "
    "up to RLIMIT_NPROC (32) x memory_mb; a per-slot memory cgroup would cap the sum (not used: the only "
    "writable memory cgroup here belongs to the session tooling)",
)
def test_forked_processes_share_one_memory_budget(pool):
    spread = (
        "import os\npids = []\nfor _ in range(6):\n    pid = os.fork()\n    if pid == 0:\n"
        "        block = b'x' * (100 << 20)\n        os._exit(0)\n    pids.append(pid)\n"
        "assert all(os.waitpid(p, 0)[1] == 0 for p in pids)\n" + GOOD_ADD
    )
    assert run(pool, assert_job(spread, memory_mb=256)).status is Status.MEMORY


def test_huge_file_write_is_stopped(pool):
    outcome = run(pool, assert_job("open('big', 'wb').write(b'x' * 10**8)\n" + GOOD_ADD))
    assert outcome.status is Status.ERROR
    assert "File too large" in outcome.detail


def test_job_dir_is_removed_afterwards(pool):
    """The next job on the same slot sees only its own job dir: what the last one wrote is gone."""
    require(pool, filesystem="tmpfs+uid")
    pool.run_one(assert_job("open('leftover', 'w').write('x' * 10**6)\n" + GOOD_ADD))
    # Read-only code paths the isolation re-exposes (the package itself when it lives under /tmp, as in a
    # CI clone) are listed in the report; anything else in /tmp besides our own job dir is a leftover.
    exposed = {Path(p).relative_to("/tmp").parts[0] for p in pool.isolation["exposed"] if p.startswith("/tmp/")}
    probe = (
        f"import os\nseen = set(os.listdir('/tmp')) - {exposed!r}\n"
        "assert seen == {os.path.basename(os.getcwd())}, seen\n" + GOOD_ADD
    )
    assert run(pool, assert_job(probe)).status is Status.PASSED


# --- filesystem outside the job dir ---------------------------------------------------------------------


@pytest.fixture
def canary():
    """A root-owned 0644 file in a 0755 dir the sandbox can see (not under a dir it remounts)."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        directory = tempfile.mkdtemp(prefix=".canary-", dir=here)
    except OSError:
        pytest.skip("cannot create a canary next to the tests")
    os.chmod(directory, 0o755)
    path = os.path.join(directory, "canary.txt")
    with open(path, "w") as f:
        f.write("intact")
    os.chmod(path, 0o644)
    yield path
    shutil.rmtree(directory)


def test_cannot_delete_a_host_file(pool, canary):
    require(pool, uid="dropped")
    outcome = run(pool, assert_job(f"import os\nos.remove({canary!r})\n" + GOOD_ADD))
    assert outcome.status is Status.ERROR
    # refused by permissions, by a read-only bind, or not in the minimal view at all
    assert any(s in outcome.detail for s in ("PermissionError", "Read-only file system", "FileNotFoundError"))
    assert Path(canary).read_text() == "intact"


def test_cannot_modify_a_host_file(pool, canary):
    require(pool, uid="dropped")
    outcome = run(pool, assert_job(f"open({canary!r}, 'a').write('owned')\n" + GOOD_ADD))
    assert outcome.status is Status.ERROR
    assert Path(canary).read_text() == "intact"


def test_cannot_create_files_next_to_a_host_file(pool, canary):
    require(pool, uid="dropped")
    target = os.path.join(os.path.dirname(canary), "dropped.txt")
    outcome = run(pool, assert_job(f"open({target!r}, 'w').write('x')\n" + GOOD_ADD))
    assert outcome.status is Status.ERROR
    assert not os.path.exists(target)


@pytest.mark.parametrize("shared_dir", ["/tmp", "/var/tmp", "/dev/shm"])
def test_writing_to_shared_tmp_dirs_fails_and_never_reaches_the_host(pool, shared_dir):
    require(pool, filesystem="tmpfs+uid")
    target = os.path.join(shared_dir, f"selfdistill-escape-{uuid.uuid4().hex}")
    outcome = run(pool, assert_job(f"open({target!r}, 'w').write('x')\n" + GOOD_ADD))
    assert outcome.status is Status.ERROR
    # refused by permissions or a read-only mount; /var/tmp is not in the view at all
    assert any(s in outcome.detail for s in ("PermissionError", "Read-only file system", "FileNotFoundError"))
    assert not os.path.exists(target)


def test_a_new_user_namespace_cannot_unmount_the_private_tmp(pool):
    """unshare(CLONE_NEWUSER) is allowed to anyone, but mounts inherited from the worker stay locked."""
    require(pool, filesystem="tmpfs+uid")
    target = f"/tmp/selfdistill-escape-{uuid.uuid4().hex}"
    escape = (
        "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.unshare(0x10000000 | 0x00020000)\nlibc.umount2(b'/tmp', 2)\n"
        f"open({target!r}, 'w').write('x')\n"
    )
    outcome = run(pool, assert_job(escape + GOOD_ADD))
    assert outcome.status is Status.ERROR
    assert not os.path.exists(target)


def test_root_home_is_hidden(pool):
    require(pool, filesystem="tmpfs+uid")
    probe = (
        "import os\nassert not os.path.exists('/root/.bash_history')\nassert not os.path.exists('/root/.ssh')\n"
        + GOOD_ADD
    )
    assert run(pool, assert_job(probe)).status is Status.PASSED


# --- network --------------------------------------------------------------------------------------------


def test_cannot_connect_to_a_host_socket(pool):
    require(pool, network="netns")
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    port = server.getsockname()[1]
    try:
        outcome = run(
            pool, assert_job(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\n" + GOOD_ADD)
        )
        assert outcome.status is Status.ERROR
        with pytest.raises(TimeoutError):
            server.accept()
    finally:
        server.close()


def test_cannot_resolve_names(pool):
    require(pool, network="netns")
    outcome = run(pool, assert_job("import socket\nsocket.getaddrinfo('example.com', 80)\n" + GOOD_ADD))
    assert outcome.status is Status.ERROR
    assert "gaierror" in outcome.detail


def test_cannot_send_udp_out(pool):
    require(pool, network="netns")
    attack = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.sendto(b'x', ('8.8.8.8', 53))\n"
    outcome = run(pool, assert_job(attack + GOOD_ADD))
    assert outcome.status is Status.ERROR
    assert "unreachable" in outcome.detail


# --- environment ------------------------------------------------------------------------------------------


def test_harness_environment_is_invisible(monkeypatch):
    monkeypatch.setenv("SELFDISTILL_TEST_SECRET", "hunter2")
    probe = (
        "import os\nassert 'SELFDISTILL_TEST_SECRET' not in os.environ\n"
        "try:\n    raw = open('/proc/self/environ', 'rb').read()\nexcept OSError:\n    raw = b''\n"
        "assert b'hunter2' not in raw\n" + GOOD_ADD
    )
    with SandboxPool(workers=1) as pool:
        assert run(pool, assert_job(probe)).status is Status.PASSED


def test_home_and_cwd_are_the_job_dir(pool):
    probe = "import os, tempfile\nassert os.environ['HOME'] == os.getcwd() == tempfile.gettempdir()\n" + GOOD_ADD
    assert run(pool, assert_job(probe)).status is Status.PASSED


def test_no_time_is_lost_waiting_for_stray_writers(pool):
    """A grandchild holding the result and output pipes open does not keep the worker waiting."""
    program = "import os, time\nif os.fork() == 0:\n    time.sleep(60)\n" + GOOD_ADD
    start = time.monotonic()
    assert run(pool, assert_job(program, timeout_s=10)).status is Status.PASSED
    assert time.monotonic() - start < 5
