"""A whole SSD round on a tiny Qwen2 model built here, on CPU: precondition, T_train sampling, the
degeneracy filter, pool verification, LoRA fine-tuning of both arms (own directories), evaluation at
T_eval with a sweep, paired deltas, the cost ledger, resume, --force and the GO-OTHER refusal.

The tiny model writes no working code, so every held-out sample fails and the verdict is GO-OTHER (R1);
two pool problems have tests that pass whatever the program is (`assert True`), so the verifier arm has
examples to train on. Numbers are honest zeros; the test is about the pipeline.
"""

import json
from pathlib import Path

import pytest

pytest.importorskip("trl")

from tests.generate.tiny_models import write_tiny_hf  # noqa: E402
from tests.ssd.round_fixtures import cli, favour_newlines, make_spec, write_round2_sources  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return favour_newlines(write_tiny_hf(tmp_path_factory.mktemp("tiny") / "model"))


@pytest.fixture(scope="module")
def round1(tiny, tmp_path_factory):
    """Round 1 refused on GO-OTHER, then forced: (the refused and the forced CLI results, spec, run dir)."""
    tmp_path = tmp_path_factory.mktemp("round1")
    spec = make_spec(tmp_path, tiny, extra=write_round2_sources(tmp_path))
    refused = cli("ssd", str(spec), "--run-dir", "run", cwd=tmp_path)
    run = tmp_path / "run"
    base_only = (run / "base" / "verdict.json").exists() and not (run / "round1" / "samples").exists()
    done = cli("ssd", str(spec), "--run-dir", "run", "--force", cwd=tmp_path)
    return refused, base_only, done, spec, run


@pytest.mark.slow
@pytest.mark.timeout(1200)  # minutes on a loaded 2-core machine; ~1 min alone
def test_go_other_refuses_the_round_before_any_sample_is_drawn(round1):
    refused, base_only, *_ = round1
    assert refused.returncode == 3, refused.stderr
    assert "GO-OTHER" in refused.stderr and "--force" in refused.stderr
    assert base_only


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_forced_round_1_trains_and_evaluates_every_arm_separately(round1):
    _, _, done, spec, run = round1
    assert done.returncode == 0, done.stderr + done.stdout
    summary = json.loads((run / "round1" / "round.json").read_text())
    assert summary["forced"] is True and summary["arms"] == ["ssd", "verifier"]
    # sampling: one sample per pool prompt at T_train, seeds recorded, filter counts reported
    samples = [json.loads(line) for line in (run / "round1" / "samples" / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 5 and all(s["seed"] for s in samples)
    gen = json.loads((run / "round1" / "samples" / "generation.json").read_text())
    assert gen["sampling"]["temperature"] == 1.6 and gen["sampling"]["top_k"] == 20 and gen["sampling"]["top_p"] == 0.8
    s = summary["sampling"]
    assert s["n_samples"] == 5 and s["kept_minimal"] + s["dropped_empty"] + s["dropped_single_line"] == 5
    assert 0 <= s["no_code_share"] <= 1 and "acceptance_rate" in s
    # two arms, two directories, two training sets: the verifier's is the passing subset of the minimal one
    minimal = (run / "round1" / "train-ssd" / "examples.jsonl").read_text().splitlines()
    verified = (run / "round1" / "train-verifier" / "examples.jsonl").read_text().splitlines()
    assert len(minimal) == s["kept_minimal"] and len(verified) == s["kept_verifier"]
    assert {json.loads(v)["task_id"] for v in verified} <= {"p/0", "p/1"}
    assert set(verified) <= set(minimal)
    for arm in ("ssd", "verifier"):
        train = json.loads((run / "round1" / f"train-{arm}" / "train.json").read_text())
        assert train["method"] == "lora" and train["finite"]
    # evaluation at T_eval and the sweep, every arm on the same problems
    for name in ("base", "base-T1.1", "ssd-T1.1", "ssd-T0.8", "verifier-T1.1", "verifier-T0.8"):
        metrics = json.loads((run / name / "metrics.json").read_text())
        assert metrics["n_samples"] == 12, name
    assert json.loads((run / "ssd-T1.1" / "metrics.json").read_text())["forced"] is True
    assert [row["t_eval"] for row in summary["sweep"]] == [1.1, 0.8]
    assert summary["sweep"][0]["t_eff"] == pytest.approx(1.76)
    assert set(summary["deltas"]) == {"ssd_vs_base", "ssd_vs_best_base_decode", "verifier_vs_base", "verifier_vs_ssd"}
    d = summary["deltas"]["ssd_vs_base"]
    assert d["overall"]["n_problems"] == 3 and set(d["slices"]) == {"easy", "medium", "hard"}
    assert d["slice_source"] == "labels"
    # the cost ledger has every stage, once
    stages = [json.loads(line)["stage"] for line in (run / "ledger.jsonl").read_text().splitlines()]
    assert stages.count("sampling") == 1 and stages.count("training") == 2 and stages.count("evaluation") == 5
    assert set(summary["costs"]["totals"]["stages"]) >= {"precondition", "sampling", "training", "evaluation"}
    assert "paired pass@1 deltas" in done.stdout
    # provenance: the manifest holds the spec as the spec file resolves to, not the last arm's copy of it
    from selfdistill.report.inputs import load_run
    from selfdistill.report.plots import _passk_series
    from selfdistill.spec import load_spec

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["spec"] == load_spec(spec).model_dump(mode="json")
    assert "base (diagnostic, T=0.8)" in [label for label, _, _ in _passk_series(load_run(run))]
    assert manifest["gate"]["values"]["round2_pool"].endswith("pool2.jsonl") and manifest["battery"]
    # a sample cut off at max_new_tokens trains without the end token: the policy and counts per arm
    assert s["truncated_policy"] == "train-no-eos"
    for arm, kept in (("ssd", s["kept_minimal"]), ("verifier", s["kept_verifier"])):
        examples = [json.loads(x)
                    for x in (run / "round1" / f"train-{arm}" / "examples.jsonl").read_text().splitlines()]
        cut = summary["training"][arm]["truncated"]
        assert cut["policy"] == "train-no-eos" and cut["n_kept"] == kept == len(examples)
        assert cut["n_truncated"] == cut["n_trained_without_end"] == sum(e["truncated"] for e in examples)
    assert sum(x["finish_reason"] == "length" for x in samples) / 5 == s["truncated_share"]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_finished_round_1_run_again_reruns_nothing(round1):
    _, _, done, spec, run = round1
    assert done.returncode == 0, done.stderr + done.stdout
    stages = [json.loads(line)["stage"] for line in (run / "ledger.jsonl").read_text().splitlines()]
    tmp_path = run.parent
    again = cli("ssd", str(spec), "--run-dir", "run", "--force", cwd=tmp_path)  # resume of a finished round
    assert again.returncode == 0, again.stderr
    stages_after = [json.loads(line)["stage"] for line in (run / "ledger.jsonl").read_text().splitlines()]
    assert stages_after == stages  # nothing re-ran


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_round_2_needs_a_passed_gate_and_trains_the_parent(round1):
    _, _, done, spec1, run = round1
    assert done.returncode == 0, done.stderr + done.stdout
    tmp_path = run.parent
    summary = json.loads((run / "round1" / "round.json").read_text())
    # round 2: refused without a passed gate (--force does not override it); entered through one
    spec = tmp_path / "spec-round2.toml"
    spec.write_text(spec1.read_text().replace('verifier_arm = "on"', 'verifier_arm = "off"\nround = 2'))
    no_gate = cli("ssd", str(spec), "--run-dir", "run", "--force", cwd=tmp_path)
    assert no_gate.returncode == 3 and "gate.json does not exist" in no_gate.stderr
    tag = {"schema": "selfdistill.gate/1"}
    (run / "round1" / "gate.json").write_text(
        json.dumps(tag | {"decision": "STOP", "arm": "ssd", "reasons": ["lift: no"]}))
    stopped = cli("ssd", str(spec), "--run-dir", "run", "--force", cwd=tmp_path)
    assert stopped.returncode == 3 and "lift: no" in stopped.stderr
    (run / "round1" / "gate.json").write_text(json.dumps(tag | {"decision": "ENTER", "arm": "ssd", "reasons": []}))
    entered = cli("ssd", str(spec), "--run-dir", "run", cwd=tmp_path)
    assert entered.returncode == 0, entered.stderr + entered.stdout
    r2 = json.loads((run / "round2" / "round.json").read_text())
    merged = str(run / "round1" / "train-ssd" / "merged")
    assert r2["round"] == 2 and r2["lineage"]["parent_arm"] == "ssd" and r2["lineage"]["parent_weights"] == merged
    assert r2["lineage"]["gate_sha256"]
    assert json.loads((run / "round2" / "samples" / "generation.json").read_text())["model"] == merged
    assert json.loads((run / "round2" / "train-ssd" / "job.json").read_text())["model"] == merged
    assert {"ssd_vs_base", "ssd_vs_parent"} <= set(r2["deltas"])
    for name in ("r2-base-T1.1", "r2-parent-T1.1", "r2-ssd-T1.1"):
        assert json.loads((run / name / "metrics.json").read_text())["n_samples"] == 8, name
    assert json.loads((run / "round1" / "round.json").read_text()) == summary  # round 1 untouched
    manifest = json.loads((run / "manifest.json").read_text())  # round 2 has its own entry; the run's stays
    assert manifest["spec"]["ssd"]["round"] == 1 and manifest["heldout"]["task"].endswith("heldout.jsonl")
    assert manifest["rounds"]["round2"]["heldout"]["task"].endswith("fresh.jsonl")
    assert manifest["rounds"]["round2"]["spec"]["ssd"]["round"] == 2


@pytest.mark.slow
@pytest.mark.timeout(1200)  # minutes on a loaded 2-core machine; ~1 min alone
def test_a_full_fine_tune_round_through_llamacpp_evaluates_the_exported_gguf(tmp_path):
    """The CPU fast path: a qwen2 GGUF base, full fine-tuning, the trained weights written back into a copy
    of the base GGUF, and llama.cpp evaluating base and distilled models alike."""
    pytest.importorskip("llama_cpp")
    from tests.generate.tiny_models import write_tiny_qwen2_gguf

    model = write_tiny_qwen2_gguf(tmp_path / "tiny-qwen2.gguf", block_std=0.3)  # 0.1 collapses onto "\n"
    spec = make_spec(tmp_path, model, method="full")
    text = spec.read_text().replace('backend = "hf"', 'backend = "llamacpp"').replace(
        "options = { batch_size = 8 }", "options = { n_ctx = 2048 }").replace(
        'verifier_arm = "on"', 'verifier_arm = "off"').replace("t_eval_sweep = [0.8]", "t_eval_sweep = []").replace(
        "max_new_tokens = 32", "max_new_tokens = 96").replace(
        "batch_size = 2", "batch_size = 1\nepochs = 3")  # enough steps past the warm-up step (lr 0) to move weights
    spec.write_text(text)
    done = cli("ssd", str(spec), "--run-dir", "run", "--force", cwd=tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    run = tmp_path / "run"
    summary = json.loads((run / "round1" / "round.json").read_text())
    assert summary["arms"] == ["ssd"] and summary["training"]["ssd"]["method"] == "full"
    export = summary["export"]["ssd"]
    assert export["model"].endswith("model.gguf") and Path(export["model"]).is_file()
    assert export["detail"]["out_sha256"] and export["detail"]["changed"]
    gen = json.loads((run / "ssd-T1.1" / "generation.json").read_text())
    assert gen["backend"] == "llamacpp" and gen["model"] == export["model"]
    base_gen = json.loads((run / "base-T1.1" / "generation.json").read_text())
    assert base_gen["model"] == str(model) and base_gen["sampling"] == gen["sampling"]
    assert json.loads((run / "ssd-T1.1" / "metrics.json").read_text())["n_samples"] == 12
