"""Every row of the rule table (docs/decision-rule.md), its boundaries, and the inconclusive estimate."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from selfdistill.decide.settle import problems_to_settle
from selfdistill.decide.verdict import (
    Estimate,
    FailureCost,
    OtherMove,
    Rules,
    VerdictKind,
    precondition_verdict,
)
from selfdistill.errors import DataError, SpecError
from selfdistill.metrics.bootstrap import bootstrap_mean

DOC = Path(__file__).resolve().parents[2] / "docs" / "decision-rule.md"
MID = (0.40, 0.35, 0.45)  # an unremarkable pass@1
HIGH_K = (0.60, 0.55, 0.65)  # an unremarkable pass@k
VERIFIED_HIGH = {"verifier_available": True, "failure_cost": "high"}
RL_READY = {"verifier_available": True, "rl_gpu_hours": 24.0}

# row, gap, pass1, passk, rules, kind, other
TABLE = [
    ("R1", (0.01, 0.00, 0.02), (0.01, 0.0, 0.02), (0.02, 0.0, 0.04), {}, VerdictKind.GO_OTHER, OtherMove.SFT_EXTERNAL),
    (
        "R1",
        (0.03, 0.01, 0.06),
        (0.00, 0.0, 0.00),
        (0.03, 0.01, 0.049),
        VERIFIED_HIGH,
        VerdictKind.GO_OTHER,
        OtherMove.SFT_EXTERNAL,
    ),
    ("R2", (0.03, 0.01, 0.04), (0.97, 0.95, 0.99), (1.0, 1.0, 1.0), {}, VerdictKind.GO_OTHER, OtherMove.DO_NOTHING),
    (
        "R2",
        (0.03, 0.01, 0.04),
        (0.97, 0.96, 0.99),
        (1.0, 1.0, 1.0),
        VERIFIED_HIGH,
        VerdictKind.GO_OTHER,
        OtherMove.DO_NOTHING,
    ),
    ("R3", (0.20, 0.15, 0.25), MID, HIGH_K, {}, VerdictKind.GO_SSD, None),
    ("R3", (0.20, 0.05, 0.25), MID, HIGH_K, {}, VerdictKind.GO_SSD, None),  # ci_low == threshold
    ("R3", (0.20, 0.15, 0.25), MID, HIGH_K, {"verifier_available": True}, VerdictKind.GO_SSD, None),
    ("R3", (0.20, 0.15, 0.25), MID, HIGH_K, {"failure_cost": "high"}, VerdictKind.GO_SSD, None),
    ("R4", (0.20, 0.15, 0.25), MID, HIGH_K, VERIFIED_HIGH, VerdictKind.GO_VERIFIER_AWARE_SSD, None),
    ("R5a", (0.01, -0.01, 0.03), (0.86, 0.82, 0.90), (0.87, 0.83, 0.91), {}, VerdictKind.GO_OTHER,
     OtherMove.DO_NOTHING),
    ("R5a", (0.01, -0.01, 0.03), (0.86, 0.80, 0.90), (0.87, 0.83, 0.91), RL_READY, VerdictKind.GO_OTHER,
     OtherMove.DO_NOTHING),  # near the ceiling beats an RL-ready spec; ci_low == near_ceiling counts
    ("R5b", (0.01, -0.01, 0.03), MID, (0.41, 0.36, 0.46), RL_READY, VerdictKind.GO_OTHER, OtherMove.RL_VERIFIER),
    ("R5b", (0.01, -0.01, 0.03), MID, (0.41, 0.20, 0.46), RL_READY | {"rl_gpu_hours": 8.0}, VerdictKind.GO_OTHER,
     OtherMove.RL_VERIFIER),  # both RL boundaries are inclusive
    ("R5c", (0.01, -0.01, 0.03), MID, (0.41, 0.36, 0.46), {"verifier_available": True}, VerdictKind.GO_OTHER,
     OtherMove.REJECTION_SAMPLING),  # no declared budget
    ("R5c", (0.01, -0.01, 0.03), MID, (0.41, 0.36, 0.46), RL_READY | {"rl_gpu_hours": 7.9}, VerdictKind.GO_OTHER,
     OtherMove.REJECTION_SAMPLING),  # budget below the RL minimum
    ("R5c", (0.01, -0.01, 0.03), (0.10, 0.05, 0.15), (0.12, 0.07, 0.19), RL_READY, VerdictKind.GO_OTHER,
     OtherMove.REJECTION_SAMPLING),  # pass@k too low for RL rewards
    ("R5c", (0.01, -0.01, 0.049), MID, (0.41, 0.36, 0.46), VERIFIED_HIGH | {"preference_data": True},
     VerdictKind.GO_OTHER, OtherMove.REJECTION_SAMPLING),  # a verifier beats preference data
    ("R5d", (0.01, -0.01, 0.03), MID, (0.41, 0.36, 0.46), {"preference_data": True, "rl_gpu_hours": 100.0},
     VerdictKind.GO_OTHER, OtherMove.DPO),  # no verifier: no RL, whatever the budget
    ("R5e", (0.01, -0.01, 0.03), MID, (0.41, 0.36, 0.46), {}, VerdictKind.GO_OTHER, OtherMove.SFT_EXTERNAL),
    ("R5e", (0.01, -0.01, 0.049), MID, (0.41, 0.36, 0.46), {"failure_cost": "high", "rl_gpu_hours": 100.0},
     VerdictKind.GO_OTHER, OtherMove.SFT_EXTERNAL),
    ("R6", (0.06, 0.02, 0.10), MID, (0.46, 0.41, 0.51), {}, VerdictKind.INCONCLUSIVE, None),
    ("R6", (0.03, 0.00, 0.05), MID, (0.43, 0.38, 0.48), {}, VerdictKind.INCONCLUSIVE, None),  # ci_high == threshold
    ("R6", (0.06, 0.02, 0.10), MID, (0.46, 0.41, 0.51), VERIFIED_HIGH, VerdictKind.INCONCLUSIVE, None),
]


@pytest.mark.parametrize(
    "row,gap,pass1,passk,rules,kind,other", TABLE, ids=[f"{t[0]}-{i}" for i, t in enumerate(TABLE)]
)
def test_rule_table_row(row, gap, pass1, passk, rules, kind, other):
    v = precondition_verdict(gap, pass1, passk, 16, Rules(**rules))
    assert (v.rule_id, v.kind, v.other) == (row, kind, other)


def test_every_row_is_tested_and_documented():
    doc_rows = re.findall(
        r"^\| (R\d[a-e]?) \| .*? \| (GO-[A-Z-]+|INCONCLUSIVE) \| ([^|]+) \|", DOC.read_text(), flags=re.MULTILINE
    )
    documented = {(row, kind, move.strip()) for row, kind, move in doc_rows}
    tested = {(t[0], t[5].value, t[6].value if t[6] else "—") for t in TABLE}
    assert documented == tested
    assert {r for r, _, _ in documented} == {"R1", "R2", "R3", "R4", "R5a", "R5b", "R5c", "R5d", "R5e", "R6"}
    assert {m for _, _, m in documented} >= {m.value for m in OtherMove}  # every move on the menu is reachable


def test_floor_boundary_is_strict():
    v = precondition_verdict((0.04, 0.02, 0.05), (0.01, 0.0, 0.02), (0.05, 0.03, 0.05), 16)
    assert v.rule_id != "R1"  # ci_high == floor is not "below the floor"


def test_thresholds_are_configurable():
    gap = (0.08, 0.06, 0.10)
    assert precondition_verdict(gap, MID, HIGH_K, 16, Rules(gap_threshold=0.05)).kind is VerdictKind.GO_SSD
    assert precondition_verdict(gap, MID, HIGH_K, 16, Rules(gap_threshold=0.12)).rule_id == "R5e"


def test_justification_states_hypothesis_against_numbers_in_pp():
    v = precondition_verdict((0.2912, 0.2503, 0.3321), (0.412, 0.38, 0.445), (0.7032, 0.65, 0.75), 16, n_problems=164)
    text = v.justification
    assert text.startswith("SSD bets that the model's correct solutions are already among its samples")
    for piece in (
        "pass@16 is 70.3% vs pass@1 41.2%",
        "gap of 29.1 pp [95% CI 25.0, 33.2]",
        "5.0 pp threshold",
        "164 problems",
    ):
        assert piece in text


@pytest.mark.parametrize(
    "row,gap,pass1,passk,rules,phrase",
    [
        ("R1", (0.01, 0.0, 0.02), (0.01, 0.0, 0.02), (0.02, 0.0, 0.04), {}, "needs new knowledge, not condensation"),
        ("R2", (0.03, 0.01, 0.04), (0.97, 0.95, 0.99), (1.0, 1.0, 1.0), {}, "Do nothing"),
        ("R3", (0.2, 0.15, 0.25), MID, HIGH_K, {"verifier_available": True}, "no-verifier simplicity"),
        ("R4", (0.2, 0.15, 0.25), MID, HIGH_K, VERIFIED_HIGH, "separate arm"),
        ("R5a", (0.01, -0.01, 0.03), (0.9, 0.85, 0.95), (0.9, 0.85, 0.95), {}, "close to the ceiling"),
        ("R5b", (0.01, -0.01, 0.03), MID, MID, RL_READY, "rewards only programs that pass"),
        ("R5c", (0.01, -0.01, 0.03), MID, MID, {"verifier_available": True}, "no declared GPU-hours"),
        ("R5d", (0.01, -0.01, 0.03), MID, MID, {"preference_data": True}, "comparator is DPO"),
        ("R5e", (0.01, -0.01, 0.03), MID, MID, {}, "SFT on curated external data"),
        ("R6", (0.06, 0.02, 0.10), MID, MID, {}, "cannot tell yet"),
    ],
)
def test_each_row_explains_itself(row, gap, pass1, passk, rules, phrase):
    v = precondition_verdict(gap, pass1, passk, 16, Rules(**rules))
    assert v.rule_id == row and phrase in v.justification


def test_inconclusive_says_how_many_problems_would_settle_it():
    v = precondition_verdict((0.06, 0.02, 0.10), MID, MID, 16, n_problems=100)
    # half-width facing the threshold 4 pp, distance 1 pp: 100 * 16 = 1600 problems
    assert v.problems_needed == 1600
    assert "About 1600 problems in total (1500 more than the 100 measured)" in v.justification
    assert "add problems" in v.justification


def test_closer_to_threshold_needs_more_problems():
    needed = [problems_to_settle(Estimate(g, g - 0.04, g + 0.04), 0.05, 100) for g in (0.085, 0.07, 0.06)]
    assert needed[0] < needed[1] < needed[2] and needed[0] > 100


def test_gap_on_the_threshold_is_not_settleable_and_says_so():
    v = precondition_verdict((0.052, 0.01, 0.09), MID, MID, 16, n_problems=100)
    assert v.kind is VerdictKind.INCONCLUSIVE and v.problems_needed is None
    assert "no practical number of problems settles it" in v.justification


def test_huge_answer_is_capped_and_explained():
    v = precondition_verdict((0.06, -0.2, 0.32), MID, MID, 16, n_problems=100)
    assert v.problems_needed is None and "more than 25x" in v.justification


def test_without_problem_count_gives_a_factor():
    v = precondition_verdict((0.07, 0.03, 0.11), MID, MID, 16)
    assert v.problems_needed is None and "4.0x as many problems" in v.justification


def test_says_whether_more_samples_help():
    few = precondition_verdict((0.06, 0.02, 0.10), MID, MID, 16, n_problems=50, n_samples_per_problem=16)
    many = precondition_verdict((0.06, 0.02, 0.10), MID, MID, 16, n_problems=50, n_samples_per_problem=64)
    assert "shrink only the within-problem noise" in few.justification
    assert "raising n helps too" in few.justification and "raising n" not in many.justification


def test_settling_estimate_matches_a_bootstrap_at_that_many_problems():
    # Per-problem gaps with mean 9 pp: at P=60 the CI straddles 5 pp. At P_needed problems drawn from the
    # same per-problem distribution, the CI half-width should be about the distance to the threshold.
    rng = np.random.default_rng(3)
    gaps = np.clip(rng.normal(0.09, 0.2, size=60), -1, 1)
    iv = bootstrap_mean(gaps, n_resamples=4000, seed=1)
    assert iv.ci_low < 0.05 <= iv.ci_high
    needed = problems_to_settle(Estimate(iv.value, iv.ci_low, iv.ci_high), 0.05, 60)
    bigger = rng.choice(gaps, size=needed, replace=True)
    big = bootstrap_mean(bigger - bigger.mean() + iv.value, n_resamples=4000, seed=2)  # same point estimate
    half = iv.value - big.ci_low
    assert 0.8 <= half / abs(iv.value - 0.05) <= 1.25


def test_verdict_to_json_is_plain_and_round_trips():
    v = precondition_verdict((0.06, 0.02, 0.10), MID, MID, 16, n_problems=100)
    d = v.to_json()
    assert json.loads(json.dumps(d)) == d
    assert d["kind"] == "INCONCLUSIVE" and d["other"] is None and d["rule_id"] == "R6"
    assert d["gap"] == {"value": 0.06, "ci_low": 0.02, "ci_high": 0.10} and d["problems_needed"] == 1600
    other = precondition_verdict((0.01, 0.0, 0.02), (0.01, 0, 0.02), (0.02, 0, 0.04), 16).to_json()
    assert other["other"] == "SFT on curated external data"


def test_accepts_metrics_json_entries():
    def entry(v, lo, hi):
        return {"value": v, "ci_low": lo, "ci_high": hi, "n_problems": 10}

    v = precondition_verdict(entry(0.2, 0.15, 0.25), entry(*MID), entry(*HIGH_K), 16)
    assert v.kind is VerdictKind.GO_SSD


@pytest.mark.parametrize(
    "gap,pass1,k,match",
    [
        ((20.0, 15.0, 25.0), MID, 16, "not pp"),
        ((0.2, 0.25, 0.15), MID, 16, "ci_low"),
        ((0.2, 0.15, 0.25), MID, 1, "int >= 2"),
        ((0.2, 0.15), MID, 16, "value, ci_low, ci_high"),
        ((0.2, 0.15, 0.25), (0.4, None, 0.5), 16, "numbers"),
    ],
)
def test_bad_estimates_are_data_errors(gap, pass1, k, match):
    with pytest.raises(DataError, match=match):
        precondition_verdict(gap, pass1, HIGH_K, k)


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"gap_threshold": 5}, "gap_threshold"),
        ({"floor": 0.0}, "floor"),
        ({"floor": 0.5, "ceiling": 0.4}, "below"),
        ({"failure_cost": "extreme"}, "low | medium | high"),
    ],
)
def test_bad_rules_are_spec_errors(kw, match):
    with pytest.raises(SpecError, match=match):
        Rules(**kw)


def test_rules_coerce_failure_cost_and_serialize():
    r = Rules(failure_cost="high", verifier_available=True)
    assert r.failure_cost is FailureCost.HIGH
    assert r.to_json() == {
        "gap_threshold": 0.05,
        "floor": 0.05,
        "ceiling": 0.95,
        "verifier_available": True,
        "failure_cost": "high",
        "preference_data": False,
        "rl_gpu_hours": None,
        "near_ceiling": 0.8,
        "rl_min_passk": 0.2,
        "rl_min_gpu_hours": 8.0,
    }
