"""`selfdistill run` end to end on a tiny model, in a subprocess: every stage, then a report with all five
deliverables; a GO-OTHER verdict stops after the verdict and still reports; a second run redoes nothing."""

import json

import pytest

pytest.importorskip("trl")

from tests.generate.tiny_models import write_tiny_hf  # noqa: E402
from tests.ssd.round_fixtures import cli, favour_newlines, make_spec  # noqa: E402

HEADINGS = ["A. Precondition Verdict", "B. SSD Pipeline Spec", "C. Verifier-Aware Arm Spec", "D. Round-2 Gate",
            "E. Promotion Plan"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return favour_newlines(write_tiny_hf(tmp_path_factory.mktemp("tiny-run") / "model"))


@pytest.mark.slow
@pytest.mark.timeout(1200)  # minutes on a loaded 2-core machine; ~1 min alone
def test_run_stops_after_go_other_then_force_runs_every_stage_to_the_report(tiny, tmp_path):
    spec = make_spec(tmp_path, tiny, extra="[battery]\nprobe_samples = 1\n")
    stopped = cli("run", str(spec), "--run-dir", "run", cwd=tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped after the precondition verdict: GO-OTHER" in stopped.stdout
    run = tmp_path / "run"
    md = (run / "report.md").read_text()
    assert md.index(HEADINGS[0]) < md.index(HEADINGS[1])  # the verdict leads
    assert not (run / "round1" / "samples").exists()

    done = cli("run", str(spec), "--run-dir", "run", "--force", cwd=tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "report: run/report.html" in done.stdout
    battery = json.loads((run / "round1" / "battery.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    assert battery["thresholds_sha256"] == manifest["battery"]["thresholds_sha256"]
    assert set(battery["arms"]) == {"ssd", "verifier"}
    assert all(len(p["probes"]) >= 10 for p in battery["arms"].values())
    probes = (run / "round1" / "probes" / "base" / "samples.jsonl").read_text().splitlines()
    assert len(probes) == 24  # the shipped probe set, one sample each
    gate = json.loads((run / "round1" / "gate.json").read_text())
    assert gate["decision"] == "STOP" and any("whole-set" in r for r in gate["reasons"])  # forced: never round 2
    promotion = json.loads((run / "round1" / "promotion.json").read_text())
    assert promotion["blocked"] is True
    md = (run / "report.md").read_text()
    positions = [md.index(h) for h in HEADINGS]
    assert positions == sorted(positions)
    html = (run / "report.html").read_text()
    assert all(h in html for h in HEADINGS) and "data:image/png;base64," in html

    ledger_before = (run / "ledger.jsonl").read_text()
    again = cli("run", str(spec), "--run-dir", "run", "--force", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (run / "ledger.jsonl").read_text() == ledger_before  # finished stages are skipped


@pytest.mark.slow
@pytest.mark.timeout(1200)  # minutes on a loaded 2-core machine; ~1 min alone
def test_probe_refuses_thresholds_changed_after_sampling_started(tiny, tmp_path):
    spec = make_spec(tmp_path, tiny, extra="[battery]\nprobe_samples = 1\n")
    assert cli("ssd", str(spec), "--run-dir", "run", "--force", cwd=tmp_path).returncode == 0
    spec.write_text(spec.read_text().replace("probe_samples = 1", "probe_samples = 1\nlength_median_drift_max = 0.9"))
    refused = cli("probe", str(spec), "--run-dir", "run", cwd=tmp_path)
    assert refused.returncode == 2
    assert "changed after training started (length_median_drift_max)" in refused.stderr
    assert "Traceback" not in refused.stderr
