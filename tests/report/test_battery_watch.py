"""The report's battery status carries each change's CI and the watches (point beyond, CI not)."""

from selfdistill.report.fmt import battery_status, probe_change

WATCH = {"name": "mode-collapse", "status": "watch", "change": -0.031, "ci_low": -0.07, "ci_high": 0.004,
         "change_kind": "absolute", "threshold": 0.0}
ALERT = {"name": "length-median", "status": "alert", "change": 0.31, "ci_low": 0.27, "ci_high": 0.351,
         "change_kind": "relative", "threshold": 0.25}


def test_a_change_shows_its_ci():
    assert probe_change(ALERT) == "+31.0% [+27.0, +35.1] (limit 25.0%)"
    assert probe_change(WATCH) == "-3.1 pp [-7.0, +0.4] (limit 0.0 pp)"


def test_green_with_a_watch_names_it_and_stays_green():
    entry = {"green": True, "n_alerts": 0, "probes": [{"status": "pass"}] * 2 + [WATCH]}
    assert battery_status({"arms": {"ssd": entry}}, "ssd") == (
        "battery green (2 probes pass; watch: mode-collapse -3.1 pp [-7.0, +0.4] (limit 0.0 pp))")


def test_an_alert_lists_the_watches_after_it():
    entry = {"green": False, "n_alerts": 1, "probes": [ALERT, WATCH]}
    assert battery_status({"arms": {"ssd": entry}}, "ssd") == (
        "battery ALERT, 1 alert: length-median +31.0% [+27.0, +35.1] (limit 25.0%); "
        "watch: mode-collapse -3.1 pp [-7.0, +0.4] (limit 0.0 pp)")
