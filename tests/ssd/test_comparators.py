"""The rejection-sampling-sft comparator arm: best-of-N over the pool prompts with tests, scored in the
sandbox, the distinct passing programs trained on by SFT, evaluated and costed like every arm, resumable; and a
real round (tiny Qwen2, the real engine, TRL) that trains and evaluates every comparator arm beside SSD."""

import json

import pytest

from selfdistill.checks import check_spec
from selfdistill.errors import DataError, SpecError
from selfdistill.pipeline import run_all
from selfdistill.spec import load_spec
from selfdistill.ssd import arms, comparators, ledger
from tests.ssd.round_fixtures import make_spec, rs_spec, write_jsonl

RS, DPO, GRPO, EXTERNAL = "rejection-sampling-sft", "dpo", "grpo", "sft-external"
DRAW = "best-of-n"  # the draw rejection-sampling-sft shares with dpo (tests/ssd/test_dpo_arm.py)


def sample(task, idx, program, degenerate=None):
    return {"task_id": task, "sample_idx": idx, "program": program, "raw": program, "degenerate": degenerate}


def test_distinct_passing_keeps_one_of_each_passing_program_per_prompt():
    samples = [sample("a", 0, "x"), sample("a", 1, "x"), sample("a", 2, "y"), sample("a", 3, "z"),
               sample("b", 0, "x"), sample("b", 1, "w", degenerate="single-line")]
    passed = {("a", 0), ("a", 1), ("a", 2), ("b", 0), ("b", 1)}
    kept = comparators.distinct_passing(samples, passed)
    assert [(s["task_id"], s["sample_idx"]) for s in kept] == [("a", 0), ("a", 2), ("b", 0)]
    assert comparators.distinct_passing(samples, None) == []


def test_measure_accepts_only_what_a_round_can_run(tmp_path, monkeypatch):
    from selfdistill import spec as spec_module

    assert [m.value for m in load_spec(rs_spec(tmp_path)).comparator.measure] == [RS]
    monkeypatch.setattr(spec_module, "MEASURABLE", (spec_module.ComparatorKind.REJECTION_SAMPLING_SFT,))
    with pytest.raises(SpecError) as err:  # a kind this version could not run
        load_spec(rs_spec(tmp_path, measure='["dpo"]'))
    assert "dpo cannot be measured" in str(err.value) and "declare its numbers" in str(err.value)


def test_planned_only_when_measured_and_refused_without_tests(tmp_path):
    spec = load_spec(rs_spec(tmp_path))
    assert arms.planned(spec, "GO-SSD", n_with_tests=3) == ["ssd", RS]
    plain = spec.model_copy(update={"comparator": spec.comparator.model_copy(update={"measure": []})})
    assert arms.planned(plain, "GO-SSD", n_with_tests=3) == ["ssd"]
    with pytest.raises(SpecError, match="has no tests"):
        arms.planned(spec, "GO-SSD", n_with_tests=0)


def test_rejection_sampling_arm_trains_evaluates_costs_and_resumes(fakes, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    spec = check_spec(rs_spec(tmp_path))
    result = run_all(spec, run, limit=None, force=True, progress_factory=fakes, say=lambda *a: None)
    summary = json.loads((run / "round1" / "round.json").read_text())
    assert summary["arms"] == ["ssd", RS]
    drawn = [json.loads(x) for x in (run / "round1" / DRAW / "samples" / "samples.jsonl").read_text().splitlines()]
    assert len(drawn) == 5 * 3  # every pool prompt has tests: best-of-3 each
    generation = json.loads((run / "round1" / DRAW / "samples" / "generation.json").read_text())
    scoring = json.loads((run / "round1" / DRAW / "verify" / "metrics.json").read_text())["provenance"]
    for purpose in (generation["purpose"], scoring["purpose"]):  # labelled as the comparator's draw, not SSD's
        assert purpose.startswith("comparator draw") and "verifier-aware" not in purpose, purpose
    stats = summary["arm_samples"][RS]
    assert stats["best_of_n"] == 3 and stats["n_samples"] == 15
    examples = (run / "round1" / f"train-{RS}" / "examples.jsonl").read_text().splitlines()
    assert len(examples) == stats["n_distinct_passing"] <= stats["kept_verifier"]
    assert json.loads((run / "round1" / f"train-{RS}" / "job.json").read_text())["algorithm"] == "sft"
    for t in spec.spec.ssd.temperatures:
        assert (run / f"{RS}-T{t:g}" / "metrics.json").exists()
    assert {f"{RS}_vs_base", f"{RS}_vs_ssd"} <= set(summary["deltas"])
    assert "ci" in json.dumps(summary["deltas"][f"{RS}_vs_ssd"])
    records = ledger.read_ledger(run)
    mine = {(x["stage"], x["arm"]) for x in records}
    assert {("sampling", f"{DRAW}:samples"), ("scoring", f"{DRAW}:scoring"), ("training", RS)} <= mine
    assert "scoring" in summary["costs"]["totals"]["stages"]
    expected = ledger.arm_hours(records, {RS, f"{DRAW}:samples", f"{DRAW}:scoring"})
    assert summary["costs"]["arms"][RS]["hours_to_produce"] == pytest.approx(expected)
    assert summary["costs"]["arms"][RS]["hours_to_produce"]["wall_s"] > \
        ledger.arm_hours(records, {RS})["wall_s"]  # its draw and scoring count, not only its training
    report = result.report_md.read_text()
    assert "a comparator, not SSD" in report and "rejection-sampling SFT vs minimal SSD" in report
    assert f"| {RS} | measured, comparator |" in report  # a row of B.6's Pareto table
    plan = json.loads((run / "round1" / "promotion.json").read_text())
    assert plan["candidate"] is None or plan["candidate"]["arm"] != RS  # a comparator is never promoted as SSD
    assert [d["comparator"] for d in plan["pareto"]["versus"]] == [RS]
    assert plan["pareto"]["versus"][0]["pass_at_1_diff"]["how"] == "paired delta, 95% CI"

    n_before = len(records)  # run again: nothing finished is redone
    run_all(check_spec(rs_spec(tmp_path)), run, limit=None, force=True, progress_factory=fakes, say=lambda *a: None)
    again = ledger.read_ledger(run)[n_before:]
    assert not [x for x in again if x["arm"].startswith((RS, DRAW)) or x["stage"] in ("sampling", "scoring",
                                                                                       "training")]


EXTERNAL = "sft-external"
PAIRS = [{"prompt": f"Write a function triple_{i}(x) that returns three times x.",
          "completion": f"```python\ndef triple_{i}(x):\n    return 3 * x\n```\n"} for i in range(4)]


def external_spec(tmp_path, pairs=PAIRS, data='data = "pairs.jsonl"\n'):
    spec = rs_spec(tmp_path, measure='["sft-external"]')
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    spec.write_text(spec.read_text().replace("best_of_n = 3\n", data))
    return spec


def test_external_pairs_schema_is_checked_line_by_line(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(PAIRS[0]) + "\n" + json.dumps({"prompt": "p"}) + "\n"
                    + json.dumps({"prompt": "p", "completion": ""}) + "\n")
    with pytest.raises(DataError, match=r"line\(s\) 2, 3 need"):
        comparators.read_pairs(path)
    assert comparators.read_pairs(_write(tmp_path, PAIRS)) == PAIRS


def _write(tmp_path, rows):
    path = tmp_path / "ok.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_sft_external_needs_its_data_file(tmp_path):
    with pytest.raises(SpecError, match="comparator.data"):
        load_spec(external_spec(tmp_path, data=""))
    with pytest.raises(SpecError, match="comparator.data: no such file"):
        load_spec(external_spec(tmp_path, data='data = "missing.jsonl"\n'))
    assert load_spec(external_spec(tmp_path)).comparator.data == str(tmp_path / "pairs.jsonl")  # spec-relative


def test_sft_external_trains_on_the_pairs_and_is_compared(fakes, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    result = run_all(check_spec(external_spec(tmp_path)), run, limit=None, force=True, progress_factory=fakes,
                     say=lambda *a: None)
    summary = json.loads((run / "round1" / "round.json").read_text())
    assert summary["arms"] == ["ssd", EXTERNAL]
    examples = [json.loads(x) for x in (run / "round1" / f"train-{EXTERNAL}" / "examples.jsonl").read_text()
                .splitlines()]
    assert [e["completion"][0]["content"] for e in examples] == [p["completion"] for p in PAIRS]
    assert {e["origin"] for e in examples} == {"external"}
    stats = summary["arm_samples"][EXTERNAL]
    assert stats["n_pairs"] == 4 and stats["contamination"]["clean"] and len(stats["sha256"]) == 64
    assert {f"{EXTERNAL}_vs_base", f"{EXTERNAL}_vs_ssd"} <= set(summary["deltas"])
    assert "ci" in json.dumps(summary["deltas"][f"{EXTERNAL}_vs_base"])
    assert ("training", EXTERNAL) in {(x["stage"], x["arm"]) for x in ledger.read_ledger(run)}
    assert "SFT with the same trainer on the prompt/completion pairs" in result.report_md.read_text()


def test_sft_external_refuses_pairs_that_overlap_the_heldout_set(fakes, tmp_path, monkeypatch):
    from tests.ssd.round_fixtures import HELDOUT

    monkeypatch.chdir(tmp_path)
    leaked = [*PAIRS, {"prompt": HELDOUT[0]["prompt"], "completion": "def double(x):\n    return 2 * x\n"}]
    with pytest.raises(DataError, match="comparator.data .* overlaps the held-out set"):
        run_all(check_spec(external_spec(tmp_path, leaked)), tmp_path / "run", limit=None, force=True,
                progress_factory=fakes, say=lambda *a: None)
    assert not (tmp_path / "run" / "round1" / f"train-{EXTERNAL}" / "train.json").exists()


# --- a real round: tiny Qwen2, the real engine, every comparator trained by TRL in its own process --------------

@pytest.mark.slow  # a real round (SSD and four comparators trained by TRL), a minute or two alone
@pytest.mark.timeout(1800)
def test_a_real_round_trains_and_evaluates_every_comparator_arm_beside_ssd(tmp_path):
    pytest.importorskip("trl")
    from tests.generate.tiny_models import write_tiny_hf
    from tests.ssd.round_fixtures import cli, favour_newlines

    model = favour_newlines(write_tiny_hf(tmp_path / "model"))
    # the tiny model writes no code; these tests pass on a coin flip per run, so a prompt's samples split into
    # passes and failures (P(no prompt has both) = (2/16)^4 < 3e-4): DPO's pairs and GRPO's rewards come from
    # the real sandbox
    coin = [{"task_id": f"c/{i}", "prompt": f"Write a function coin_{i}() that returns {i} plus one, then explain it.",
             "tests": "import os\nassert os.urandom(1)[0] < 128\n"} for i in range(4)]
    spec = make_spec(tmp_path, model, extra="[battery]\nprobe_samples = 1\n")  # writes its own pool: replaced
    write_jsonl(tmp_path / "pool.jsonl", coin)
    write_jsonl(tmp_path / "external.jsonl", [{"prompt": f"Write add_{i}(x) returning x + {i}.",
                                               "completion": f"def add_{i}(x):\n    return x + {i}\n"}
                                              for i in range(3)])
    spec.write_text(spec.read_text().replace('verifier_arm = "on"', 'verifier_arm = "off"').replace(
        'kind = "rejection-sampling-sft"\n',
        'kind = "dpo"\nmeasure = ["rejection-sampling-sft", "dpo", "grpo", "sft-external"]\n'
        'best_of_n = 4\ndpo_pairs_per_prompt = 2\ndpo_learning_rate = 1e-3\n'
        'grpo_group = 2\ngrpo_steps = 2\ngrpo_max_new_tokens = 16\ndata = "external.jsonl"\n'))
    done = cli("ssd", str(spec), "--run-dir", "run", "--force", cwd=tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    run = tmp_path / "run"
    summary = json.loads((run / "round1" / "round.json").read_text())
    assert summary["arms"] == ["ssd", RS, EXTERNAL, DPO, GRPO]  # the registry's order (ssd/arms.py)
    trained = {arm: json.loads((run / "round1" / f"train-{arm}" / "train.json").read_text())
               for arm in summary["arms"]}
    for arm, record in trained.items():
        assert record["finite"] and record["method"] == "lora", arm
        assert "fake" not in (run / "round1" / f"train-{arm}" / "train.log").read_text()
        for t in (0.8, 1.1):
            assert json.loads((run / f"{arm}-T{t:g}" / "metrics.json").read_text())["n_samples"] == 12
        assert {f"{arm}_vs_base"} <= set(summary["deltas"]) and arm in summary["costs"]["arms"]
    stats = summary["arm_samples"][DPO]
    assert 0 < stats["n_pairs"] <= 2 * 4 and stats["n_samples"] == 16
    dpo = trained[DPO]
    assert dpo["job"]["algorithm"] == "dpo" and dpo["beta"] == 0.1 and dpo["learning_rate"] == 1e-3
    assert dpo["n_pairs"] == stats["n_pairs"] and dpo["reference"] == "the base with the LoRA adapter disabled"
    grpo = trained[GRPO]
    assert grpo["job"]["algorithm"] == "grpo" and grpo["optimizer_steps"] == 2 and grpo["group"] == 2
    assert grpo["sandbox"]["programs"] == 2 * 2 and grpo["sandbox"]["infra"] == 0  # every rollout scored there
    assert trained[EXTERNAL]["n_examples"] == 3 and trained[EXTERNAL]["job"]["algorithm"] == "sft"
    rows = [json.loads(line) for line in (run / "ledger.jsonl").read_text().splitlines()]
    stages = [(x["stage"], x["arm"]) for x in rows]
    assert [s for s in stages if s[1].startswith(DRAW)] == [("sampling", f"{DRAW}:samples"),
                                                             ("scoring", f"{DRAW}:scoring")]  # one draw, RS + DPO
    assert ("scoring", f"{GRPO}:rewards") in stages
    assert {("training", arm) for arm in summary["arms"]} <= set(stages)
    again = cli("ssd", str(spec), "--run-dir", "run", "--force", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert len((run / "ledger.jsonl").read_text().splitlines()) == len(rows)  # nothing re-ran


def test_a_comparator_without_training_examples_points_at_what_it_drew_not_at_ssds_samples(tmp_path):
    from types import SimpleNamespace

    from selfdistill.spec import TruncatedPolicy
    from selfdistill.ssd.distill import train_arm

    r = SimpleNamespace(dir=tmp_path / "round1", spec=SimpleNamespace(ssd=SimpleNamespace(
        truncated=TruncatedPolicy.TRAIN_NO_EOS)))
    failed = [{"task_id": "p/0", "sample_idx": 0, "program": "def f(): pass", "raw": "def f():\n  pass",
               "degenerate": None, "finish_reason": "stop"}]
    with pytest.raises(DataError, match="none passed the pool's tests") as refused:
        train_arm(r, RS, SimpleNamespace(problems=[]), failed, set())
    assert str(tmp_path / "round1" / RS / "stats.json") in str(refused.value)
    assert "samples.jsonl" not in str(refused.value)
