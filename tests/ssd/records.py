"""Inputs for the gate, battery-status and promotion tests: intervals, a green battery, gate inputs that
all hold, and a round summary with the given deltas."""

from pathlib import Path

from selfdistill.ssd.gate import GateInputs

QUICKSTART = Path(__file__).resolve().parents[2] / "selfdistill" / "data" / "quickstart.toml"


def gate_iv(value, lo, hi, n=100):
    return {"value": value, "ci_low": lo, "ci_high": hi, "n_problems": n}


GOOD_DELTA = {"overall": gate_iv(0.10, 0.06, 0.14), "baseline_pass_at_1": gate_iv(0.40, 0.33, 0.47),
              "treatment_pass_at_1": gate_iv(0.50, 0.48, 0.57)}
GREEN = {"green": True, "safety_skipped": False, "probes": [{"name": "self-bleu", "status": "pass"}]}


def inputs(**kw) -> GateInputs:
    base = dict(arm="ssd", min_lift_pp=5.0, delta=GOOD_DELTA, battery=GREEN, comparable=True, forced=False,
                round1_pool_hashes={"a", "b"}, round2_pool_hashes={"c", "d"}, round1_heldout_hashes={"h1", "h2"},
                round2_heldout_hashes={"f1", "f2"})
    return GateInputs(**(base | kw))


def iv(value, lo, hi, n=164):
    return {"value": value, "ci_low": lo, "ci_high": hi, "n_problems": n}


def summary(ssd_delta, verifier_delta=None, **kw):
    arms = ["ssd"] + (["verifier"] if verifier_delta else [])
    deltas = {"ssd_vs_base": {"overall": ssd_delta, "baseline_pass_at_1": iv(0.4, 0.35, 0.45),
                              "treatment_pass_at_1": iv(0.4 + ssd_delta["value"], 0.4, 0.6), "slices": {}}}
    if verifier_delta:
        deltas["verifier_vs_base"] = {"overall": verifier_delta, "baseline_pass_at_1": iv(0.4, 0.35, 0.45),
                                      "treatment_pass_at_1": iv(0.4 + verifier_delta["value"], 0.4, 0.6), "slices": {}}
    return {"arms": arms, "arm_titles": {"ssd": "minimal", "verifier": "verifier"}, "deltas": deltas, "t_eval": 1.1,
            "export": {a: {"model": "m.gguf", "options": {}, "detail": {"out_sha256": f"{a}abc"}} for a in arms},
            "forced": False, "comparable": True, "limit": None} | kw
