"""The round-2 gate, table-tested: ENTER only when every condition holds; otherwise STOP naming each failure."""

import pytest

from selfdistill.ssd.gate import GateInputs, evaluate_gate


def iv(value, lo, hi, n=100):
    return {"value": value, "ci_low": lo, "ci_high": hi, "n_problems": n}


GOOD_DELTA = {"overall": iv(0.10, 0.06, 0.14), "baseline_pass_at_1": iv(0.40, 0.33, 0.47),
              "treatment_pass_at_1": iv(0.50, 0.48, 0.57)}
GREEN = {"green": True, "safety_skipped": False, "probes": [{"name": "self-bleu", "status": "pass"}]}


def inputs(**kw) -> GateInputs:
    base = dict(arm="ssd", min_lift_pp=5.0, delta=GOOD_DELTA, battery=GREEN, comparable=True, forced=False,
                round1_pool_hashes={"a", "b"}, round2_pool_hashes={"c", "d"}, round1_heldout_hashes={"h1", "h2"},
                round2_heldout_hashes={"f1", "f2"})
    return GateInputs(**(base | kw))


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
