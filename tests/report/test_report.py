"""The report from a run directory: order, evidence beside every delta, absent and damaged inputs."""

import json
import re
import shutil

import pytest

from selfdistill.errors import DataError
from selfdistill.report import plots, render_report
from selfdistill.report.header import HEADINGS
from tests.report.fixtures import write_run

DELTA_ROW = re.compile(r"^\| \*\*(\w+_vs_\w+)\*\*")
needs_plots = pytest.mark.skipif(not plots.available(), reason="matplotlib (the report extra) is not installed")
CI = r"[+-]\d+\.\d pp \[[+-]\d+\.\d, [+-]\d+\.\d\] \(n=\d+\)"


def _copy(src, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(src, dst)
    return dst


def _render(run):
    md, html = render_report(run)
    return md.read_text(), html.read_text()


@pytest.fixture(scope="module")
def full(full_run):
    return _render(full_run)


def test_writes_both_files_and_leads_with_the_verdict_then_b_to_e(full_run, full):
    md, _ = full
    assert (full_run / "report.md").is_file() and (full_run / "report.html").is_file()
    sections = [line for line in md.splitlines() if line.startswith("## ")]
    assert sections == [f"## {h}" for h in HEADINGS.values()]
    assert "Precondition verdict: GO-VERIFIER-AWARE-SSD (R4)" in md.split("## B.")[0]
    assert "Warning: forced" not in md and "Warning: not comparable" not in md  # neither forced nor --limit
    assert "**Warning: below the 200-problem minimum.** The precondition verdict rests on 36" in md.split("## A.")[0]


def test_every_delta_row_has_its_ci_slices_and_battery_status(full):
    md, _ = full
    rows = {DELTA_ROW.match(line).group(1): line for line in md.splitlines() if DELTA_ROW.match(line)}
    assert set(rows) == {"ssd_vs_base", "ssd_vs_best_base_decode", "verifier_vs_base", "verifier_vs_ssd"}
    for row in rows.values():
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert [re.fullmatch(CI, c) is not None for c in (cells[2], *cells[4:7])] == [True] * 4, row
        assert cells[-1].startswith("battery ")
    assert rows["ssd_vs_base"].endswith("battery green (7 probes pass, 1 skipped) |")
    assert "battery ALERT, 1 alert: length-median +31.4% (limit 25.0%)" in rows["verifier_vs_base"]
    assert ", the hash stamped in manifest.json when sampling started)" in md


def test_gate_and_promotion_carry_the_delta_with_slices_and_battery(full):
    md, _ = full
    gate = md.split("## D.")[1].split("## E.")[0]
    promo = md.split("## E.")[1]
    for part, arm, battery in ((gate, "ssd", "battery green"), (promo, "verifier", "battery ALERT, 1 alert")):
        line = next(x for x in part.splitlines() if f"{arm}_vs_base Δ pass@1" in x)
        assert re.search(CI, line) and "by slice: easy" in line and "hard" in line and battery in line
    assert "**Candidate**: arm **verifier**" in promo and "- the battery is not green: length-median" in promo
    assert re.search(r"\*\*Decision: (ENTER|STOP)\*\*: round 2 is seeded by the ssd arm", gate)
    assert "| fresh-pool | pass | 0 of 40 round-2 prompts also in round 1's pool" in gate
    assert "### The verifier arm's own gate" in gate and "| battery | **FAIL** | alerts: length-median |" in gate
    assert "| **traffic share** | 1.0% |" in promo and "| **flag** | selfdistill.model_variant |" in promo
    assert "`checkpoint_id`" in promo and "checkpoint `sha256:" in promo
    rows = [x for x in promo.splitlines() if x.startswith(("| **ssd**", "| **verifier**"))]
    assert len(rows) == 2 and all(len(re.findall(CI, x)) == 4 and "battery " in x for x in rows)
    caption = promo.split(rows[-1])[1].strip().splitlines()[0]
    assert caption.startswith("Slices: ") and "source not recorded" not in caption, caption


@needs_plots
def test_plots_cost_table_and_pareto(full):
    md, _ = full
    for name in ("passk", "slice_deltas", "lengths", "teff"):
        assert f"](report-plots/{name}.png)" in md
    assert "| probes | 3 | 12.0 | 0.200 | 0.200 | cuda × 1 |" in md
    assert "| **total** | 18 | 402.7 | 6.711 | 6.711 |  |" in md
    assert "| ssd | 46.5 [36.8, 54.2] | 102.0 | 1.700 | 1.700 | 27.4 per GPU-hour |" in md
    assert ("| rejection-sampling-sft | declared (measured elsewhere) | 42.0 (declared, no CI) | — | "
            "6.000 (declared) | 7.0 (declared) |") in md
    assert "| ssd | measured, SSD | 46.5 [36.8, 54.2] | 1.700 | 1.700 | 27.4 | — | — |" in md
    assert ("| ssd vs rejection-sampling-sft (declared) | +4.5 (the arm's 95% CI against the other's point) | "
            "1.7 vs 6 GPU-hours | neither | pass@1 tied within the 95% CI |") in md


@needs_plots
def test_html_is_self_contained(full):
    _, html = full
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)""", html)
    assert refs and all(r.startswith(("data:image/png;base64,", "#")) for r in refs)
    assert html.count('<img src="data:image/png;base64,') == 4
    assert "<style>" in html and "<script" not in html and "<link" not in html and "@import" not in html
    assert "url(" not in html.split("</style>")[0]
    for h in HEADINGS.values():
        assert f">{h}</h2>" in html


@needs_plots
def test_precondition_only_go_other_says_why_b_to_e_did_not_run(pre_only):
    md, html = _render(pre_only)
    head, rest = md.split("## B.")
    assert "GO-OTHER: verifier-based rejection sampling (R5c)" in head  # the pool has tests, no RL budget
    assert "](report-plots/passk.png)" in head and "](report-plots/lengths.png)" in head
    for letter in "BCDE":
        part = ("## B." + rest).split(f"## {letter}.")[1].split("\n## ")[0]
        assert "> **Not run.** Round 1 has no results: the precondition verdict is GO-OTHER" in part, letter
        assert "only with `--force`" in part
    assert "### Cost so far" in md and "| precondition | 1 | 25.0 | 0.417 | 0.000 | cpu × 1 |" in md
    assert html.count('class="absent"') == 4 and html.count("<img") == 2


def test_forced_past_go_other_on_a_limit_subset_warns_at_the_very_top(tmp_path):
    run = write_run(tmp_path / "run", forced=True, limit=20)
    verdict = json.loads((run / "base/verdict.json").read_text())
    verdict["overall"] |= {"kind": "GO-OTHER", "other": "SFT on external data or retrieval", "rule_id": "R5"}
    (run / "base/verdict.json").write_text(json.dumps(verdict))
    (run / "base/verdict.md").unlink()  # section A then renders from verdict.json
    md, html = _render(run)
    top = md.split("## A.")[0]
    assert "**Warning: forced past a GO-OTHER precondition verdict.**" in top
    assert "GO-OTHER: SFT on external data or retrieval (R5)" in top
    assert "**Warning: not comparable.** Evaluated on a `--limit 20` subset of 20 problems" in top
    assert "base/verdict.md is missing" in md.split("## B.")[0]
    body = html.split("<main>")[1]
    assert body.index('<blockquote class="warning">') < body.index("<h2")


def test_absent_optional_files_are_named_not_fatal(tmp_path):
    run = write_run(tmp_path / "run", battery=False, gate=False, promotion=False, comparator=False,
                    ledger_file=False, verifier=False)
    md, _ = _render(run)
    assert "round1/battery.json does not exist" in md and md.count("| battery not run |") == 2
    assert "round1/gate.json does not exist" in md and "round1/promotion.json does not exist" in md
    assert "From round1/round.json;" in md  # the cost table falls back to the round's totals
    assert "No declared comparator: the spec gives no `comparator.pass_at_1`" in md
    c = md.split("## C.")[1].split("## D.")[0]
    assert "> **Omitted.**" in c and "GO-VERIFIER-AWARE-SSD" in c and "the verdict is GO-SSD (R3)" in c


def test_cpu_run_reports_accuracy_per_device_hour(tmp_path):
    md, _ = _render(write_run(tmp_path / "run", device="cpu", verifier=False))
    assert "This run used no GPU (CPU only)" in md
    assert "per device-hour (CPU: no GPU-hours)" in md and "not like for like" in md


@pytest.mark.parametrize(
    ("path", "content", "match"),
    [("round1/gate.json", "{", r"gate file .*round1/gate\.json is not valid JSON"),
     ("round1/round.json", '{"arms": []}', r"round1/round\.json lacks t_eval, sweep, deltas, sampling, costs"),
     ("ssd-T1.1/metrics.json", "[1, 2]", r"ssd-T1\.1/metrics\.json holds a JSON list"),
     ("ledger.jsonl", '{"stage": "sampling"}\n', r"ledger\.jsonl:1 lacks arm|ledger\.jsonl:1 lacks wall_s"),
     ("base-T1.1/samples.jsonl", '{"completion_tokens": "many"}\n',
      r"base-T1\.1/samples\.jsonl:1 has completion_tokens")],
)
def test_a_damaged_file_is_a_data_error_naming_it(full_run, tmp_path, path, content, match):
    run = _copy(full_run, tmp_path)
    (run / path).write_text(content)
    with pytest.raises(DataError, match=match):
        render_report(run)


def test_a_shape_the_sections_cannot_read_names_the_file(full_run, tmp_path):
    run = _copy(full_run, tmp_path)
    gate = json.loads((run / "round1/gate.json").read_text())
    gate["checks"] = 3
    (run / "round1/gate.json").write_text(json.dumps(gate))
    with pytest.raises(DataError, match=r"round1/gate\.json .*does not have the shape"):
        render_report(run)


def test_without_matplotlib_the_report_says_where_each_plot_would_be(full_run, tmp_path, monkeypatch):
    monkeypatch.setattr(plots, "available", lambda: False)
    md, html = _render(_copy(full_run, tmp_path))
    assert md.count("*Plot omitted: matplotlib is not installed") == 4 and "<img" not in html


def test_same_run_renders_the_same_bytes(full_run, tmp_path):
    run = _copy(full_run, tmp_path)
    first = [p.read_bytes() for p in render_report(run)]
    assert [p.read_bytes() for p in render_report(run)] == first


@pytest.mark.parametrize(
    ("entry", "status"),
    [(None, "battery has no ssd arm"),
     ({"green": True, "n_alerts": 0, "probes": [{"status": "pass"}] * 3}, "battery green (3 probes pass)"),
     ({"green": False, "n_alerts": 0, "safety_skipped": True, "safety_skipped_reason": "battery.safety_probe = false",
       "probes": [{"status": "skipped"}] * 2},
      "battery not green: no probe measured, 2 skipped, safety probes skipped (battery.safety_probe = false)"),
     ({"green": False, "n_alerts": 1, "probes": [{"name": "comment-share", "status": "alert", "change": -0.12,
                                                  "change_kind": "absolute", "threshold": 0.1}]},
      "battery ALERT, 1 alert: comment-share -12.0 pp (limit 10.0 pp)")],
)
def test_battery_status_says_green_alert_or_why_nothing_was_measured(entry, status):
    from selfdistill.report.fmt import battery_status

    assert battery_status({"arms": {"ssd": entry} if entry else {}}, "ssd") == status
    assert battery_status(None, "ssd") == "battery not run"
