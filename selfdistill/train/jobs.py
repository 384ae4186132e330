"""Training jobs by algorithm: a job file (`job.json`) names its algorithm, and this table says what runs it.

    RUNNERS = {"sft": JobRunner("selfdistill.train.finetune")}    # python -m selfdistill.train.finetune JOB.json

A runner is a module whose `main([JOB.json])` trains one job and writes `train.json` (plus `merged/`, and
`adapter/` for LoRA) into the job's `out_dir`. The round launches it in its own process (under
train.launcher when the spec names one: accelerate, torchrun), so the model's memory is given back when it
ends and the process that forks sandboxed programs never holds it. A runner registered with
`own_process=False` is called in this process instead: a fake job in the tests drives the round's
orchestration without a trainer and without a subprocess.

A new training algorithm that finetune.py trains is one entry in its TRAINERS table (it then runs there with
no entry here); one with its own module is one entry here. Not here:
which examples an arm trains on (ssd/), the trainers themselves (finetune.py).
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from selfdistill.errors import SpecError


@dataclass(frozen=True)
class JobRunner:
    module: str  # its main(argv) runs one job file: `python -m MODULE JOB.json`
    own_process: bool = True  # False: main() is called here (a fake job in the tests)


RUNNERS: dict[str, JobRunner] = {
    "sft": JobRunner("selfdistill.train.finetune"),
    "dpo": JobRunner("selfdistill.train.preference"),  # TRL DPOTrainer on (prompt, chosen, rejected) pairs
    "grpo": JobRunner("selfdistill.train.grpo"),  # TRL GRPOTrainer, rewarded by the sandbox (train/reward.py)
}


def runner_for(job: dict) -> JobRunner:
    """The job's runner: its own entry here, else finetune.py for an algorithm in its TRAINERS table."""
    from selfdistill.train.finetune import TRAINERS

    algorithm = job.get("algorithm", "sft")  # job files written before jobs named their algorithm are SFT
    if algorithm in RUNNERS:
        return RUNNERS[algorithm]
    if algorithm in TRAINERS:
        return JobRunner("selfdistill.train.finetune")
    known = sorted(set(RUNNERS) | set(TRAINERS))
    raise SpecError(f"error: training algorithm {algorithm!r} has no runner; known: {', '.join(known)}")


def run_job(job_path: Path, launcher: Sequence[str] | None, log_path: Path) -> int:
    """Run the job in `job_path` to its end, its output appended to `log_path`; return its exit status."""
    runner = runner_for(json.loads(job_path.read_text(encoding="utf-8")))
    if not runner.own_process:
        return int(importlib.import_module(runner.module).main([str(job_path)]) or 0)
    from selfdistill.train.launch import die_with_parent  # the launcher (and its workers) end with us

    command = [*(launcher or [sys.executable]), "-m", runner.module, str(job_path)]
    with log_path.open("a", encoding="utf-8") as log_file:
        proc = subprocess.run(command, stdout=log_file, stderr=subprocess.STDOUT, check=False,
                              preexec_fn=die_with_parent)
    return proc.returncode
