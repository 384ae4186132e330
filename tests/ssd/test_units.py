"""The round's pure parts: the degeneracy filter, arm selection, anchor mixing, the ledger, paired deltas."""

import json

import pytest

from selfdistill.errors import DataError
from selfdistill.spec import SSDSpec, TrainSpec, VerifierArm
from selfdistill.ssd import compare, data, ledger, sampling
from selfdistill.ssd.arms import ARMS
from selfdistill.ssd.round import arm_name, planned_arms


@pytest.mark.parametrize(
    ("raw", "why"),
    [("", "empty"), ("   \n\t\n", "empty"), ("return x", "single-line"), ("  x = 1  \n", "single-line"),
     ("def f():\n    return 1", None), ("```python\nx = 1\n```", None)],
)
def test_degeneracy_drops_only_empty_and_single_line(raw, why):
    assert sampling.degeneracy(raw) == why


def _sample(task, idx, raw="a\nb", degenerate=None, extraction="fenced"):
    return {"task_id": task, "sample_idx": idx, "raw": raw, "degenerate": degenerate, "extraction": extraction,
            "finish_reason": "stop", "completion_tokens": 10}


def test_select_minimal_keeps_unverified_and_verifier_keeps_only_passing():
    samples = [_sample("a", 0), _sample("a", 1, degenerate="empty"), _sample("b", 0), _sample("c", 0)]
    keys = [(s["task_id"], s["sample_idx"]) for s in ARMS["ssd"].select(samples, None)]
    assert keys == [("a", 0), ("b", 0), ("c", 0)]
    passed = {("a", 1), ("c", 0)}  # a/1 passed but is degenerate: the verifier arm applies the same filter first
    assert [(s["task_id"], s["sample_idx"]) for s in ARMS["verifier"].select(samples, passed)] == [("c", 0)]


def test_sample_stats_report_the_no_code_share_and_acceptance_among_tested_prompts():
    samples = [_sample("a", 0, extraction="none"), _sample("b", 0), _sample("c", 0, degenerate="single-line"),
               _sample("d", 0)]
    stats = sampling.sample_stats(samples, passed={("a", 0)}, tested={"a", "b", "c"})
    assert stats["no_code_share"] == 0.25
    assert stats["kept_minimal"] == 3 and stats["dropped_single_line"] == 1
    assert stats["kept_with_tests"] == 2 and stats["kept_verifier"] == 1 and stats["acceptance_rate"] == 0.5


def test_mix_anchor_hits_the_declared_share_and_refuses_a_short_file():
    examples = [{"prompt": f"p{i}", "completion": "c"} for i in range(8)]
    anchor = [{"prompt": f"a{i}", "completion": "c"} for i in range(10)]
    mixed, record = data.mix_anchor(examples, anchor, 0.2, seed=1, path="anchor.jsonl")
    assert record["n_anchor"] == 2 and len(mixed) == 10
    assert sum(e.get("origin") == "anchor" for e in mixed) == 2
    assert data.mix_anchor(examples, anchor, 0.2, seed=1, path="x")[0] == mixed  # seeded
    with pytest.raises(DataError, match="needs 32 anchor examples"):
        data.mix_anchor(examples, anchor, 0.8, seed=1, path="anchor.jsonl")


def test_read_anchor_wraps_chat_turns_and_rejects_bad_lines(tmp_path):
    path = tmp_path / "anchor.jsonl"
    path.write_text(json.dumps({"prompt": "Write f", "completion": "def f(): pass"}) + "\n")
    assert data.read_anchor(path, chat=True) == [
        {"prompt": [{"role": "user", "content": "Write f"}],
         "completion": [{"role": "assistant", "content": "def f(): pass"}]}
    ]
    path.write_text('{"prompt": 3}\n')
    with pytest.raises(DataError, match=r"anchor.jsonl:1"):
        data.read_anchor(path, chat=False)


def test_ledger_sums_per_stage_and_divides_accuracy_by_hours(tmp_path):
    with ledger.timed(tmp_path, "sampling", "samples"):
        pass
    with ledger.timed(tmp_path, "training", "ssd") as cost:
        cost["device"], cost["device_count"] = "cuda", 2
    records = ledger.read_ledger(tmp_path)
    assert [r["stage"] for r in records] == ["sampling", "training"]
    assert records[1]["gpu_hours"] == records[1]["device_hours"] == pytest.approx(records[1]["wall_s"] * 2 / 3600)
    assert records[0]["gpu_hours"] == 0.0
    totals = ledger.totals(records)
    assert list(totals["stages"]) == ["sampling", "training"] and totals["overall"]["runs"] == 2
    assert ledger.accuracy_per_hour(0.5, {"device_hours": 2.0, "gpu_hours": 0.0}) == {
        "per_device_hour": 0.25, "per_gpu_hour": None}


def test_a_stage_killed_by_sigkill_is_counted_up_to_its_last_heartbeat_by_the_next_stage(tmp_path):
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    child = textwrap.dedent(f"""
        import time
        from selfdistill.ssd import ledger
        ledger.HEARTBEAT_S = 0.2
        with ledger.timed({str(tmp_path)!r}, "training", "ssd"):
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", child])
    deadline = time.time() + 30
    while time.time() < deadline and not list((tmp_path / ledger.OPEN).glob("*.json")):
        time.sleep(0.05)
    time.sleep(1.0)  # a few heartbeats
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ledger.read_ledger(tmp_path) == []  # killed: nothing appended by it
    with ledger.timed(tmp_path, "training", "ssd"):  # the resumed stage
        pass
    killed, resumed = ledger.read_ledger(tmp_path)
    assert killed["ended"].startswith("killed") and 0.5 <= killed["wall_s"] <= 5.0
    assert "ended" not in resumed and ledger.totals([killed, resumed])["overall"]["runs"] == 2
    assert not list((tmp_path / ledger.OPEN).glob("*.json"))  # closed, never counted twice
    assert ledger.recover_killed(tmp_path) == 0


def test_a_stage_that_raised_is_counted_and_says_so(tmp_path):
    with pytest.raises(DataError), ledger.timed(tmp_path, "training", "ssd"):
        raise DataError("error: training failed")
    (record,) = ledger.read_ledger(tmp_path)
    assert record["ended"] == "failed (DataError)" and record["wall_s"] >= 0
    assert not list((tmp_path / ledger.OPEN).glob("*.json"))


def _metrics(rates: dict[str, tuple[int, int]], slices: dict[str, str]) -> dict:
    per = {t: {"n": n, "c": c, "infra": 0, "slice": slices[t]} for t, (c, n) in rates.items()}
    value = sum(c / n for c, n in rates.values()) / len(rates)
    return {"per_problem": per,
            "metrics": {"pass@1": {"value": value, "ci_low": 0, "ci_high": 1, "n_problems": len(rates)}}}


def test_paired_delta_overall_and_per_slice():
    slices = {f"t{i}": ("hard" if i < 4 else "easy") for i in range(8)}
    base = _metrics({t: (0, 4) if slices[t] == "hard" else (4, 4) for t in slices}, slices)
    treat = _metrics({t: (2, 4) if slices[t] == "hard" else (4, 4) for t in slices}, slices)
    d = compare.delta(base, treat, slices, n_resamples=500, seed=0, slice_source="labels")
    assert d["overall"]["value"] == pytest.approx(0.25)
    assert d["slices"]["hard"]["value"] == pytest.approx(0.5) and d["slices"]["hard"]["ci_low"] == pytest.approx(0.5)
    assert d["slices"]["easy"]["value"] == 0.0 and "medium" not in d["slices"]


class _Pool:
    def __init__(self, n_with_tests):
        self.n_with_tests = n_with_tests


def test_the_verifier_arm_runs_when_asked_or_when_the_verdict_says_so():
    from selfdistill.checks import check_spec
    from tests.eval_fixtures import QUICKSTART

    spec = check_spec(QUICKSTART).spec
    auto = spec
    on = spec.model_copy(update={"ssd": spec.ssd.model_copy(update={"verifier_arm": VerifierArm.ON})})
    off = spec.model_copy(update={"ssd": spec.ssd.model_copy(update={"verifier_arm": VerifierArm.OFF})})
    assert planned_arms(auto, "GO-SSD", _Pool(5)) == ["ssd"]
    assert planned_arms(auto, "GO-VERIFIER-AWARE-SSD", _Pool(5)) == ["ssd", "verifier"]
    assert planned_arms(auto, "GO-VERIFIER-AWARE-SSD", _Pool(0)) == ["ssd"]
    assert planned_arms(on, "GO-SSD", _Pool(5)) == ["ssd", "verifier"]
    assert planned_arms(off, "GO-VERIFIER-AWARE-SSD", _Pool(5)) == ["ssd"]
    from selfdistill.errors import SpecError

    with pytest.raises(SpecError, match="no tests"):
        planned_arms(on, "GO-SSD", _Pool(0))
    assert arm_name("base", spec.generation.temperature, spec) == "base"
    assert arm_name("base", 1.1, spec) == "base-T1.1" and arm_name("ssd", 0.8, spec) == "ssd-T0.8"


def test_spec_defaults_follow_the_paper_and_validate_the_train_section():
    s = SSDSpec()
    assert (s.t_train, s.top_k, s.top_p, s.t_eval, s.n_per_prompt) == (1.6, 20, 0.8, 1.1, 1)
    assert SSDSpec(t_eval=1.1, t_eval_sweep=[0.8, 1.1, 0.8]).temperatures == [1.1, 0.8]
    assert TrainSpec().lr == 1e-4 and TrainSpec(method="full").lr == 1e-5
    with pytest.raises(ValueError, match="anchor_data"):
        TrainSpec(anchor_ratio=0.1)
    with pytest.raises(ValueError, match="multiple"):
        TrainSpec(batch_size=6, per_device_batch_size=4)


@pytest.mark.parametrize(("policy", "trained", "excluded", "without_end"),
                         [("train-no-eos", 4, 0, 1), ("exclude", 3, 1, 0)])
def test_a_sample_cut_off_at_max_new_tokens_is_marked_and_the_declared_policy_applies(policy, trained, excluded,
                                                                                     without_end):
    from selfdistill.tasks.problem import Problem

    samples = [_sample("a", 0), _sample("b", 0) | {"finish_reason": "length"}, _sample("c", 0), _sample("d", 0)]
    kept, record = data.apply_truncated_policy(samples, policy)
    assert len(kept) == trained and record["policy"] == policy
    assert record["n_kept"] == 4 and record["n_truncated"] == 1 and record["truncated_share"] == 0.25
    assert record["n_excluded"] == excluded and record["n_trained_without_end"] == without_end
    problem = Problem("b", "Write b.", None, "pool")
    assert data.example(problem, samples[1], chat=True)["truncated"] is True
    assert data.example(problem, samples[0], chat=False)["truncated"] is False


def test_the_truncated_policy_is_declared_in_the_spec():
    assert SSDSpec().truncated.value == "train-no-eos"  # the recipe's tokens, never a stop the model did not choose
    with pytest.raises(ValueError, match="train-no-eos"):
        SSDSpec(truncated="drop")
