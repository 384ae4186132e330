"""run_battery end to end on synthetic arms: each kind of collapse makes its probe alert (its whole CI
beyond the tolerance), a borderline one is a watch, an unchanged arm is green, skipped safety is flagged,
and the result is plain JSON."""

import json
import subprocess
import sys

import pytest

from selfdistill.battery import ArmInputs, load_arm, run_battery, thresholds_hash
from selfdistill.errors import DataError
from selfdistill.spec import BatterySpec
from tests.battery import synth as S

T = BatterySpec()
ALL = [
    "repetition-rate",
    "self-bleu",
    "distinct-3",
    "length-median",
    "length-p95",
    "mode-collapse",
    "passk-flatten",
    "comment-share",
    "docstring-share",
    "refusal-rate",
    "unsafe-rate",
]


@pytest.fixture(scope="module")
def base():
    return S.base_inputs()


def by_name(result):
    return {p["name"]: p for p in result["probes"]}


def alerts(result):
    return {p["name"] for p in result["probes"] if p["status"] == "alert"}


def watches(result):
    return {p["name"] for p in result["probes"] if p["status"] == "watch"}


def arm(base, samples=None, metrics=None, probes="same"):
    return ArmInputs(
        base.samples if samples is None else samples,
        base.metrics if metrics is None else metrics,
        base.probes if probes == "same" else probes,
        "ssd",
    )


def test_unchanged_arm_is_green_and_every_probe_reports(base):
    r = run_battery(base, arm(base), T)
    assert r["green"] is True and r["n_alerts"] == 0 and r["safety_skipped"] is False
    assert [p["name"] for p in r["probes"]] == ALL
    assert r["n_watch"] == 0 and r["watch"] == [] and r["ci"]["confidence"] == 0.95 and "whole" in r["rule"]
    for p in r["probes"]:
        assert p["status"] == "pass", p
        assert p["value"] is not None and p["base_value"] is not None and p["threshold"] is not None
        assert p["ci_low"] <= p["change"] <= p["ci_high"] and p["n_units"] > 0, p
        assert p["unit"] == ("probe prompt" if p["family"] == "safety" else "problem")
        assert p["change_kind"] in {"relative", "absolute"} and p["direction"] in {"rise", "drop", "either"}
        assert p["family"] in {"diversity", "length", "diversity-at-k", "style", "safety"}


def test_resampled_diverse_arm_is_green(base):
    r = run_battery(base, arm(base, S.diverse(seed=1), S.counts_metrics([3] * 6 + [5] * 6)), T)
    assert alerts(r) == set() and r["green"]


def test_collapsed_arm_alerts_on_diversity(base):
    r = run_battery(base, arm(base, S.collapsed(base.samples)), T)
    assert {"repetition-rate", "self-bleu", "distinct-3"} <= alerts(r)
    p = by_name(r)
    assert p["self-bleu"]["value"] == pytest.approx(1.0) and p["self-bleu"]["change"] > T.self_bleu_rise_max
    assert p["distinct-3"]["change"] < -T.distinct_drop_max and set(p["distinct-3"]["extra"]) == {
        "distinct-1",
        "distinct-2",
        "distinct-3",
        "distinct-4",
    }
    assert r["green"] is False and r["n_alerts"] == len(alerts(r))


@pytest.mark.parametrize(
    "factor,fired,watched",
    [
        (0.5, {"length-median"}, {"length-p95"}),  # p95 -50.5 %, CI [-50.7, -50.0]: not all beyond 50 %
        (1.4, {"length-median"}, set()),
        (1.2, set(), set()),
        (2.0, {"length-median", "length-p95"}, set()),
    ],
)
def test_length_drift_alerts_both_ways(base, factor, fired, watched):
    r = run_battery(base, arm(base, S.with_lengths(base.samples, factor)), T)
    assert alerts(r) == fired and watches(r) == watched
    assert r["green"] is not bool(fired) and r["watch"] == sorted(watched, key=ALL.index)


def test_mode_collapse_pass1_up_passk_down(base):
    r = run_battery(base, arm(base, metrics=S.counts_metrics(S.COLLAPSED_C)), T)
    mode = by_name(r)["mode-collapse"]
    assert mode["status"] == "alert" and mode["change"] == pytest.approx(0.631 - 0.893, abs=1e-3)
    assert mode["ci_high"] < 0 and mode["n_units"] == S.N_TASKS  # the whole CI of Δpass@k below 0
    d1 = mode["extra"]["pass@1"]["delta"]
    assert d1["change"] == pytest.approx(0.5417 - 0.4375, abs=1e-3) and d1["ci_low"] is not None
    assert "Δpass@4" in mode["detail"] and mode["extra"]["k"] == S.K
    assert "passk-flatten" in alerts(r)  # the gain 0.455 -> 0.089 also flattened


def test_mode_collapse_pattern_without_per_problem_counts_is_only_a_watch(base):
    r = run_battery(base, arm(base, metrics=S.metrics(0.50, 0.65)), T)  # point estimates only: no CI
    mode = by_name(r)["mode-collapse"]
    assert mode["status"] == "watch" and mode["ci_low"] is None and "(no CI)" in mode["detail"]
    assert r["green"] is True and "mode-collapse" in r["watch"]


def test_flattening_without_mode_collapse(base):
    r = run_battery(base, arm(base, metrics=S.counts_metrics(S.FLATTER_C)), T)  # both up, gain 0.455 -> 0.243
    assert alerts(r) == {"passk-flatten"}
    flat = by_name(r)["passk-flatten"]
    assert flat["change"] == pytest.approx(-0.467, abs=1e-3) and flat["ci_high"] < -T.passk_flatten_max
    assert not alerts(run_battery(base, arm(base, metrics=S.counts_metrics([3] * 6 + [5] * 6)), T))


def test_diversity_at_k_skips_without_k_above_1(base):
    only1 = {"ks": [1], "metrics": {"pass@1": S.interval(0.4)}, "per_problem": {}}
    r = run_battery(ArmInputs(base.samples, only1, base.probes), arm(base, metrics=only1), T)
    p = by_name(r)
    assert p["mode-collapse"]["status"] == p["passk-flatten"]["status"] == "skipped"
    assert "k > 1" in p["mode-collapse"]["detail"] and r["green"]


def test_stripped_comments_and_docstrings_alert_on_style(base):
    assert alerts(run_battery(base, arm(base, S.strip_comments(base.samples)), T)) == {"comment-share"}
    assert alerts(run_battery(base, arm(base, S.strip_docstrings(base.samples)), T)) == {"docstring-share"}


def test_refusals_disappearing_alert(base):
    r = run_battery(base, arm(base, probes=S.probe_completions(refuse=3)), T)
    p = by_name(r)["refusal-rate"]
    assert alerts(r) == {"refusal-rate"} and p["value"] == pytest.approx(0.5) and p["change"] == pytest.approx(-0.5)
    assert p["ci_high"] < -T.refusal_drift_max and p["n_units"] == S.N_PROBES and p["unit"] == "probe prompt"
    assert len(p["extra"]["complied"]["arm"]) == 6 and p["extra"]["complied"]["base"] == []


def test_unsafe_code_appearing_alerts_and_names_the_rules(base):
    r = run_battery(base, arm(base, probes=S.probe_completions(unsafe=5)), T)
    assert alerts(r) == {"unsafe-rate"} and by_name(r)["unsafe-rate"]["ci_low"] > T.unsafe_drift_max
    r = run_battery(base, arm(base, probes=S.probe_completions(unsafe=2)), T)  # 2 of 6 prompts: CI reaches 0
    p = by_name(r)["unsafe-rate"]
    assert watches(r) == {"unsafe-rate"} and not alerts(r) and r["green"] and p["value"] == pytest.approx(2 / 6)
    assert p["extra"]["rule_counts"]["arm"] == {"eval-untrusted": 4, "shell-exec-computed": 4}
    assert p["extra"]["findings"]["arm"][0] == {
        "probe_id": "unsafe/p0",
        "sample_idx": 0,
        "rules": ["eval-untrusted", "shell-exec-computed"],
    }


def test_safety_switched_off_is_skipped_but_green_still_computed(base):
    off = BatterySpec(safety_probe=False)
    r = run_battery(base, arm(base, probes=S.probe_completions(unsafe=6)), off)
    p = by_name(r)
    assert p["refusal-rate"]["status"] == p["unsafe-rate"]["status"] == "skipped"
    assert "safety_probe = false" in p["unsafe-rate"]["detail"]
    assert r["safety_skipped"] is True and r["green"] is True and r["n_skipped"] == 2
    r = run_battery(base, arm(base, S.collapsed(base.samples), probes=None), T)
    assert r["safety_skipped"] is True and "arm" in r["safety_skipped_reason"] and r["green"] is False


def test_different_probe_sets_are_a_data_error(base):
    other = [dict(c, probe_id=c["probe_id"] + "x") for c in base.probes]
    with pytest.raises(DataError, match="different safety probes"):
        run_battery(base, arm(base, probes=other), T)


def test_samples_are_matched_by_task_and_index(base):
    half = [s for s in base.samples if s["sample_idx"] < 2]
    r = run_battery(base, arm(base, half), T)
    assert r["samples"] == {"compared": len(half), "base_only": len(base.samples) - len(half), "arm_only": 0}
    assert r["green"]
    elsewhere = [dict(s, task_id="other" + s["task_id"]) for s in base.samples]
    with pytest.raises(DataError, match="share no"):
        run_battery(base, arm(base, elsewhere), T)


@pytest.mark.parametrize(
    "samples,match",
    [
        ([{"raw": "x"}], "sample #0 must be a dict with 'task_id'"),
        ([{"task_id": "a", "sample_idx": 0, "raw": "x"}] * 2, "appears twice"),
        ([], "has no samples"),
    ],
)
def test_malformed_samples_are_data_errors(base, samples, match):
    with pytest.raises(DataError, match=match):
        run_battery(base, arm(base, samples), T)


def test_metrics_without_their_table_are_a_data_error(base):
    with pytest.raises(DataError, match=r"arm \(ssd\) metrics must be the dict of <arm>/metrics.json"):
        run_battery(base, arm(base, metrics={"pass@1": 0.5}), T)


def test_missing_completion_tokens_falls_back_for_both(base):
    no_len = [{k: v for k, v in s.items() if k != "completion_tokens"} for s in base.samples]
    r = run_battery(base, arm(base, no_len), T)
    assert "code tokens" in by_name(r)["length-median"]["extra"]["unit"] and r["green"]


def test_result_is_strict_json(base):
    r = run_battery(base, arm(base, S.collapsed(base.samples), probes=S.probe_completions(unsafe=1)), T)
    assert json.loads(json.dumps(r, allow_nan=False)) == r
    assert r["thresholds_hash"] == thresholds_hash(T) and r["schema"] == "selfdistill.battery/1"


def test_thresholds_hash_is_stable_and_moves_with_every_threshold():
    h = thresholds_hash(T)
    assert len(h) == 64 and h == thresholds_hash(BatterySpec()) == thresholds_hash(BatterySpec(**T.model_dump()))
    seen = {h}
    for name, value in T.model_dump().items():
        changed = (not value) if isinstance(value, bool) else value + 1 if isinstance(value, int) else value / 2
        seen.add(thresholds_hash(BatterySpec(**{name: changed})))
    assert len(seen) == len(T.model_dump()) + 1


def test_load_arm_reads_the_run_directory(tmp_path, base):
    d = tmp_path / "ssd"
    d.mkdir()
    (d / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in base.samples))
    (d / "metrics.json").write_text(json.dumps(base.metrics))
    loaded = load_arm(d)
    assert loaded.name == "ssd" and list(loaded.samples) == base.samples and loaded.probes is None
    with pytest.raises(DataError, match="does not exist"):
        load_arm(tmp_path / "missing")


def test_battery_imports_no_heavy_backend():
    code = "import sys, selfdistill.battery; print(sorted({'torch', 'transformers', 'vllm'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
