"""The 200-problem minimum: the embedded default meets it with a declared, seeded MBPP share held out of
the prompt pool; a smaller set is named by `check` and every verdict on it is stamped."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from selfdistill.antipatterns import below_minimum
from selfdistill.checks import check_spec
from selfdistill.decide.precondition import precondition_from_metrics
from selfdistill.decide.render import render_precondition
from selfdistill.heldout import load_heldout, mbpp_heldout_share
from selfdistill.metrics.summary import summarize
from selfdistill.pool import load_pool
from selfdistill.ssd.round import load_round_pool

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_is_complete_and_meets_the_minimum():
    report = check_spec(ROOT / "examples" / "quickstart.toml")
    assert len(report.heldout.problems) == 164 + 60 and not report.warnings
    prov = report.heldout.provenance
    assert prov["meets_min_problems"] is True and prov["min_problems"] == 200
    assert prov["mbpp_share"]["n"] == 60 and prov["mbpp_share"]["seed"] == 0
    assert "humaneval + 60 MBPP: 224 problems" in report.summary


def test_the_share_is_seeded_declared_and_keeps_near_duplicates_out_of_the_pool():
    a, rec = mbpp_heldout_share(60, 0)
    again, _ = mbpp_heldout_share(60, 0)
    other, _ = mbpp_heldout_share(60, 1)
    assert [p.task_id for p in a] == [p.task_id for p in again] != [p.task_id for p in other]
    assert rec["ids"] == [p.task_id for p in a] and len(rec["ids_sha256"]) == 64
    pool = load_pool("mbpp", heldout=a, reserved=rec["ids"])  # contamination checked: refuses any overlap
    assert pool.provenance["reserved_for_heldout"] == 60 and len(pool.problems) == 397 - 60
    assert pool.provenance["contamination"]["clean"] is True
    assert not {p.task_id for p in pool.problems} & set(rec["ids"])


def test_the_round_pool_excludes_the_share():
    report = check_spec(ROOT / "examples" / "quickstart.toml")
    spec = report.spec.model_copy(update={"pool": report.spec.pool.model_copy(update={"limit": None})})
    pool, heldout = load_round_pool(spec, report.heldout)
    assert len(heldout.problems) == 224 and len(pool.problems) == 337
    assert not {p.task_id for p in pool.problems} & set(report.heldout.reserved_pool_ids)


def test_without_the_reservation_the_pool_is_refused_as_contaminated():
    from selfdistill.errors import DataError

    held, _ = mbpp_heldout_share(60, 0)
    with pytest.raises(DataError, match="overlaps the held-out set"):
        load_pool("mbpp", heldout=held)


def test_a_small_set_is_named_as_an_anti_pattern(caplog):
    assert below_minimum(200) is None
    named = below_minimum(164)
    assert named.code == "heldout-below-200" and "164 problems, fewer than the 200" in named.reason
    with caplog.at_level(logging.WARNING):
        h = load_heldout("humaneval")
    assert h.provenance["meets_min_problems"] is False
    assert any("[heldout-below-200]" in w for w in h.warnings)
    assert "[heldout-below-200]" in caplog.text


def _metrics(n_problems: int) -> dict:
    rng, recs = np.random.default_rng(0), []
    for i in range(n_problems):  # a big gap everywhere: GO-SSD whatever the size
        c = int(rng.binomial(16, rng.uniform(0.1, 0.4)))
        recs += [{"task_id": f"t{i}", "status": "passed" if j < c else "failed"} for j in range(16)]
    return summarize(recs, [1, 4, 16], n_resamples=500)


@pytest.mark.parametrize(("n", "meets"), [(60, False), (200, True)])
def test_a_go_verdict_below_the_minimum_carries_the_stamp(n, meets):
    m = _metrics(n)
    report = precondition_from_metrics(m)
    d = report.to_json()
    assert report.overall.kind.value == "GO-SSD"
    assert (d["n_problems"], d["min_problems"], d["meets_min_problems"]) == (n, 200, meets)
    stamped = report.overall.justification.startswith("Below the 200-problem minimum")
    assert stamped is (not meets) and report.summary.startswith("Below the 200-problem minimum") is (not meets)
    md = render_precondition(m, report)
    lead = md.splitlines()[2]
    assert lead.startswith("> **Below the 200-problem minimum**" if not meets else f"> Held-out set: {n} problems")
    assert json.loads(json.dumps(d)) == d


def test_a_split_pool_that_takes_the_set_below_the_minimum_updates_the_flag():
    report = check_spec(ROOT / "examples" / "quickstart.toml")
    spec = report.spec.model_copy(update={"pool": report.spec.pool.model_copy(
        update={"source": "split:humaneval", "split_fraction": 0.5, "limit": None})})
    _, heldout = load_round_pool(spec, report.heldout)
    assert heldout.provenance["n_problems"] == len(heldout.problems) < 200
    assert heldout.provenance["meets_min_problems"] is False
