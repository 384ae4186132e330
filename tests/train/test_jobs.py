"""Training jobs by algorithm: a new algorithm that finetune.py trains is one TRAINERS entry; the job's
algorithm picks its runner; an unknown one is refused naming the known ones."""

import pytest

from selfdistill.errors import SpecError
from selfdistill.train import finetune, jobs


def test_an_algorithm_in_the_trainer_table_runs_through_finetune(monkeypatch):
    monkeypatch.setitem(finetune.TRAINERS, "made-up", finetune.Algorithm("SFTConfig", finetune.trainer_class))
    assert jobs.runner_for({"algorithm": "made-up"}) == jobs.JobRunner("selfdistill.train.finetune")
    assert finetune.algorithm_of({"algorithm": "made-up"}).config == "SFTConfig"


def test_a_job_without_an_algorithm_is_sft_and_an_unknown_one_is_refused():
    assert jobs.runner_for({}) == jobs.RUNNERS["sft"] and finetune.algorithm_of({}) is finetune.TRAINERS["sft"]
    with pytest.raises(SpecError, match=r"training algorithm 'ppo' has no runner; known: .*sft"):
        jobs.runner_for({"algorithm": "ppo"})


def test_job_records_name_their_algorithm(tmp_path):
    from selfdistill.spec import TrainSpec

    job = finetune.job_record("m", tmp_path / "ex.jsonl", TrainSpec(), tmp_path, chat=True)
    assert job["algorithm"] == "sft"
