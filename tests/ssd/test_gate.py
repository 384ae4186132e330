"""The round-2 gate, table-tested: ENTER only when every condition holds; otherwise STOP naming each failure."""

import pytest

from selfdistill.ssd.gate import evaluate_gate
from tests.ssd.records import GOOD_DELTA, GREEN, inputs
from tests.ssd.records import gate_iv as iv

OVERLAPPING = GOOD_DELTA | {"treatment_pass_at_1": iv(0.50, 0.43, 0.57)}
SMALL = {"overall": iv(0.03, 0.01, 0.05), "baseline_pass_at_1": iv(0.40, 0.38, 0.42),
         "treatment_pass_at_1": iv(0.43, 0.425, 0.44)}
ALERT = {"green": False, "probes": [{"name": "length-median", "status": "alert"}]}
NO_SAFETY = GREEN | {"safety_skipped": True}

TABLE = [
    ("all hold", {}, "ENTER", []),
    ("CIs overlap", {"delta": OVERLAPPING}, "STOP", ["lift"]),
    ("lift below N", {"delta": SMALL}, "STOP", ["lift"]),
    ("no evaluation", {"delta": None}, "STOP", ["lift"]),
    ("battery alert", {"battery": ALERT}, "STOP", ["battery"]),
    ("battery not run", {"battery": None}, "STOP", ["battery"]),
    ("safety skipped", {"battery": NO_SAFETY}, "STOP", ["battery"]),
    ("limited subset", {"comparable": False}, "STOP", ["whole-set"]),
    ("forced", {"forced": True}, "STOP", ["whole-set"]),
    ("pool reused", {"round2_pool_hashes": {"b", "c"}}, "STOP", ["fresh-pool"]),
    ("no round-2 pool", {"round2_pool_hashes": None}, "STOP", ["fresh-pool"]),
    ("slice reused", {"round2_heldout_hashes": {"h1", "f1"}}, "STOP", ["fresh-slice"]),
    ("slice from a pool", {"round2_heldout_hashes": {"a"}}, "STOP", ["fresh-slice"]),
    ("no slice", {"round2_heldout_hashes": None}, "STOP", ["fresh-slice"]),
    ("several", {"battery": ALERT, "forced": True, "round2_pool_hashes": None}, "STOP",
     ["battery", "whole-set", "fresh-pool"]),
]


@pytest.mark.parametrize(("case", "changes", "decision", "failed"), TABLE, ids=[t[0] for t in TABLE])
def test_gate_table(case, changes, decision, failed):
    result = evaluate_gate(inputs(**changes))
    assert result["decision"] == decision
    assert [c["name"] for c in result["checks"] if not c["passed"]] == failed
    assert len(result["reasons"]) == len(failed)
    assert [c["name"] for c in result["checks"]] == ["lift", "battery", "whole-set", "fresh-pool", "fresh-slice"]


def test_the_lift_detail_names_both_intervals():
    detail = evaluate_gate(inputs(delta=OVERLAPPING))["checks"][0]["detail"]
    assert "overlapping" in detail and "[43.0, 57.0]" in detail and "[33.0, 47.0]" in detail


def test_the_lift_check_reports_both_rules_and_only_the_strategys_decides():
    check = evaluate_gate(inputs(delta=OVERLAPPING))["checks"][0]
    assert check["rules"]["non_overlap"] == check["rules"]["non_overlap"] | {"decides": True, "passed": False}
    assert check["rules"]["paired"] | {"decides": False, "passed": True} == check["rules"]["paired"]
    assert check["rules"]["paired"]["delta"] == OVERLAPPING["overall"]
    assert not check["passed"] and "paired delta's CI [+6.0, +14.0] pp excludes 0" in check["detail"]


def _simulated_delta(rng, p_base, lift, n_samples, resamples):
    """One evaluation of base and arm on the same problems: per-problem pass counts out of n_samples."""
    from selfdistill.metrics.bootstrap import bootstrap_mean, paired_diff

    p_arm = p_base + lift * (1 - p_base) / (1 - p_base).mean()  # mean lift exactly `lift`, every p_arm <= 1
    base = rng.binomial(n_samples, p_base) / n_samples
    arm = rng.binomial(n_samples, p_arm) / n_samples
    ids = [f"t{i}" for i in range(len(p_base))]
    seed = int(rng.integers(1 << 31))
    overall = paired_diff(dict(zip(ids, base, strict=True)), dict(zip(ids, arm, strict=True)),
                          n_resamples=resamples, seed=seed)
    return {"overall": overall.to_json(),
            "baseline_pass_at_1": bootstrap_mean(base, n_resamples=resamples, seed=seed).to_json(),
            "treatment_pass_at_1": bootstrap_mean(arm, n_resamples=resamples, seed=seed + 1).to_json()}


def test_simulated_2pp_lift_on_164_problems_the_paired_ci_sees_it_the_non_overlap_rule_does_not():
    """Known truth: a 2 pp lift, 164 problems (HumanEval's size), 20 samples per problem. The paired delta's
    CI excludes 0 in most runs (55-62% over 200 runs at two seeds); the two pass@1 CIs (about +-5 pp each)
    never separated (0 of 400). With no lift the paired CI excluded 0 in 3-3.5% of runs (nominal 2.5%,
    one-sided)."""
    import numpy as np

    rng = np.random.default_rng(11)
    runs, resamples = 60, 400
    rates = {}
    for lift in (0.02, 0.0):
        paired = apart = 0
        for _ in range(runs):
            p_base = rng.beta(0.6, 0.6, 164)
            rules = evaluate_gate(inputs(min_lift_pp=1.0, delta=_simulated_delta(rng, p_base, lift, 20, resamples)))
            rules = rules["checks"][0]["rules"]
            paired += rules["paired"]["passed"]
            apart += rules["non_overlap"]["passed"]
        rates[lift] = (paired / runs, apart / runs)
    assert rates[0.02][0] >= 0.4 and rates[0.02][1] <= 0.05  # paired: about 58%; non-overlap: (almost) never
    assert rates[0.0][0] <= 0.1 and rates[0.0][1] == 0.0


def _gate_spec(tmp_path, **gate):
    from selfdistill.spec import Spec
    from tests.report.fixtures import spec_json

    raw = spec_json()
    raw["gate"] = {"round2_pool": str(tmp_path / "pool2.jsonl"), "round2_heldout": "humaneval"} | gate
    return Spec.model_validate(raw)


def test_the_gate_settings_are_sealed_before_training_and_a_change_is_refused_naming_it(tmp_path):
    from selfdistill.errors import DataError
    from selfdistill.ssd import gate

    (tmp_path / "pool2.jsonl").write_text('{"task_id": "q/0", "prompt": "p"}\n')
    spec = _gate_spec(tmp_path)
    with pytest.raises(DataError, match="records no declaration of the gate's settings"):
        gate.check_declared(spec, tmp_path)
    digest = gate.declare(spec, tmp_path)
    assert gate.check_declared(spec, tmp_path) == digest
    assert gate.declare(_gate_spec(tmp_path, min_lift_pp=1.0), tmp_path) == digest  # sealed: not rewritten
    with pytest.raises(DataError, match=r"changed after training started \(min_lift_pp\).*declared 3\.0, now 1\.0"):
        gate.check_declared(_gate_spec(tmp_path, min_lift_pp=1.0), tmp_path)
    with pytest.raises(DataError, match=r"\(enabled, round2_heldout\)"):
        gate.check_declared(_gate_spec(tmp_path, enabled=False, round2_heldout="mbpp"), tmp_path)
    (tmp_path / "pool2.jsonl").write_text('{"task_id": "q/0", "prompt": "another prompt"}\n')
    with pytest.raises(DataError, match=r"round2_pool_sha256.*gate\.round2_pool content declared"):
        gate.check_declared(spec, tmp_path)


def test_gate_for_run_refuses_changed_settings_and_records_both_lift_readings(tmp_path):
    import json
    from types import SimpleNamespace

    from selfdistill.errors import DataError
    from selfdistill.spec import Spec
    from selfdistill.ssd import gate
    from tests.report.fixtures import write_run

    run = write_run(tmp_path / "run")
    (run / "round1" / "pool.json").write_text(json.dumps({"content_hashes": {"p/0": "p0"}}))
    spec = Spec.model_validate(json.loads((run / "manifest.json").read_text())["spec"])
    heldout = SimpleNamespace(problems=[])
    with pytest.raises(DataError, match="records no declaration of the gate's settings"):
        gate.gate_for_run(spec, heldout, run)  # a run from before the seal: refused, not decided on today's values
    digest = gate.declare(spec, run)
    moved = spec.model_copy(update={"gate": spec.gate.model_copy(update={"min_lift_pp": 0.5})})
    with pytest.raises(DataError, match=r"\(min_lift_pp\)"):
        gate.gate_for_run(moved, heldout, run)
    result = gate.gate_for_run(spec, heldout, run)
    assert result["declared_sha256"] == digest
    lift = next(c for c in result["checks"] if c["name"] == "lift")
    assert set(lift["rules"]) == {"non_overlap", "paired"} and lift["rules"]["non_overlap"]["decides"]
    assert json.loads((run / "round1" / "gate.json").read_text())["schema"] == "selfdistill.gate/1"
