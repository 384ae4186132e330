"""Progress of long stages (views): timed lines when the output is not a terminal, with done/total, the
running figure, elapsed time and ETA; a heartbeat line even while nothing finishes."""

from __future__ import annotations

import time

from selfdistill import views


def test_progress_line_has_count_share_figure_elapsed_and_eta():
    line = views.progress_line("generate", 40, 160, "· 24.8 tok/s · pass 41.2% (35 scored)", 120.0, 30)
    assert line == "generate 40/160 (25%) · 24.8 tok/s · pass 41.2% (35 scored) · 2m00s elapsed · ETA 8m00s"
    # the ETA uses this invocation's rate only (30 done here in 120 s), not the 10 resumed from an earlier run
    assert views.progress_line("execute", 0, 16, "", 5.0, 0).endswith("ETA —")
    assert views.progress_line("execute", 16, 16, "", 3700.0, 16).endswith("1h01m elapsed · ETA done")


def test_not_a_terminal_prints_lines_and_a_heartbeat_while_nothing_finishes(capsys, monkeypatch):
    monkeypatch.setattr(views._Bar, "LINE_EVERY_S", 0.2)
    with views.EvalProgress() as progress:
        progress.start(total=4, done=1)
        time.sleep(0.7)  # no sample finishes: heartbeats
        progress.generated({"completion_tokens": 30})
        progress.scored({"status": "passed"})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("generate 1/4 (25%) · 0.0 tok/s · pass — · infra 0 · 0s elapsed")
    heartbeats = [ln for ln in lines[1:-1] if ln.startswith("generate 1/4")]
    assert len(heartbeats) >= 2
    assert lines[-1].startswith("generate 2/4 (50%)") and "pass 100.0% (1 scored)" in lines[-1]
    assert "ETA" in lines[-1] and "ETA —" not in lines[-1]


def test_execution_progress_lines_carry_the_pass_rate(capsys):
    with views.ExecutionProgress() as progress:
        progress.start(total=2, done=0)
        progress.advance({"status": "passed"})
        progress.advance({"status": "failed"})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("execute 0/2 (0%)")
    assert out[-1].startswith("execute 2/2 (100%) · pass 50.0% · infra 0") and out[-1].endswith("ETA done")


def test_heartbeat_speaks_through_a_stage_without_a_bar_and_stays_quiet_beside_one(capsys, monkeypatch):
    monkeypatch.setattr(views.Heartbeat, "LINE_EVERY_S", 0.2)
    monkeypatch.setattr(views._Bar, "LINE_EVERY_S", 60.0)
    with views.Heartbeat() as heartbeat:
        heartbeat.say("training the minimal SSD arm")
        time.sleep(0.7)  # no bar: the heartbeat speaks
        quiet_from = len(capsys.readouterr().out.splitlines())
        with views.EvalProgress() as progress:
            progress.start(total=2, done=0)
            time.sleep(0.6)  # a bar is open: only the bar's own lines
        during = capsys.readouterr().out.splitlines()
    assert quiet_from >= 3  # the banner and at least two heartbeats
    assert not [ln for ln in during if ln.startswith("... still")]
    assert during[0].startswith("generate 0/2")


def test_heartbeat_line_names_the_stage_and_its_time(capsys, monkeypatch):
    monkeypatch.setattr(views.Heartbeat, "LINE_EVERY_S", 0.1)
    with views.Heartbeat() as heartbeat:
        heartbeat.say("battery: the anti-collapse probes")
        time.sleep(0.35)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "battery: the anti-collapse probes"
    assert lines[1].startswith("... still: battery: the anti-collapse probes · 0s in this stage · 0s in all")
