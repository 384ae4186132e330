"""Deliverable E shows the ship rule: SSD against each comparator (declared ones labelled), and the better
move when a comparator dominates."""

from selfdistill.report.gate import ship_rule


def dominance(comparator, source, dominates, value, lo, hi):
    return {"arm": "ssd", "comparator": comparator, "comparator_source": source, "dominates": dominates,
            "why": "higher pass@1 (settled) at no more cost",
            "pass_at_1_diff": {"value": value, "ci_low": lo, "ci_high": hi, "how": "paired delta, 95% CI"},
            "cost": {"arm": 1.0, "comparator": 0.5, "unit": "device-hours, same run"}}


def test_the_table_labels_declared_comparators_and_names_the_better_move():
    ship = {"arm": "ssd", "versus": [dominance("rejection-sampling-sft", "measured", "rejection-sampling-sft",
                                               -0.04, -0.07, -0.01),
                                     dominance("dpo", "declared", "neither", 0.02, None, None)],
            "dominates": [], "dominated_by": ["rejection-sampling-sft"],
            "better_move": {"comparator": "rejection-sampling-sft", "source": "measured",
                            "pass_at_1_diff": {"value": 0.04, "ci_low": 0.01, "ci_high": 0.07},
                            "cost": {"arm": 1.0, "comparator": 0.5, "unit": "device-hours, same run"}}}
    text = "\n".join(ship_rule(ship))
    assert "rejection-sampling-sft (measured)" in text and "dpo (declared)" in text
    assert "-4.0 [-7.0, -1.0]" in text and "+2.0 (no paired CI)" in text
    assert "**The better move is rejection-sampling-sft** (measured): +4.0 pp" in text


def test_nothing_to_compare_shows_nothing():
    assert ship_rule(None) == [] and ship_rule({"arm": "ssd", "versus": []}) == []
