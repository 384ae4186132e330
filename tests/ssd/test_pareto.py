"""Ship means Pareto: the promotion plan blocks SSD unless it Pareto-dominates at least one comparator
(measured in the round, or declared and labelled so), and names a comparator that dominates SSD as the better
move. Every dominance case, table-tested on synthetic round records."""

import pytest

from selfdistill.spec import ComparatorKind
from selfdistill.ssd import pareto
from selfdistill.ssd.promotion import plan_promotion
from tests.ssd.records import iv, summary

RS = "rejection-sampling-sft"
GREEN = {"arms": {a: {"green": True, "safety_skipped": False, "probes": []} for a in ("ssd", RS)}}


def with_comparator(rs_vs_ssd=None, ssd_hours=1.0, rs_hours=1.0, gpu=False, rs_lift=0.01):
    """A round whose SSD arm lifts base by 5 pp [2, 8]; the measured RS arm when rs_vs_ssd is given."""
    s = summary(iv(0.05, 0.02, 0.08))
    hours = {"ssd": ssd_hours}
    if rs_vs_ssd is not None:
        s["arms"] = ["ssd", RS]
        s["arm_records"] = {"ssd": {"comparator": False}, RS: {"comparator": True}}
        s["arm_titles"][RS] = "rejection-sampling SFT"
        s["deltas"][f"{RS}_vs_base"] = {"overall": iv(rs_lift, rs_lift - 0.02, rs_lift + 0.02),
                                        "baseline_pass_at_1": iv(0.4, 0.35, 0.45),
                                        "treatment_pass_at_1": iv(0.45 + rs_vs_ssd["value"], 0.4, 0.6), "slices": {}}
        s["deltas"][f"{RS}_vs_ssd"] = {"overall": rs_vs_ssd}
        s["export"][RS] = {"model": "m.gguf", "options": {}, "detail": {"out_sha256": "rsabc"}}
        hours[RS] = rs_hours
    s["costs"] = {"arms": {a: {"hours_to_produce": {"device_hours": h, "gpu_hours": h if gpu else 0.0}}
                           for a, h in hours.items()}}
    return s


def declare(spec, p1, gpu_hours, kind="rejection-sampling-sft"):
    return spec.model_copy(update={"comparator": spec.comparator.model_copy(
        update={"pass_at_1": p1, "gpu_hours": gpu_hours, "kind": ComparatorKind(kind)})})


@pytest.mark.parametrize(
    ("case", "rs_vs_ssd", "ssd_hours", "rs_hours", "declared", "blocked", "dominates", "dominated_by"),
    [
        # measured comparator, paired delta RS - SSD
        ("SSD better and no dearer", iv(-0.04, -0.07, -0.01), 1.0, 1.0, None, False, [RS], []),
        ("SSD better and cheaper", iv(-0.04, -0.07, -0.01), 0.5, 2.0, None, False, [RS], []),
        ("comparator better and no dearer", iv(0.04, 0.01, 0.07), 1.0, 1.0, None, True, [], [RS]),
        ("comparator better and cheaper", iv(0.04, 0.01, 0.07), 2.0, 0.5, None, True, [], [RS]),
        ("tied within the CI, SSD cheaper", iv(0.01, -0.02, 0.04), 0.5, 2.0, None, True, [], []),
        ("SSD better but dearer", iv(-0.04, -0.07, -0.01), 2.0, 1.0, None, True, [], []),
        ("comparator better but dearer", iv(0.04, 0.01, 0.07), 1.0, 2.0, None, True, [], []),
        # declared comparator (SSD pass@1 0.45 [0.40, 0.60] at 1 GPU-hour)
        ("SSD's CI above the declared point, no dearer", None, 1.0, None, (0.30, 2.0), False, [RS], []),
        ("declared point above SSD's CI, no dearer", None, 1.0, None, (0.70, 0.5), True, [], [RS]),
        ("declared point inside SSD's CI", None, 1.0, None, (0.50, 2.0), True, [], []),
        # both: SSD dominates the declared DPO, trades off against the measured RS (better, dearer) -> ships
        ("dominates one of two", iv(0.04, 0.01, 0.07), 0.5, 1.0, (0.30, 2.0, "dpo"), False, ["dpo"], []),
    ],
)
def test_every_dominance_case(spec, case, rs_vs_ssd, ssd_hours, rs_hours, declared, blocked, dominates,
                              dominated_by):
    s = with_comparator(rs_vs_ssd, ssd_hours, rs_hours, gpu=True)
    if declared:
        spec = declare(spec, *declared)
    plan = plan_promotion(spec, s, GREEN, None)
    ship = plan["pareto"]
    assert plan["candidate"]["arm"] == "ssd", case
    assert ship["dominates"] == dominates and ship["dominated_by"] == dominated_by, (case, ship["versus"])
    assert plan["blocked"] is blocked, (case, plan["blocked_reasons"])
    if dominated_by:
        assert ship["better_move"]["comparator"] == dominated_by[0]
        assert ship["better_move"]["pass_at_1_diff"]["value"] > 0  # by how much the comparator is better
        assert any("better move" in r for r in plan["blocked_reasons"])
    elif blocked:
        assert ship["better_move"] is None
        assert any("Pareto-dominates no comparator" in r for r in plan["blocked_reasons"])
    if declared and rs_vs_ssd is None:
        assert [d["comparator_source"] for d in ship["versus"]] == ["declared"]
        assert any("(declared)" in r for r in plan["blocked_reasons"]) or not plan["blocked"]


def test_paired_delta_is_used_between_two_measured_arms_and_the_cost_unit_is_said(spec):
    d = pareto.versus(spec, with_comparator(iv(-0.04, -0.07, -0.01)), "ssd")[0]
    assert d["pass_at_1_diff"] == {"value": 0.04, "ci_low": 0.01, "ci_high": 0.07, "how": "paired delta, 95% CI"}
    assert d["cost"]["unit"] == "device-hours, same run"
    cpu = pareto.versus(declare(spec, 0.3, 2.0), with_comparator(gpu=False), "ssd")[0]
    assert "not like for like" in cpu["cost"]["unit"]


@pytest.mark.parametrize("declared_p1", [0.3, 0.9])  # SSD (treatment ~0.45-0.5) clearly above, clearly below
def test_cpu_hours_against_declared_gpu_hours_decide_nothing_and_leave_the_ship_rule_unchecked(spec, declared_p1):
    plan = plan_promotion(declare(spec, declared_p1, 2.0), with_comparator(gpu=False), GREEN, None)
    (d,) = plan["pareto"]["versus"]
    assert d["dominates"] == "neither" and "not like for like" in d["why"]  # neither a win nor a loss
    assert plan["pareto"]["dominates"] == [] and plan["pareto"]["better_move"] is None
    assert not any("Pareto" in r for r in plan["blocked_reasons"])
    assert any("ship rule is unchecked" in c and "not like for like" in c for c in plan["caveats"])


def test_no_comparator_numbers_is_a_caveat_not_a_block(spec):
    plan = plan_promotion(spec, with_comparator(), GREEN, None)
    assert plan["blocked"] is False and plan["pareto"]["versus"] == []
    assert any("ship rule" in c and "unchecked" in c for c in plan["caveats"])


def test_a_missing_cost_dominates_nothing(spec):
    s = with_comparator(iv(-0.04, -0.07, -0.01))
    del s["costs"]["arms"][RS]
    plan = plan_promotion(spec, s, GREEN, None)
    assert plan["pareto"]["versus"][0]["why"] == "a cost is missing from the ledger" and plan["blocked"]


def test_a_comparator_arm_is_never_the_candidate(spec):
    s = with_comparator(iv(0.04, 0.01, 0.07), rs_lift=0.20)  # its lift over base beats SSD's
    plan = plan_promotion(spec, s, GREEN, None)
    assert plan["candidate"]["arm"] == "ssd"
    assert [r.get("comparator", False) for r in plan["heldout_results"]] == [False, True]
