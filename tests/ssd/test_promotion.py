"""The promotion plan (deliverable E): a candidate named by checkpoint, blocked with reasons when the evidence
does not support promotion, canary and retention by failure cost, rollback as one flip, telemetry fields."""

import pytest

from selfdistill.spec import FailureLevel
from selfdistill.ssd.promotion import TELEMETRY, plan_promotion
from tests.ssd.records import iv, summary


def battery(green=True, arms=("ssd", "verifier")):
    return {"arms": {a: {"green": green, "safety_skipped": False,
                         "probes": [] if green else [{"name": "self-bleu", "status": "alert"}]} for a in arms}}


def test_the_best_clean_arm_is_the_candidate_and_nothing_blocks_it(spec):
    plan = plan_promotion(spec, summary(iv(0.05, 0.02, 0.08), iv(0.08, 0.04, 0.12)), battery(), None)
    assert plan["candidate"]["arm"] == "verifier" and plan["candidate"]["checkpoint"] == "sha256:verifierabc"
    assert plan["blocked"] is False and plan["blocked_reasons"] == []
    assert plan["canary"]["traffic_share"] == 0.05 and plan["canary"]["duration"] == "7 days"  # medium
    assert plan["rollback"]["retention_days"] == 30 and plan["rollback"]["mechanism"].startswith("a single config flip")
    assert set(TELEMETRY[:4]) == {"model_variant", "checkpoint_id", "request_id", "timestamp"}
    assert [r["arm"] for r in plan["heldout_results"]] == ["ssd", "verifier"]


@pytest.mark.parametrize(
    ("summary_kw", "battery_kw", "reason"),
    [
        ({"ssd_delta": iv(0.03, -0.01, 0.07)}, {}, "does not exclude a held-out regression"),
        ({"ssd_delta": iv(0.05, 0.02, 0.08)}, {"green": False}, "battery is not green: self-bleu"),
        ({"ssd_delta": iv(0.05, 0.02, 0.08), "forced": True}, {}, "forced past a GO-OTHER"),
        ({"ssd_delta": iv(0.05, 0.02, 0.08), "comparable": False, "limit": 20}, {}, "--limit 20 subset"),
        ({"ssd_delta": iv(-0.02, -0.05, 0.01)}, {}, "no distilled arm beat the base"),
        ({"ssd_delta": iv(0.05, 0.02, 0.08), "heldout": {"n_problems": 120, "min_problems": 200}}, {},
         "120 problems, below the strategy's mandatory 200"),
    ],
)
def test_promotion_is_blocked_with_the_reason(spec, summary_kw, battery_kw, reason):
    plan = plan_promotion(spec, summary(**summary_kw), battery(**battery_kw), None)
    assert plan["blocked"] is True
    assert any(reason in r for r in plan["blocked_reasons"]), plan["blocked_reasons"]


def test_no_battery_blocks_and_high_failure_cost_tightens_the_canary(spec):
    high = spec.model_copy(
        update={"failure_cost": spec.failure_cost.model_copy(update={"level": FailureLevel("high")})})
    plan = plan_promotion(high, summary(iv(0.05, 0.02, 0.08)), None, None)
    assert any("battery has not been run" in r for r in plan["blocked_reasons"])
    assert plan["canary"]["traffic_share"] == 0.01 and plan["canary"]["duration"] == "14 days"
    assert plan["rollback"]["retention_days"] == 90


def test_a_lift_whose_ci_includes_zero_is_a_caveat_when_regressions_do_not_block(spec):
    spec = spec.model_copy(update={"failure_cost": spec.failure_cost.model_copy(update={"heldout_blocker": False})})
    plan = plan_promotion(spec, summary(iv(0.01, -0.01, 0.03)), battery(), None)
    assert plan["candidate"]["arm"] == "ssd" and plan["blocked"] is False
    assert any("includes 0" in c and "point estimate" in c for c in plan["caveats"]), plan["caveats"]


def test_per_slice_rows_carry_their_slice_source(spec):
    s = summary(iv(0.05, 0.02, 0.08))
    s["deltas"]["ssd_vs_base"] |= {"slice_source": "base-pass-rate-proxy", "slice_method": "cross-fit",
                                   "slice_note": "each slice rests on half the samples"}
    row = plan_promotion(spec, s, battery(), None)["heldout_results"][0]
    assert (row["slice_source"], row["slice_method"]) == ("base-pass-rate-proxy", "cross-fit")
    assert row["slice_note"] == "each slice rests on half the samples"
