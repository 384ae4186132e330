"""The dpo comparator arm: preference pairs (a passing program over a failing one of the same prompt) from the
best-of-N draw that rejection-sampling-sft shares, trained by the "dpo" job, evaluated and costed like every arm,
resumable; the spec's DPO settings refused with exit 2 when out of range."""

import json

import pytest

from selfdistill import cli
from selfdistill.checks import check_spec
from selfdistill.errors import DataError
from selfdistill.pipeline import run_all
from selfdistill.ssd import comparators, ledger
from selfdistill.train import jobs
from tests.ssd.round_fixtures import make_spec, write_jsonl

DPO, RS, DRAW = "dpo", "rejection-sampling-sft", "best-of-n"
# four prompts the fake model gets right about half the time, one it always fails, one it always passes
FLAKY_POOL = [
    *({"task_id": f"q/{i}", "prompt": f"Write a function flaky_{i}() that returns {i} plus one, then explain it.",
       "tests": f"assert flaky_{i}() == {i + 1}\n"} for i in range(4)),
    {"task_id": "q/never", "prompt": "Write a function number_7() that returns 7 plus one, then explain it.",
     "tests": "assert number_7() == 0\n"},
    {"task_id": "q/always", "prompt": "Write a function number_8() that returns 8 plus one, then explain it.",
     "tests": "assert True\n"},
]


def dpo_spec(tmp_path, measure='["dpo"]', n=4, extra="", pool=FLAKY_POOL):
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}")
    spec = make_spec(tmp_path, model, extra="[battery]\nprobe_samples = 1\n")
    write_jsonl(tmp_path / "pool.jsonl", pool)
    text = spec.read_text().replace('verifier_arm = "on"', 'verifier_arm = "off"')
    spec.write_text(text.replace('kind = "rejection-sampling-sft"\n',
                                 f'kind = "dpo"\nmeasure = {measure}\nbest_of_n = {n}\n{extra}'))
    return spec


@pytest.fixture
def dpo_fakes(fakes, monkeypatch):
    """The fake engine, and the fake training job for "dpo" jobs too (it reads the pairs file)."""
    monkeypatch.setitem(jobs.RUNNERS, "dpo", jobs.JobRunner("tests.fakes", own_process=False))
    return fakes


def s(task, idx, program, degenerate=None, finish="stop"):
    return {"task_id": task, "sample_idx": idx, "program": program, "raw": program, "degenerate": degenerate,
            "finish_reason": finish}


# --- pair building -----------------------------------------------------------------------------------------------

def test_a_harness_fault_is_never_a_rejected_sample():
    samples = [s("a", 0, "good"), s("a", 1, "bad"), s("a", 2, "flaky-harness")]
    statuses = {("a", 0): "passed", ("a", 1): "timeout", ("a", 2): "infra"}
    pairs, counts = comparators.preference_pairs(samples, statuses, cap=10, seed=0)
    assert [(c["sample_idx"], r["sample_idx"]) for c, r in pairs] == [(0, 1)]
    assert counts["n_infra_excluded"] == 1
    only_infra = {("a", 0): "passed", ("a", 1): "infra", ("a", 2): "infra"}
    pairs, counts = comparators.preference_pairs(samples, only_infra, cap=10, seed=0)
    assert pairs == [] and counts["prompts_without_a_failure"] == 1 and counts["n_infra_excluded"] == 2


def test_a_program_that_both_passed_and_failed_is_no_preference_on_either_side():
    samples = [s("a", 0, "same"), s("a", 1, "same"), s("a", 2, "good"), s("a", 3, "bad")]
    statuses = {("a", 0): "passed", ("a", 1): "timeout", ("a", 2): "passed", ("a", 3): "failed"}
    pairs, counts = comparators.preference_pairs(samples, statuses, cap=10, seed=0)
    assert [(c["program"], r["program"]) for c, r in pairs] == [("good", "bad")]
    assert counts["n_flaky_programs_excluded"] == 1
    only = {("a", 0): "passed", ("a", 1): "failed", ("a", 2): "infra", ("a", 3): "infra"}
    pairs, counts = comparators.preference_pairs(samples, only, cap=10, seed=0)  # nothing else: no pair at all
    assert pairs == [] and counts["prompts_without_a_pass"] == 1


def test_every_way_of_failing_rejects_and_duplicates_and_degenerate_samples_do_not_repeat():
    samples = [s("a", 0, "x"), s("a", 1, "x"), s("a", 2, "y"), s("a", 3, "e", degenerate="single-line"),
               s("a", 4, "f1"), s("a", 5, "f1"), s("a", 6, "f2"), s("a", 7, "f3"), s("a", 8, "f4")]
    statuses = {("a", 0): "passed", ("a", 1): "passed", ("a", 2): "passed", ("a", 3): "failed", ("a", 4): "failed",
                ("a", 5): "failed", ("a", 6): "error", ("a", 7): "memory", ("a", 8): "timeout"}
    pairs, counts = comparators.preference_pairs(samples, statuses, cap=100, seed=0)
    assert counts["n_chosen_candidates"] == 2 and counts["n_rejected_candidates"] == 4  # x, y; f1..f4
    assert len(pairs) == 2 * 4 == len({(c["program"], r["program"]) for c, r in pairs})  # every pair once
    assert {c["program"] for c, _ in pairs} == {"x", "y"} and {r["program"] for _, r in pairs} == {"f1", "f2", "f3",
                                                                                                  "f4"}


def test_the_cap_uses_every_program_before_repeating_and_the_choice_is_seeded_per_prompt():
    samples = [s("a", i, f"p{i}") for i in range(3)] + [s("a", i, f"f{i}") for i in range(3, 7)]
    statuses = {("a", i): "passed" if i < 3 else "failed" for i in range(7)}
    pairs, _ = comparators.preference_pairs(samples, statuses, cap=3, seed=0)
    assert len(pairs) == 3 and len({c["sample_idx"] for c, _ in pairs}) == 3  # three chosen programs, no repeat
    assert len({r["sample_idx"] for _, r in pairs}) == 3
    again, _ = comparators.preference_pairs(samples, statuses, cap=3, seed=0)
    assert [(c["sample_idx"], r["sample_idx"]) for c, r in again] == [(c["sample_idx"], r["sample_idx"])
                                                                      for c, r in pairs]
    other = {tuple((c["sample_idx"], r["sample_idx"]) for c, r in comparators.preference_pairs(
        samples, statuses, cap=3, seed=seed)[0]) for seed in range(8)}
    assert len(other) > 1  # the seed chooses
    more = samples + [s("b", 0, "q"), s("b", 1, "w")]  # another prompt does not change a's pairs
    with_b, _ = comparators.preference_pairs(more, statuses | {("b", 0): "passed", ("b", 1): "failed"}, cap=3, seed=0)
    assert [(c["sample_idx"], r["sample_idx"]) for c, r in with_b if c["task_id"] == "a"] == \
        [(c["sample_idx"], r["sample_idx"]) for c, r in pairs]


def test_prompts_without_a_pass_or_without_a_failure_give_no_pair_and_are_counted():
    samples = [s("pass", 0, "a"), s("pass", 1, "b"), s("fail", 0, "c"), s("fail", 1, "d"), s("both", 0, "e"),
               s("both", 1, "f")]
    statuses = {("pass", 0): "passed", ("pass", 1): "passed", ("fail", 0): "failed", ("fail", 1): "error",
                ("both", 0): "passed", ("both", 1): "failed"}
    pairs, counts = comparators.preference_pairs(samples, statuses, cap=4, seed=0)
    assert [c["task_id"] for c, _ in pairs] == ["both"]
    assert (counts["prompts"], counts["prompts_with_pairs"], counts["prompts_without_a_pass"],
            counts["prompts_without_a_failure"]) == (3, 1, 1, 1)


def test_exclude_drops_cut_off_samples_from_both_sides_before_pairing():
    samples = [s("a", 0, "good", finish="length"), s("a", 1, "good2"), s("a", 2, "bad"),
               s("a", 3, "bad2", finish="length")]
    statuses = {("a", 0): "passed", ("a", 1): "passed", ("a", 2): "failed", ("a", 3): "failed"}
    kept, counts = comparators.preference_pairs(samples, statuses, cap=9, seed=0, exclude_truncated=True)
    assert [(c["sample_idx"], r["sample_idx"]) for c, r in kept] == [(1, 2)] and counts["n_truncated_excluded"] == 2
    assert len(comparators.preference_pairs(samples, statuses, cap=9, seed=0)[0]) == 4


# --- the spec ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("line,field", [("dpo_beta = 0", "dpo_beta"), ("dpo_beta = -0.1", "dpo_beta"),
                                        ("dpo_pairs_per_prompt = 0", "dpo_pairs_per_prompt"),
                                        ("dpo_learning_rate = -1e-6", "dpo_learning_rate")])
def test_bad_dpo_settings_exit_2_through_check(tmp_path, capsys, line, field):
    spec = dpo_spec(tmp_path, extra=line + "\n")
    assert cli.main(["check", str(spec)]) == 2
    assert field in capsys.readouterr().err


def test_dpo_settings_default_to_dpo_learning_rates_not_sfts(tmp_path):
    spec = check_spec(dpo_spec(tmp_path)).spec
    assert comparators.dpo_settings(spec) == {
        "beta": 0.1, "loss_type": "sigmoid", "pairs_per_prompt": 4, "learning_rate": 5e-6,
        "learning_rate_from": "DPO's default for train.method = lora",
        "learning_rate_key": "comparator.dpo_learning_rate"}
    spec = check_spec(dpo_spec(tmp_path, extra="dpo_beta = 0.5\ndpo_learning_rate = 2e-5\n")).spec
    assert comparators.dpo_settings(spec)["beta"] == 0.5 and comparators.dpo_settings(spec)["learning_rate"] == 2e-5


# --- through the round -------------------------------------------------------------------------------------------

def run(tmp_path, spec, fakes):
    return run_all(check_spec(spec), tmp_path / "run", limit=None, force=True, progress_factory=fakes,
                   say=lambda *a: None)


def test_the_dpo_arm_trains_on_pairs_evaluates_costs_and_resumes(dpo_fakes, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(tmp_path, dpo_spec(tmp_path), dpo_fakes)
    r1 = tmp_path / "run" / "round1"
    summary = json.loads((r1 / "round.json").read_text())
    assert summary["arms"] == ["ssd", DPO] and summary["arm_records"][DPO]["algorithm"] == "dpo"
    drawn = (r1 / DRAW / "samples" / "samples.jsonl").read_text().splitlines()
    assert len(drawn) == 6 * 4  # best-of-4 over every pool prompt with tests
    stats = summary["arm_samples"][DPO]
    assert stats["prompts_without_a_pass"] == 1 and stats["prompts_without_a_failure"] >= 1  # q/never, q/always
    assert stats["n_pairs"] == len(stats["pairs"]) > 0 and stats["beta"] == 0.1 and stats["pair_seed"] == 0
    assert all(p["task_id"].startswith("q/") and p["task_id"] not in ("q/never", "q/always") for p in stats["pairs"])
    outcomes = {(o["task_id"], o["sample_idx"]): o["status"] for o in
                map(json.loads, (r1 / DRAW / "verify" / "outcomes.jsonl").read_text().splitlines())}
    assert all(outcomes[(p["task_id"], p["chosen"])] == "passed" and outcomes[(p["task_id"], p["rejected"])] == "failed"
               for p in stats["pairs"])
    train = r1 / f"train-{DPO}"
    examples = [json.loads(x) for x in (train / "examples.jsonl").read_text().splitlines()]
    assert len(examples) == stats["n_pairs"] and {"prompt", "chosen", "rejected"} <= set(examples[0])
    assert examples[0]["prompt"][-1]["role"] == "user" and examples[0]["chosen"][0]["role"] == "assistant"
    assert examples[0]["chosen"] != examples[0]["rejected"]
    job = json.loads((train / "job.json").read_text())
    assert job["algorithm"] == "dpo" and job["settings"]["beta"] == 0.1 and job["settings"]["learning_rate"] == 5e-6
    assert job["mix"]["n_anchor"] == 0  # anchor pairs are SFT examples: not mixed into preference pairs
    for t in (0.8, 1.1):
        assert (tmp_path / "run" / f"{DPO}-T{t:g}" / "metrics.json").exists()
    assert {f"{DPO}_vs_base", f"{DPO}_vs_ssd"} <= set(summary["deltas"])
    assert "ci" in json.dumps(summary["deltas"][f"{DPO}_vs_ssd"])
    records = ledger.read_ledger(tmp_path / "run")
    mine = {(x["stage"], x["arm"]) for x in records}
    assert {("sampling", f"{DRAW}:samples"), ("scoring", f"{DRAW}:scoring"), ("training", DPO),
            ("evaluation", f"{DPO}-T1.1")} <= mine
    expected = ledger.arm_hours(records, {DPO, f"{DRAW}:samples", f"{DRAW}:scoring"})
    assert summary["costs"]["arms"][DPO]["hours_to_produce"] == pytest.approx(expected)
    assert "preference pairs from best-of-N" in result.report_md.read_text()

    n_before = len(records)  # run again: nothing finished is redone
    run(tmp_path, dpo_spec(tmp_path), dpo_fakes)
    again = ledger.read_ledger(tmp_path / "run")[n_before:]
    assert not [x for x in again if x["arm"].startswith((DPO, DRAW)) or x["stage"] in ("sampling", "scoring",
                                                                                        "training")]


def test_rejection_sampling_and_dpo_share_one_draw(dpo_fakes, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run(tmp_path, dpo_spec(tmp_path, measure='["rejection-sampling-sft", "dpo"]'), dpo_fakes)
    summary = json.loads((tmp_path / "run" / "round1" / "round.json").read_text())
    assert summary["arms"] == ["ssd", RS, DPO]
    records = ledger.read_ledger(tmp_path / "run")
    draws = [(x["stage"], x["arm"]) for x in records if x["arm"].startswith(DRAW)]
    assert sorted(draws) == [("sampling", f"{DRAW}:samples"), ("scoring", f"{DRAW}:scoring")]  # once, not per arm
    assert not (tmp_path / "run" / "round1" / RS / "samples").exists()
    assert len((tmp_path / "run" / "round1" / DRAW / "samples" / "samples.jsonl").read_text().splitlines()) == 24
    draw_hours = ledger.arm_hours(records, {f"{DRAW}:samples", f"{DRAW}:scoring"})["wall_s"]
    for arm in (RS, DPO):  # each recipe alone would need the draw: each arm's cost counts it
        assert summary["costs"]["arms"][arm]["hours_to_produce"]["wall_s"] == pytest.approx(
            draw_hours + ledger.arm_hours(records, {arm})["wall_s"])
    rs, dpo = summary["arm_samples"][RS], summary["arm_samples"][DPO]
    assert rs["n_samples"] == dpo["n_samples"] == 24 and rs["draw"] == dpo["draw"]
    between = summary["deltas"]["dpo_vs_rejection_sampling_sft"]["overall"]  # two comparators: paired as well
    assert between["ci_low"] <= between["value"] <= between["ci_high"]
    pareto = json.loads((tmp_path / "run" / "round1" / "promotion.json").read_text())
    md = (tmp_path / "run" / "report.md").read_text()
    pair = next(x for x in md.splitlines() if x.startswith(f"| {RS} vs {DPO} |"))
    assert "paired delta, 95% CI" in pair, (pair, pareto.get("pareto"))


def test_no_pair_at_all_is_refused_with_what_to_change(dpo_fakes, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    always = [{"task_id": f"q/{i}", "prompt": f"Write a function number_{i}() that returns {i} plus one.",
               "tests": "assert True\n"} for i in range(3)]
    with pytest.raises(DataError, match=r"no preference pairs: of 3 pool prompts .* 0 had no passing sample and 3 no "
                                        r"failing one .* raise comparator.best_of_n"):
        run(tmp_path, dpo_spec(tmp_path, pool=always), dpo_fakes)
    stats = json.loads((tmp_path / "run" / "round1" / DPO / "stats.json").read_text())
    assert stats["n_pairs"] == 0 and stats["prompts_without_a_failure"] == 3
    assert not (tmp_path / "run" / "round1" / f"train-{DPO}" / "train.json").exists()
