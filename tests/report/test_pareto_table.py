"""B.6, the Pareto table: every arm of the round (base, SSD arms, a measured comparator) and the declared
comparator (labelled), with pass@1 and its CI, device-hours, GPU-hours, pass@1 per GPU-hour and who dominates
whom; the same relations as the promotion plan's ship rule (ssd/pareto.py), read from round.json."""

import json

import pytest

from selfdistill.report import render_report
from selfdistill.rundir import write_json_atomic
from selfdistill.spec import Spec
from selfdistill.ssd import ledger
from selfdistill.ssd.arms import ARMS
from selfdistill.ssd.promotion import plan_promotion
from tests.report.fixtures import write_run
from tests.ssd.records import iv

RS = "rejection-sampling-sft"
BASE = iv(0.40, 0.35, 0.45)
# arm: pass@1, its delta vs base, the hours that produced it (device = GPU on a GPU run)
ARM_POINTS = {"ssd": (iv(0.50, 0.45, 0.55), iv(0.10, 0.06, 0.14), 2.0),
              "verifier": (iv(0.52, 0.47, 0.57), iv(0.12, 0.08, 0.16), 2.5),
              RS: (iv(0.48, 0.43, 0.53), iv(0.08, 0.04, 0.12), 4.0)}
PAIRED = {"verifier_vs_ssd": iv(0.02, -0.01, 0.05),  # tied within the CI
          f"{RS}_vs_ssd": iv(-0.02, -0.04, -0.005)}  # SSD settled higher, and cheaper: SSD dominates it
DECLARED = {"kind": "dpo", "pass_at_1": 0.42, "gpu_hours": 6.0, "measure": [RS]}


def with_comparators(run, device: str):
    """write_run's round with these numbers, a measured rejection-sampling-sft arm and a declared DPO."""
    path = run / "round1" / "round.json"
    r = json.loads(path.read_text())
    r["arms"] = ["ssd", "verifier", RS]
    r["arm_titles"] = {a: ARMS[a].title for a in r["arms"]}
    r["arm_records"] = {a: ARMS[a].record() for a in r["arms"]}
    for a, (p1, d, hours) in ARM_POINTS.items():
        r["deltas"][f"{a}_vs_base"] = {"overall": d, "baseline_pass_at_1": BASE, "treatment_pass_at_1": p1,
                                       "slices": {}, "title": f"{a} vs base"}
        h = {"wall_s": hours * 3600, "device_hours": hours, "gpu_hours": hours if device == "cuda" else 0.0}
        r["costs"]["arms"][a] = {"hours_to_produce": h, "accuracy_per_hour": ledger.accuracy_per_hour(p1["value"], h)}
        r["training"].setdefault(a, dict(r["training"]["ssd"]))
        r["export"].setdefault(a, dict(r["export"]["ssd"]))
    for key, d in PAIRED.items():
        r["deltas"][key] = {"overall": d, "slices": {}, "title": key,
                            "baseline_pass_at_1": ARM_POINTS["ssd"][0],
                            "treatment_pass_at_1": ARM_POINTS[key.split("_vs_")[0]][0]}
    for row in r["sweep"]:
        row["arms"]["base"]["pass@1"] = BASE
        for a, (p1, _, _) in ARM_POINTS.items():
            row["arms"][a] = {"name": f"{a}-T{row['t_eval']:g}", "pass@1": p1, "metrics": {"pass@1": p1}}
    write_json_atomic(path, r)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["spec"]["comparator"] = dict(manifest["spec"]["comparator"], **DECLARED)
    write_json_atomic(run / "manifest.json", manifest)
    plan = plan_promotion(Spec.model_validate(manifest["spec"]), r, None, None)
    write_json_atomic(run / "round1" / "promotion.json", plan)
    return plan


def b6_rows(md: str) -> dict[str, list[str]]:
    b6 = md.split("#### Pareto: every arm of the round")[1].split("## C.")[0]
    lines = [x for x in b6.splitlines() if x.startswith("| ")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == len(head) and not cells[0].startswith("-"):
            rows[cells[0]] = cells
        if " vs " in cells[0]:
            break
    return rows


@pytest.fixture(scope="module")
def gpu_round(tmp_path_factory):
    run = write_run(tmp_path_factory.mktemp("gpu") / "run", device="cuda", battery=False, gate=False)
    plan = with_comparators(run, "cuda")
    md, html = render_report(run)
    return md.read_text(), html.read_text(), plan


def test_b6_lists_every_arm_and_the_declared_comparator_with_ci_costs_and_rate(gpu_round):
    md, html, _ = gpu_round
    rows = b6_rows(md)
    assert list(rows) == ["base", "ssd", "verifier", RS, "dpo"]  # table order: base, SSD arms, comparators
    assert rows["base"][1] == "base" and rows["ssd"][1] == "measured, SSD" and rows[RS][1] == "measured, comparator"
    assert rows["dpo"][1] == "declared (measured elsewhere)" and rows["dpo"][2] == "42.0 (declared, no CI)"
    assert rows["ssd"][2] == "50.0 [45.0, 55.0]" and rows["base"][2] == "40.0 [35.0, 45.0]"
    assert rows[RS][3:6] == ["4.000", "4.000", "12.0"]  # device-hours, GPU-hours, pass@1 points per GPU-hour
    assert rows["verifier"][5] == "20.8" and rows["dpo"][4] == "6.000 (declared)" and rows["dpo"][5] == "7.0 (declared)"
    assert "Pareto: every arm of the round" in html and "dpo" in html


def test_b6_dominance_follows_the_numbers_and_matches_the_ship_rule(gpu_round):
    md, _, plan = gpu_round
    rows = b6_rows(md)
    dominates = {a: set(filter(None, rows[a][6].replace("—", "").split(", "))) for a in rows}
    dominated = {a: set(filter(None, rows[a][7].replace("—", "").split(", "))) for a in rows}
    assert dominates == {"base": set(), "ssd": {RS, "dpo"}, "verifier": {"dpo"}, RS: {"dpo"}, "dpo": set()}
    assert dominated == {"base": set(), "ssd": set(), "verifier": set(), RS: {"ssd"}, "dpo": {"ssd", "verifier", RS}}
    ship = plan["pareto"]  # promotion.json's ship rule (its SSD arm: the candidate) reads the same relation
    assert set(ship["dominates"]) == dominates[ship["arm"]] and set(ship["dominated_by"]) == dominated[ship["arm"]]
    assert f"| ssd vs {RS} | +2.0 [+0.5, +4.0] (paired delta, 95% CI)" in md  # the paired delta, mirrored
    assert "| base vs dpo (declared) |" in md and "pass@1 tied within the 95% CI" in md
    assert "| ssd vs verifier |" in md and "not like for like" not in md.split("#### Pareto")[1].split("## C.")[0]


def test_b6_on_cpu_says_not_like_for_like_and_gives_device_hour_rates(tmp_path):
    run = write_run(tmp_path / "run", device="cpu", battery=False, gate=False)
    with_comparators(run, "cpu")
    md = render_report(run)[0].read_text()
    rows = b6_rows(md)
    assert rows["ssd"][4] == "0.000" and rows["ssd"][5] == "— (no GPU-hours; 25.0 per device-hour)"
    b6 = md.split("#### Pareto")[1].split("## C.")[0]
    assert "device-hours on CPU against declared GPU-hours: not like for like" in b6
    assert "its cost is **not like for like**" in b6
