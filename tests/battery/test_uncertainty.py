"""The battery's CIs and its alert rule: the rule table, the resampling arithmetic, a doubling from a tiny
repetition base, and no-change simulations that bound each probe's false-alarm rate.

Each simulation draws two arms from ONE process (no change at all), many times, and counts how often the
probe's rule says ALERT, at the spec's default tolerance and at tolerance 0 (where ALERT means "the CI
excludes no change": the CI's own calibration). Sizes are kept small (seconds): 200 runs, 200 resamples.
"""

import numpy as np
import pytest

from selfdistill.battery import run as R
from selfdistill.battery import uncertainty as U
from selfdistill.battery.atk import at_k, flatten, mode_collapse
from selfdistill.battery.result import ChangeKind, Direction, ProbeStatus, judge
from selfdistill.spec import BatterySpec

T = BatterySpec()
RUNS, B = 200, 200
REL, ABS = ChangeKind.RELATIVE, ChangeKind.ABSOLUTE
RISE, DROP, EITHER = Direction.RISE, Direction.DROP, Direction.EITHER


@pytest.mark.parametrize(
    "change,low,high,direction,want",
    [
        (0.30, 0.15, 0.45, RISE, "alert"),  # whole CI above 0.10
        (0.30, 0.05, 0.45, RISE, "watch"),  # point above, CI reaches below
        (0.08, 0.02, 0.14, RISE, "pass"),
        (0.10, 0.10, 0.10, RISE, "pass"),  # equal to the threshold is not beyond it
        (-0.30, -0.45, -0.15, DROP, "alert"),
        (-0.30, -0.45, 0.01, DROP, "watch"),
        (0.30, 0.15, 0.45, DROP, "pass"),  # a rise never alerts a drop probe
        (-0.30, -0.45, -0.15, EITHER, "alert"),
        (0.30, 0.15, 0.45, EITHER, "alert"),
        (0.30, -0.20, 0.45, EITHER, "watch"),
        (0.30, None, None, RISE, "watch"),  # no CI: at most a watch
    ],
)
def test_judge_table(change, low, high, direction, want):
    assert judge(change, low, high, 0.10, direction) is ProbeStatus(want)


def test_weighted_quantile_is_np_percentile_on_the_expanded_sample():
    rng = np.random.default_rng(0)
    values = np.sort(rng.integers(1, 500, 37).astype(float))
    weights = rng.integers(0, 4, size=(20, 37))
    weights[:, 0] += 1  # no empty row
    for q in (0.5, 0.95, 0.1):
        got = U._weighted_quantile(values, weights, q)
        want = [np.percentile(np.repeat(values, w), 100 * q) for w in weights]
        assert got == pytest.approx(want)


def test_identical_arms_have_zero_change_and_a_zero_width_ci():
    num, den = np.array([1.0, 3, 0, 2]), np.array([4.0, 4, 4, 4])
    c = U.ratio_change(num, den, num, den, REL, 0.01, n_resamples=100, seed=0)
    assert (c.change, c.ci_low, c.ci_high, c.n_units) == (0.0, 0.0, 0.0, 4)
    assert U.ratio_change(num, np.zeros(4), num, den, REL, 0.01) is None  # nothing to measure in the base


def test_paired_ci_is_narrower_than_the_problem_spread():
    """Problems differ a lot (0.05..0.9) but the arm adds 0.02 to every one: the paired CI is tight."""
    base = np.linspace(0.05, 0.9, 50)
    c = U.mean_changes({"x": (base, base + 0.02)}, n_resamples=200, seed=0)["x"]
    assert c.change == pytest.approx(0.02) and c.ci_low == pytest.approx(0.02) and c.ci_high == pytest.approx(0.02)


def _texts(repeats: int, n_tasks: int = 12, per_task: int = 4, length: int = 250) -> list[str]:
    """Completions of `length` distinct tokens plus `repeats` repeated 4-grams each (seq-rep-4 ~ repeats/length)."""
    out = []
    for t in range(n_tasks):
        for i in range(per_task):
            toks = [f"v{t}_{i}_{j}" for j in range(length - 3 - 4 * repeats)]
            out.append(" ".join(toks + toks[:4] * repeats + ["end", "of", "it"]))
    return out


def test_repetition_doubling_from_a_tiny_base_is_caught():
    braw, araw = _texts(1), _texts(2)  # seq-rep-4 0.004 -> 0.008
    ctx = U.units_of([{"task_id": f"t{t}"} for t in range(12) for _ in range(4)], 200, 0)
    p = R.BY_NAME["repetition-rate"].read(R.repetition(braw, araw, ctx), T)
    assert p.base_value == pytest.approx(0.004, abs=2e-4) and p.value == pytest.approx(0.008, abs=3e-4)
    assert p.change == pytest.approx(1.0, abs=0.02) and p.status is ProbeStatus.ALERT  # every problem doubled
    assert p.extra["floor"] < 1e-4 and "one repeated n-gram" in p.extra["floor_why"]
    old = (p.value - p.base_value) / max(p.base_value, 0.05)  # the old floor of 0.05 called it +8 %: a pass
    assert old < T.repetition_rise_max


# ---------------------------------------------------------------- no-change simulations


def _rate(statuses) -> float:
    return float(np.mean([s is ProbeStatus.ALERT for s in statuses]))


def _sim_ratio(kind, direction, floor, threshold, draw, seed=0):
    """ALERT rate of a ratio-of-sums probe when both arms come from `draw(rng) -> (num, den)`."""
    rng = np.random.default_rng(seed)
    out = []
    for r in range(RUNS):
        shared = draw(rng, None)
        c = U.ratio_change(*draw(rng, shared), *draw(rng, shared), kind, floor, n_resamples=B, seed=r)
        out.append(judge(c.change, c.ci_low, c.ci_high, threshold, direction))
    return _rate(out)


def _completion_means(a, b, per=8, problems=100):
    """Per-completion values around a per-problem mean (problems differ); per-unit (sum, count)."""
    def draw(rng, shared):
        mu = rng.beta(a, b, problems) if shared is None else shared
        if shared is None:
            return mu
        x = rng.beta(mu[:, None] * 40 + 0.1, (1 - mu[:, None]) * 40 + 0.1, size=(problems, per))
        return x.sum(axis=1), np.full(problems, float(per))
    return draw


def _shares(a, b, per, problems):
    """Per-unit binomial hits of `per` trials around a per-unit probability."""
    def draw(rng, shared):
        q = rng.beta(a, b, problems) if shared is None else shared
        if shared is None:
            return q
        return rng.binomial(per, q).astype(float), np.full(problems, float(per))
    return draw


@pytest.mark.parametrize(
    "name,kind,direction,floor,threshold,draw",
    [
        ("repetition-rate", REL, RISE, 1e-5, T.repetition_rise_max, _completion_means(2, 30)),
        ("self-bleu", REL, RISE, R.BLEU_FLOOR, T.self_bleu_rise_max, _completion_means(6, 6, per=4)),
        ("distinct-3", REL, DROP, R.SHARE_FLOOR, T.distinct_drop_max, _shares(8, 2, 600, 100)),
        ("comment-share", ABS, EITHER, R.SHARE_FLOOR, T.comment_share_drift_max, _shares(2, 8, 60, 100)),
        ("docstring-share", ABS, EITHER, R.SHARE_FLOOR, T.docstring_drift_max, _shares(2, 3, 8, 100)),
        ("refusal-rate", ABS, EITHER, R.SHARE_FLOOR, T.refusal_drift_max, _shares(6, 1, 2, 12)),
        ("unsafe-rate", ABS, RISE, R.SHARE_FLOOR, T.unsafe_drift_max, _shares(1, 6, 2, 12)),
    ],
)
def test_no_change_false_alarms_ratio_probes(name, kind, direction, floor, threshold, draw):
    # measured over 400 runs at the defaults: 0 % for all but refusal 2.0 % and unsafe 0.5 % (24 completions:
    # there one completion moves the rate 4.2 pp, so a watch shows in 49 % and 23 % of no-change runs)
    assert _sim_ratio(kind, direction, floor, threshold, draw) <= 0.05
    # tolerance 0 (the CI's calibration; nominal 2.5 % one-sided, 5 % two-sided): measured 3-6 %, 7.5 % for
    # the 12-prompt refusal set (a percentile CI on 12 units under-covers a little)
    assert _sim_ratio(kind, direction, floor, 0.0, draw, seed=1) <= 0.05 * (2 if direction is EITHER else 1) + 0.02


def test_no_change_false_alarms_length_quantiles():
    rng = np.random.default_rng(2)
    problems, per = 60, 8
    units = np.repeat(np.arange(problems), per)
    rates = {q: [] for q in (0.5, 0.95)}
    for r in range(RUNS // 2):
        mu = rng.normal(5.0, 0.6, problems)  # problem-level log-length
        b, a = (np.exp(rng.normal(np.repeat(mu, per), 0.5)).round() for _ in range(2))
        for q, th in ((0.5, T.length_median_drift_max), (0.95, T.length_p95_drift_max)):
            c = U.quantile_change(b, units, a, units, problems, q, 1.0, n_resamples=B, seed=r)
            rates[q] += [judge(c.change, c.ci_low, c.ci_high, th, EITHER),
                         judge(c.change, c.ci_low, c.ci_high, 0.0, EITHER)]
    for q in rates:
        assert _rate(rates[q][0::2]) <= 0.05  # default tolerance: measured 0 %
        assert _rate(rates[q][1::2]) <= 0.12  # tolerance 0, both tails: nominal 5 %


def _metrics(c: np.ndarray, n: int, k: int) -> dict:
    from selfdistill.metrics.passk import pass_at_k

    ids = [f"t{i:03d}" for i in range(c.size)]
    iv = lambda v: {"value": float(v), "ci_low": None, "ci_high": None, "n_problems": c.size}  # noqa: E731
    return {"ks": [1, k],
            "metrics": {"pass@1": iv((c / n).mean()), f"pass@{k}": iv(pass_at_k(np.full(c.size, n), c, k).mean())},
            "per_problem": {t: {"n": n, "c": int(x)} for t, x in zip(ids, c, strict=True)}}


def test_no_change_false_alarms_mode_collapse_and_flattening():
    """Beta(2, 2) true pass rates over 164 problems, n = 16, pass@16; two arms with NO change. The old
    point-estimate rule (pass@1 up and pass@16 down) fired in 17-20 % of such runs (17 % over 400)."""
    rng = np.random.default_rng(3)
    n = k = 16
    ctx = U.units_of([{"task_id": "x"}], B, 0)
    mode, flat, old = [], [], []
    for r in range(RUNS):
        p = rng.beta(2, 2, 164)
        bm, am = _metrics(rng.binomial(n, p), n, k), _metrics(rng.binomial(n, p), n, k)
        ctx = U.Units(ctx.units, ctx.unit_of, B, r)
        x = at_k(bm, am, ctx)
        m, f = mode_collapse(x), R.BY_NAME["passk-flatten"].read(flatten(x), T)
        mode.append(m.status)
        flat.append(f.status)
        b1, a1 = bm["metrics"]["pass@1"]["value"], am["metrics"]["pass@1"]["value"]
        bk, ak = bm["metrics"][f"pass@{k}"]["value"], am["metrics"][f"pass@{k}"]["value"]
        old.append(a1 > b1 and ak < bk)
    assert _rate(mode) <= 0.05 and _rate(flat) <= 0.05  # measured: 1.0 % and 0 % (1.5 % and 0 % over 400)
    assert np.mean(old) > 0.12  # measured: 20 %: why the rule needs the CI
    assert np.mean([s is ProbeStatus.WATCH for s in mode]) == pytest.approx(np.mean(old), abs=0.06)
