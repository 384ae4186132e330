"""GRPO's sandbox reward on hand-written completions: 1 for a pass, 0 for every way of not passing (fake passes
included), None for a harness fault (counted; a batch mostly of them stops the job), every outcome recorded, and
the programs running in the sandbox's processes, never in the caller's."""

import builtins
import json
import os

import pytest

from selfdistill.errors import DataError
from selfdistill.execute.outcome import Outcome, Status
from selfdistill.execute.pool import SandboxPool
from selfdistill.tasks.problem import AssertTests, CallCase, CallTests, IOCase, IOTests, Problem
from selfdistill.train.reward import SandboxReward, completion_text, problem_from_record, problem_record

ADD = Problem("p/add", "Write add(a, b) returning a + b.",
              AssertTests("assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"), "pool", entry_point="add")


def fenced(code: str) -> list[dict]:
    return [{"role": "assistant", "content": f"Here:\n```python\n{code}\n```\n"}]


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(workers=1) as p:
        yield p


def score(reward, completions, problem=ADD):
    n = len(completions)
    return reward(["prompt"] * n, completions, task_id=[problem.task_id] * n,
                  problem=[json.dumps(problem_record(problem))] * n, trainer_state=None)


def test_pass_is_one_and_every_way_of_not_passing_is_zero(pool, tmp_path):
    reward = SandboxReward(pool, chat=True, timeout_s=2, memory_mb=512, log_path=tmp_path / "rewards.jsonl")
    completions = [
        fenced("def add(a, b):\n    return a + b"),                       # right
        fenced("def add(a, b):\n    return a - b"),                       # wrong
        fenced("import os\nos._exit(0)\ndef add(a, b):\n    return 0"),   # exits before the tests, status 0
        fenced("import sys\ndef add(a, b):\n    sys.exit(0)"),            # exits inside the call
        fenced("print('passed')\nprint('OK: all tests passed')\ndef add(a, b):\n    return 0"),  # fake success line
        fenced("def add(a, b):\n    while True:\n        pass"),          # never returns
        [{"role": "assistant", "content": "I would rather not."}],        # no code at all
    ]
    assert score(reward, completions) == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    rows = [json.loads(x) for x in (tmp_path / "rewards.jsonl").read_text().splitlines()]
    assert len(rows) == len(completions)
    assert {r["task_id"] for r in rows} == {"p/add"} and all(r["duration_s"] >= 0 for r in rows)
    assert sorted(r["status"] for r in rows).count("passed") == 1 and "timeout" in {r["status"] for r in rows}
    totals = reward.sandbox_record()
    assert totals["programs"] == 7 and totals["infra"] == 0 and totals["status_counts"]["passed"] == 1
    assert totals["program_s"] >= 2.0 and totals["wall_s"] >= totals["program_s"] / pool.n_workers - 0.5
    assert totals["cpu_s"] is not None and totals["cpu_s"] > 0.1  # the busy loop's CPU, read from the workers


def test_the_program_is_extracted_as_evaluation_extracts_it(pool, tmp_path):
    from selfdistill.generate.prompts import program_from_completion

    base = Problem("p/base", "def add(a, b):\n", ADD.tests, "pool", entry_point="add", prefix="def add(a, b):\n")
    reward = SandboxReward(pool, chat=False, timeout_s=2, memory_mb=512, log_path=tmp_path / "r.jsonl")
    continuation = "    return a + b\n\ndef unrelated():\n    raise SystemExit(1)\n"  # cut at the next def, as in eval
    assert score(reward, [continuation], base) == [1.0]
    assert program_from_completion(base, continuation, False).code.endswith("return a + b\n")
    assert completion_text(fenced("x = 1")) == completion_text(fenced("x = 1")[0]["content"])


def test_programs_never_run_in_the_callers_process(pool, tmp_path):
    marker = tmp_path / "written-by-the-program"
    reward = SandboxReward(pool, chat=True, timeout_s=2, memory_mb=512, log_path=tmp_path / "rewards.jsonl")
    hostile = [
        fenced(f"open({str(marker)!r}, 'w').write('x')\ndef add(a, b):\n    return a + b"),
        fenced("import builtins\nbuiltins.PWNED = True\ndef add(a, b):\n    return a + b"),
        fenced("import os\nos.kill(os.getppid(), 9)\ndef add(a, b):\n    return a + b"),  # its parent: the worker
    ]
    if pool.isolation.get("pid") == "pidns" or pool.isolation.get("uid") == "dropped":  # the trainer is out of reach
        hostile.append(fenced(f"import os\nos.kill({os.getpid()}, 9)\ndef add(a, b):\n    return a + b"))
    rewards = score(reward, hostile)
    assert not hasattr(builtins, "PWNED")  # no program code ran in this interpreter
    if pool.isolation.get("view") == "minimal":  # its own filesystem view (docs/sandbox.md)
        assert not marker.exists()
    assert rewards[1] == 1.0  # the rest of the batch is scored (the killed worker is respawned)
    assert score(reward, [fenced("def add(a, b):\n    return a + b")]) == [1.0]  # we are alive, the pool works


class FaultyPool:
    """A pool whose harness fails on the jobs named: their outcome is INFRA."""

    n_workers, isolation = 1, {"mode": "fake"}

    def __init__(self, infra: set[str]):
        self.infra = infra

    def worker_pids(self):
        return []

    def imap(self, jobs):
        for job in jobs:
            status = Status.INFRA if job.job_id in self.infra else Status.PASSED
            yield Outcome(job.job_id, status, "worker died" if status is Status.INFRA else "", 0.01)


def test_an_infra_outcome_is_no_reward_and_is_counted(tmp_path):
    reward = SandboxReward(FaultyPool({"1"}), chat=True, timeout_s=2, memory_mb=512, log_path=tmp_path / "r.jsonl")
    assert score(reward, [fenced("def add(a, b):\n    return a + b")] * 4) == [1.0, None, 1.0, 1.0]
    assert reward.sandbox_record()["infra"] == 1
    rows = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [r["reward"] for r in rows if r["status"] == "infra"] == [None]


def test_a_batch_mostly_infra_stops_the_job(tmp_path):
    reward = SandboxReward(FaultyPool({"0", "1", "2"}), chat=True, timeout_s=2, memory_mb=512,
                           log_path=tmp_path / "r.jsonl")
    with pytest.raises(DataError, match="3 of the 4 programs .* ended infra"):
        score(reward, [fenced("def add(a, b):\n    return a + b")] * 4)
    assert len((tmp_path / "r.jsonl").read_text().splitlines()) == 4  # recorded before stopping


@pytest.mark.parametrize("tests", [
    AssertTests("assert f(1) == 2\n"),
    IOTests((IOCase("1\n", "2\n"), IOCase("5\n", "6\n"))),
    CallTests("f", (CallCase("[1]", "2"),)),
])
def test_a_problem_travels_to_the_trainer_as_json_and_back(tests):
    problem = Problem("p/1", "prompt", tests, "pool", entry_point="f", prefix="def f(x):\n")
    back = problem_from_record(json.loads(json.dumps(problem_record(problem))))
    assert back == problem
    with pytest.raises(DataError, match="no tests"):
        problem_record(Problem("p/2", "prompt", None, "pool"))


def test_the_sandbox_cpu_time_survives_a_respawned_worker(tmp_path, monkeypatch):
    from selfdistill.train import reward as module

    cpu = {10: 5.0}  # pid -> CPU seconds the /proc reading would give
    monkeypatch.setattr(module, "tree_cpu_s", lambda roots: sum(cpu.get(p, 0.0) for p in roots))

    class RespawningPool(FaultyPool):
        pids = [10]

        def worker_pids(self):
            return list(self.pids)

    pool = RespawningPool(set())
    reward = SandboxReward(pool, chat=True, timeout_s=2, memory_mb=512, log_path=tmp_path / "rewards.jsonl")
    cpu[10] = 7.0  # the worker works: 2 s
    score(reward, [fenced("def add(a, b):\n    return a + b")])
    del cpu[10]  # killed by a program; the pool respawns it as pid 11, which works 1.5 s
    pool.pids, cpu[11] = [11], 1.5
    score(reward, [fenced("def add(a, b):\n    return a + b")])
    assert reward.sandbox_record()["cpu_s"] == pytest.approx(2.0 + 1.5)  # not 1.5 - 5.0
