"""The grpo comparator arm through the round, in this process: the fake engine and a fake GRPO job (tests/fakes.py)
whose rollouts are scored by the REAL sandbox reward; planned, trained, evaluated, costed (its reward scoring
in the ledger), compared with base and SSD, and not redone when run again."""

import json

import pytest

from selfdistill.checks import check_spec
from selfdistill.errors import SpecError
from selfdistill.pipeline import run_all
from selfdistill.spec import load_spec
from selfdistill.ssd import arms, ledger
from selfdistill.train import jobs
from tests.ssd.round_fixtures import rs_spec

GRPO = "grpo"


def grpo_spec(tmp_path, settings="grpo_group = 2\ngrpo_steps = 3\n"):
    spec = rs_spec(tmp_path, measure='["grpo"]')
    spec.write_text(spec.read_text().replace("best_of_n = 3\n", settings))
    return spec


@pytest.fixture
def fake_grpo(fakes, monkeypatch):
    monkeypatch.setitem(jobs.RUNNERS, GRPO, jobs.JobRunner("tests.fakes", own_process=False))
    return fakes


def test_grpo_settings_are_declared_and_checked(tmp_path):
    c = load_spec(grpo_spec(tmp_path)).comparator
    assert (c.grpo_group, c.grpo_steps, c.grpo_beta, c.grpo_temperature) == (2, 3, 0.0, None)
    with pytest.raises(SpecError, match="batch_size 2 is not a multiple of comparator.grpo_group 4") as refused:
        load_spec(grpo_spec(tmp_path, "grpo_group = 4\n"))
    assert "  (across sections)" in str(refused.value)  # a rule over two sections still fills the field column
    with pytest.raises(SpecError, match="grpo_group"):
        load_spec(grpo_spec(tmp_path, "grpo_group = 1\n"))  # GRPO needs two completions to compare
    greedy = grpo_spec(tmp_path, "grpo_group = 2\n")
    greedy.write_text(greedy.read_text().replace("temperature = 0.8", "temperature = 0"))
    with pytest.raises(SpecError, match="greedy"):
        load_spec(greedy)
    greedy.write_text(greedy.read_text().replace("grpo_group = 2\n", "grpo_group = 2\ngrpo_temperature = 1.0\n"))
    assert load_spec(greedy).comparator.grpo_temperature == 1.0


def test_job_settings_default_to_the_products_decoding(tmp_path):
    from selfdistill.ssd.rl import job_settings

    spec = load_spec(grpo_spec(tmp_path))
    s = job_settings(spec)
    assert s["grpo"]["temperature"] == spec.generation.temperature == 0.8
    assert s["grpo"]["max_new_tokens"] == spec.ssd.max_new_tokens == 32  # ssd's cap, else generation's
    assert (s["grpo"]["top_p"], s["grpo"]["top_k"]) == (spec.generation.top_p, spec.generation.top_k)
    assert s["reward"] == {"timeout_s": spec.diagnostics.timeout_s, "memory_mb": spec.diagnostics.memory_mb,
                           "workers": None}
    assert arms.planned(spec, "GO-SSD", n_with_tests=5) == ["ssd", GRPO]
    with pytest.raises(SpecError, match="has no tests"):
        arms.planned(spec, "GO-SSD", n_with_tests=0)


def test_grpo_arm_trains_evaluates_costs_its_rewards_and_resumes(fake_grpo, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    spec = check_spec(grpo_spec(tmp_path))
    result = run_all(spec, run, limit=None, force=True, progress_factory=fake_grpo, say=lambda *a: None)
    summary = json.loads((run / "round1" / "round.json").read_text())
    assert summary["arms"] == ["ssd", GRPO]
    train_dir = run / "round1" / f"train-{GRPO}"
    job = json.loads((train_dir / "job.json").read_text())
    assert job["algorithm"] == GRPO and job["settings"]["grpo"]["group"] == 2 and job["mix"]["n_anchor"] == 0
    prompts = [json.loads(x) for x in (train_dir / "examples.jsonl").read_text().splitlines()]
    assert len(prompts) == 5  # every pool prompt has tests
    assert prompts[0]["prompt"][0]["role"] == "system" and prompts[0]["problem"]["tests"]["kind"] == "assert"
    rewards = [json.loads(x) for x in (train_dir / "rewards.jsonl").read_text().splitlines()]
    assert len(rewards) == 5 * 2 and {r["status"] for r in rewards} == {"passed"}  # the fake answers them right
    record = json.loads((train_dir / "train.json").read_text())
    assert record["sandbox"]["programs"] == 10 and record["infra"] == 0
    stats = summary["arm_samples"][GRPO]
    assert (stats["n_prompts"], stats["group"], stats["steps"], stats["prompts_per_step"]) == (5, 2, 3, 1)
    for t in spec.spec.ssd.temperatures:
        assert (run / f"{GRPO}-T{t:g}" / "metrics.json").exists()
    assert {f"{GRPO}_vs_base", f"{GRPO}_vs_ssd"} <= set(summary["deltas"])
    assert "ci" in json.dumps(summary["deltas"][f"{GRPO}_vs_ssd"])

    records = ledger.read_ledger(run)
    scoring = [x for x in records if (x["stage"], x["arm"]) == ("scoring", "grpo:rewards")]
    training = [x for x in records if (x["stage"], x["arm"]) == ("training", GRPO)]
    assert len(scoring) == 1 and len(training) == 1
    assert scoring[0]["wall_s"] == pytest.approx(record["sandbox"]["wall_s"], abs=1e-3)
    assert scoring[0]["programs"] == 10 and scoring[0]["device"] == "cpu"
    assert training[0]["moved_s"] == pytest.approx(record["sandbox"]["wall_s"])  # a CPU run: counted once
    expected = ledger.arm_hours(records, {GRPO, "grpo:rewards"})
    assert summary["costs"]["arms"][GRPO]["hours_to_produce"] == pytest.approx(expected)
    assert summary["arm_records"][GRPO]["cost_stages"] == ["grpo:rewards"]
    report = result.report_md.read_text()
    assert "a comparator, not SSD: TRL's GRPOTrainer" in report

    n_before = len(records)  # run again: nothing finished is redone
    run_all(check_spec(grpo_spec(tmp_path)), run, limit=None, force=True, progress_factory=fake_grpo,
            say=lambda *a: None)
    again = ledger.read_ledger(run)[n_before:]
    assert not [x for x in again if x["arm"].startswith(GRPO) or x["stage"] in ("sampling", "scoring", "training")]
    assert len((train_dir / "rewards.jsonl").read_text().splitlines()) == 10


def test_every_ranks_reward_scoring_is_in_the_ledger_not_only_rank_0s(tmp_path):
    from types import SimpleNamespace

    from selfdistill import layout
    from selfdistill.ssd.rl import record_reward_scoring

    r = SimpleNamespace(dir=tmp_path / "run" / "round1", run_dir=tmp_path / "run", label=lambda x: x)
    train_dir = layout.train_dir(r.dir, GRPO)
    train_dir.mkdir(parents=True)
    (train_dir / "sandbox.rank1.json").write_text(json.dumps(
        {"programs": 6, "program_s": 0.5, "cpu_s": 0.4, "infra": 1, "wall_s": 3.0}))
    record = {"device": "cuda", "sandbox": {"programs": 4, "program_s": 0.25, "cpu_s": 0.2, "infra": 0, "wall_s": 2.0}}
    assert record_reward_scoring(r, GRPO, record) == 0.0  # on GPUs the training record keeps the wait
    (row,) = ledger.read_ledger(r.run_dir)
    assert (row["stage"], row["arm"], row["programs"], row["infra"], row["ranks"]) == ("scoring", "grpo:rewards",
                                                                                      10, 1, 2)
    assert row["cpu_s"] == pytest.approx(0.6) and row["program_s"] == pytest.approx(0.75)
    assert row["wall_s"] == 3.0  # the ranks waited side by side: the longest wait, not the sum
