"""Problem-level bootstrap: coverage, pairing, determinism, degenerate inputs."""

import numpy as np
import pytest

from selfdistill.errors import DataError
from selfdistill.metrics import bootstrap
from selfdistill.metrics.bootstrap import bootstrap_gap, bootstrap_mean, paired_diff, resample_means


def _width(iv) -> float:
    return iv.ci_high - iv.ci_low


def test_coverage_is_about_95_percent():
    # 200 synthetic benchmarks of 80 problems; per-problem true rate p ~ Beta(2, 3), n = 10 samples.
    # The estimand is E[c / n] = E[p] = 0.4. Percentile intervals under-cover slightly at small P.
    rng = np.random.default_rng(2024)
    truth, hits = 2 / 5, 0
    for _ in range(200):
        p = rng.beta(2, 3, size=80)
        c = rng.binomial(10, p)
        iv = bootstrap_mean(c / 10, n_resamples=1000, seed=rng)
        hits += iv.ci_low <= truth <= iv.ci_high
    assert 0.90 <= hits / 200 <= 0.99


def test_point_estimate_is_mean_over_problems():
    x = np.array([0.0, 0.5, 1.0, 0.25])
    iv = bootstrap_mean(x, n_resamples=500)
    assert iv.value == pytest.approx(x.mean())
    assert iv.ci_low <= iv.value <= iv.ci_high and iv.n_problems == 4


def test_default_is_10000_resamples_and_deterministic_under_seed():
    x = np.random.default_rng(0).random(50)
    assert resample_means(x).shape == (10_000,)
    assert bootstrap_mean(x, seed=3) == bootstrap_mean(x, seed=3)
    assert bootstrap_mean(x, seed=3) != bootstrap_mean(x, seed=4)


def test_blocks_of_resamples_cover_every_row(monkeypatch):
    monkeypatch.setattr(bootstrap, "_BLOCK_CELLS", 7)  # 2 rows per block for 3 problems
    means = resample_means([0.0, 1.0, 2.0], n_resamples=5, seed=1)
    assert means.shape == (5,) and np.all((means >= 0) & (means <= 2))
    assert len(set(np.round(means * 3).astype(int)) - set(range(7))) == 0  # means of 3 draws from {0,1,2}


def test_paired_diff_is_narrower_than_naive_when_arms_are_correlated():
    rng = np.random.default_rng(11)
    base = rng.beta(1, 1, size=120)  # problems differ a lot ...
    treat = np.clip(base + 0.03 + rng.normal(0, 0.02, size=120), 0, 1)  # ... arms move together
    ids = [f"t{i}" for i in range(120)]
    paired = paired_diff(dict(zip(ids, base, strict=True)), dict(zip(ids, treat, strict=True)), n_resamples=4000,
                         seed=1).diff
    naive = resample_means(treat, 4000, seed=2) - resample_means(base, 4000, seed=3)
    naive_width = np.subtract(*np.quantile(naive, [0.975, 0.025]))
    assert _width(paired) < naive_width / 3
    assert paired.ci_low > 0  # the paired design sees the +3 pp shift; the naive one would not
    assert np.quantile(naive, 0.025) < 0


def test_paired_diff_intersects_by_task_id_and_reports_drops():
    base = {"a": 0.1, "b": 0.2, "c": 0.3, "x": 0.9}
    treat = {"c": 0.5, "b": 0.4, "a": 0.1, "y": 0.0, "z": 1.0}
    out = paired_diff(base, treat, n_resamples=200)
    assert out.diff.n_problems == 3
    assert out.diff.value == pytest.approx((0.0 + 0.2 + 0.2) / 3)
    assert out.dropped_baseline_only == ("x",) and out.dropped_treatment_only == ("y", "z")
    assert out.n_dropped == 3 and out.to_json()["n_dropped"] == 3


def test_paired_diff_with_nothing_shared_is_a_data_error():
    with pytest.raises(DataError, match="share no task ids"):
        paired_diff({"a": 1.0}, {"b": 1.0})


def test_gap_uses_one_resample_for_both_arms():
    rng = np.random.default_rng(5)
    pass1 = rng.random(60)
    passk = np.clip(pass1 + 0.1 + rng.normal(0, 0.03, 60), 0, 1)
    gap = bootstrap_gap(pass1, passk, n_resamples=3000, seed=9)
    assert gap == bootstrap_mean(passk - pass1, n_resamples=3000, seed=9)
    a, b = bootstrap_mean(pass1, n_resamples=3000, seed=9), bootstrap_mean(passk, n_resamples=3000, seed=10)
    assert _width(gap) < min(_width(a), _width(b))  # a CI for the gap itself, not two CIs subtracted
    assert gap.value == pytest.approx(passk.mean() - pass1.mean())


def test_gap_needs_aligned_arrays():
    with pytest.raises(DataError, match="same problems"):
        bootstrap_gap([0.1, 0.2], [0.3])


def test_one_problem_gives_a_zero_width_interval():
    iv = bootstrap_mean([0.4], n_resamples=100)
    assert (iv.value, iv.ci_low, iv.ci_high, iv.n_problems) == (0.4, 0.4, 0.4, 1)


def test_all_equal_scores_give_a_zero_width_interval():
    iv = bootstrap_mean([0.1] * 37, n_resamples=100)
    assert iv.ci_low == iv.value == iv.ci_high


@pytest.mark.parametrize(
    "x,kw,match",
    [
        ([], {}, "empty"),
        ([0.1, np.nan], {}, "non-finite"),
        ([[0.1]], {}, "1-D"),
        ([0.1], {"n_resamples": 0}, "n_resamples"),
        ([0.1], {"confidence": 95}, "confidence"),
    ],
)
def test_bad_input_is_a_data_error(x, kw, match):
    with pytest.raises(DataError, match=match):
        bootstrap_mean(x, **kw)


def test_interval_to_json_is_plain():
    d = bootstrap_mean(np.array([0.2, 0.4]), n_resamples=50).to_json()
    assert set(d) == {"value", "ci_low", "ci_high", "n_problems"}
    assert all(type(v) in (float, int) for v in d.values())
