"""GRPO's reward: each completion's program run against its prompt's tests in the sandbox, scored 1.0 when it
passed, 0.0 when it failed (failed, error, timeout, memory), and None when the harness failed (infra).

    pool = SandboxPool(workers).start()           # BEFORE the model is loaded: fresh interpreters, not forks of it
    reward = SandboxReward(pool, chat=True, timeout_s=10, memory_mb=1024, log_path=out / "rewards.jsonl")
    GRPOTrainer(..., reward_funcs=[reward])       # TRL calls reward(prompts=, completions=, task_id=, problem=, ...)
    ...
    reward.sandbox_record(); pool.close()

The program is extracted from the completion exactly as evaluation extracts it (generate/prompts.
program_from_completion, the same as evaluate.sample_record), so the reward and the held-out score judge the
same program. The programs never run in the trainer's process: the pool's workers are separate interpreters
started before the model is loaded, and each program is a fork of a worker (docs/sandbox.md), so nothing a
program does (write files, kill its parent, exit early, print a fake success line) reaches the trainer.

None is TRL's "unscorable" (grpo_trainer: NaN, left out of the group's mean and given no advantage): a harness
fault is never a model failure. They are counted; a batch in which more than `infra_max_share` of the programs
ended infra stops the job (`DataError`, exit 2): rewards that are mostly missing would train on noise.

Every outcome is appended to `rewards.jsonl` (step, task_id, status, reward, duration, program sha256, detail);
`sandbox_record()` gives the totals train.json keeps and the round puts in the ledger (stage "scoring"): the
wall time the trainer waited on the sandbox, the programs' own seconds, and the CPU seconds of the workers and
their programs (read from /proc per worker after every reward call and before the pool closes; a respawned
worker counts from its own start, and one that died keeps what was read before its last call).

The prompt's problem travels with the dataset row (`problem_record`, a JSON column): the tests, entry point and
prefix, nothing executable by the trainer. Not here: the trainer (train/grpo.py), the arm (ssd/rl.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter
from pathlib import Path

from selfdistill.errors import DataError
from selfdistill.execute.outcome import Job, Status
from selfdistill.rundir import JsonlStream
from selfdistill.tasks.problem import AssertTests, CallCase, CallTests, IOCase, IOTests, Problem

log = logging.getLogger(__name__)

PASSED, NOT_PASSED = 1.0, 0.0
REWARDS = "rewards.jsonl"


def problem_record(problem: Problem) -> dict:
    """What the reward needs of a pool prompt, as JSON: id, prompt, prefix, entry point and tests."""
    tests = problem.tests
    if isinstance(tests, AssertTests):
        wire: dict = {"kind": "assert", "code": tests.code}
    elif isinstance(tests, IOTests):
        wire = {"kind": "io", "cases": [[c.input, c.output] for c in tests.cases]}
    elif isinstance(tests, CallTests):
        wire = {"kind": "call", "fn_name": tests.fn_name,
                "cases": [[c.args_json, c.expected_json] for c in tests.cases]}
    else:
        raise DataError(f"error: pool prompt {problem.task_id} has no tests; the grpo arm rewards by tests")
    return {"task_id": problem.task_id, "prompt": problem.prompt, "prefix": problem.prefix,
            "entry_point": problem.entry_point, "source": problem.source, "tests": wire}


def problem_from_record(record: dict) -> Problem:
    t = record["tests"]
    if t["kind"] == "assert":
        tests = AssertTests(t["code"])
    elif t["kind"] == "io":
        tests = IOTests(tuple(IOCase(i, o) for i, o in t["cases"]))
    elif t["kind"] == "call":
        tests = CallTests(t["fn_name"], tuple(CallCase(a, e) for a, e in t["cases"]))
    else:
        raise DataError(f"error: the GRPO prompt {record.get('task_id')} has tests of unknown kind {t['kind']!r}")
    return Problem(record["task_id"], record["prompt"], tests, record.get("source", "pool"),
                   entry_point=record.get("entry_point"), prefix=record.get("prefix", ""))


def completion_text(completion) -> str:
    """A TRL completion as text: a string (plain prompts) or the assistant messages (chat prompts)."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content") or "" for m in completion if isinstance(m, dict))


def tree_cpu_s(roots: list[int]) -> float | None:
    """CPU seconds (user + system, with reaped children's) of the live processes under `roots`, from /proc;
    None where /proc cannot be read. A live child is not yet in its parent's children-times: no double count."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    try:
        names = [n for n in os.listdir("/proc") if n.isdigit()]
    except OSError:
        return None
    for name in names:
        try:
            text = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
        stats[int(name)] = (int(fields[1]), sum(int(x) for x in fields[11:15]) / tick)  # ppid; utime..cstime
    tree, frontier = set(), {p for p in roots if p in stats}
    while frontier:
        tree |= frontier
        frontier = {pid for pid, (ppid, _) in stats.items() if ppid in frontier and pid not in tree}
    return sum(stats[p][1] for p in tree) if tree else None


class SandboxReward:
    """A TRL reward function (a plain callable: `reward_funcs=[SandboxReward(...)]`) scoring programs in the pool."""

    __name__ = "sandbox_pass"  # TRL names a callable reward by __name__ in its logs ("rewards/sandbox_pass/mean")

    def __init__(self, pool, *, chat: bool, timeout_s: float, memory_mb: int, log_path: Path,
                 infra_max_share: float = 0.5):
        self.pool, self.chat, self.timeout_s, self.memory_mb = pool, chat, timeout_s, memory_mb
        self.log_path, self.infra_max_share = Path(log_path), infra_max_share
        self.counts: Counter = Counter()
        self.wall_s = self.program_s = 0.0
        self.calls = 0
        # CPU seconds per worker pid: at the start, and as last read after each reward call. A worker the pool
        # respawned (a new pid) counts from its own start; one that died keeps what was read before it died.
        self._cpu_start = {pid: tree_cpu_s([pid]) for pid in self._worker_pids()}
        self._cpu_seen = dict(self._cpu_start)

    def _worker_pids(self) -> list[int]:
        return [p for p in self.pool.worker_pids() if p is not None]

    def __call__(self, prompts, completions, *, task_id, problem, trainer_state=None, **kwargs) -> list[float | None]:
        from selfdistill.generate.prompts import program_from_completion

        started = time.monotonic()
        step = trainer_state.global_step if trainer_state is not None else None
        problems = [problem_from_record(json.loads(p) if isinstance(p, str) else p) for p in problem]
        programs = [program_from_completion(pr, completion_text(c), self.chat).code or ""
                    for pr, c in zip(problems, completions, strict=True)]  # no code: scored as a failure, as in eval
        jobs = [Job(f"{i}", prog, pr.tests, pr.entry_point, self.timeout_s, self.memory_mb)
                for i, (pr, prog) in enumerate(zip(problems, programs, strict=True))]
        rewards: list[float | None] = [None] * len(jobs)
        with JsonlStream(self.log_path) as stream:
            for outcome in self.pool.imap(jobs):
                i = int(outcome.job_id)
                rewards[i] = (None if outcome.status is Status.INFRA
                              else PASSED if outcome.status is Status.PASSED else NOT_PASSED)
                self.counts[outcome.status.value] += 1
                self.program_s += outcome.duration_s
                stream.append({"step": step, "task_id": task_id[i], "status": outcome.status.value,
                               "reward": rewards[i], "duration_s": round(outcome.duration_s, 4),
                               "program_sha256": hashlib.sha256(programs[i].encode("utf-8", "surrogatepass"))
                               .hexdigest(), "detail": outcome.detail[:200]})
        self.wall_s += time.monotonic() - started
        self.calls += 1
        self._read_cpu()
        infra = sum(r is None for r in rewards)
        if jobs and infra > self.infra_max_share * len(jobs):
            raise DataError(
                f"error: {infra} of the {len(jobs)} programs of GRPO step {step} ended infra (a sandbox fault, not "
                f"the model's); the rewards would be mostly missing, so training stopped. See {self.log_path} and "
                "docs/sandbox.md, fix the sandbox and run the same command again: training resumes from its last "
                "checkpoint")
        return rewards

    def _read_cpu(self) -> None:
        for pid in self._worker_pids():
            now, before = tree_cpu_s([pid]), self._cpu_seen.get(pid)
            if now is None or before is None or now >= before:  # lower: the process is gone, keep what was read
                self._cpu_seen[pid] = now

    def sandbox_record(self) -> dict:
        """This job's sandbox totals (call before the pool closes: the workers' CPU time is read from them)."""
        self._read_cpu()
        seen = list(self._cpu_seen.items())
        cpu = (None if any(c is None for _, c in seen) or any(c is None for c in self._cpu_start.values())
               else sum(c - (self._cpu_start.get(pid) or 0.0) for pid, c in seen))
        return {"programs": sum(self.counts.values()), "status_counts": dict(self.counts),
                "infra": self.counts.get(Status.INFRA.value, 0), "reward_calls": self.calls,
                "wall_s": round(self.wall_s, 3), "program_s": round(self.program_s, 3),
                "cpu_s": round(cpu, 3) if cpu is not None else None, "workers": self.pool.n_workers,
                "isolation": self.pool.isolation, "timeout_s": self.timeout_s, "memory_mb": self.memory_mb}
