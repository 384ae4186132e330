"""How the gate and the promotion plan read the battery: an ALERT (a probe's whole CI beyond its tolerance)
blocks; a WATCH (only the point estimate beyond) is shown and blocks nothing."""

from selfdistill.ssd.gate import evaluate_gate
from selfdistill.ssd.promotion import plan_promotion
from tests.ssd.records import GREEN, inputs, iv, summary

WATCH = {"green": True, "safety_skipped": False, "n_watch": 1,
         "probes": [{"name": "self-bleu", "status": "pass"}, {"name": "mode-collapse", "status": "watch"}]}
ALERT = {"green": False, "safety_skipped": False,
         "probes": [{"name": "mode-collapse", "status": "alert"}, {"name": "self-bleu", "status": "watch"}]}


def _battery_check(result):
    return next(c for c in result["checks"] if c["name"] == "battery")


def test_gate_enters_past_a_watch_and_names_it():
    result = evaluate_gate(inputs(battery=WATCH))
    check = _battery_check(result)
    assert result["decision"] == "ENTER" and check["passed"] and check["watch"] == ["mode-collapse"]
    assert "watch" in check["detail"] and "mode-collapse" in check["detail"] and "does not block" in check["detail"]
    assert _battery_check(evaluate_gate(inputs(battery=GREEN)))["watch"] == []


def test_gate_stops_on_an_alert_and_still_shows_the_watch():
    check = _battery_check(evaluate_gate(inputs(battery=ALERT)))
    assert not check["passed"] and "alerts: mode-collapse" in check["detail"] and check["watch"] == ["self-bleu"]


def test_promotion_is_not_blocked_by_a_watch_but_lists_it(spec):  # noqa: F811
    battery = {"arms": {"ssd": WATCH}}
    plan = plan_promotion(spec, summary(iv(0.05, 0.02, 0.08)), battery, None)
    assert plan["blocked"] is False and plan["candidate"]["battery_watch"] == ["mode-collapse"]
    plan = plan_promotion(spec, summary(iv(0.05, 0.02, 0.08)), {"arms": {"ssd": ALERT}}, None)
    assert plan["blocked"] is True and any("mode-collapse" in r for r in plan["blocked_reasons"])
