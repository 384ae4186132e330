"""pass@k against brute force with math.comb, plus properties of the estimator."""

import math

import numpy as np
import pytest

from selfdistill.errors import DataError
from selfdistill.metrics.passk import pass_at_k


def brute(n: int, c: int, k: int) -> float:
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)  # comb(a, k) = 0 when a < k


GRID = [(n, c, k) for n in range(1, 21) for c in range(n + 1) for k in range(1, n + 1)]


def test_matches_brute_force_on_full_grid():
    n, c, k = (np.array(col) for col in zip(*GRID, strict=True))
    for kk in np.unique(k):
        sel = k == kk
        got = pass_at_k(n[sel], c[sel], int(kk))
        want = [brute(a, b, int(kk)) for a, b in zip(n[sel], c[sel], strict=True)]
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "n,c,k,want",
    [(10, 0, 5, 0.0), (10, 10, 5, 1.0), (10, 8, 5, 1.0), (10, 6, 5, 1.0), (10, 5, 5, brute(10, 5, 5)), (1, 1, 1, 1.0)],
    ids=["c=0", "c=n", "n-c<k", "n-c<k-edge", "n-c=k", "n=1"],
)
def test_edge_cases(n, c, k, want):
    assert pass_at_k(n, c, k) == pytest.approx(want, abs=1e-15)


def test_large_n_is_stable():
    # C(1000, 500) overflows a float; the product form does not.
    got = pass_at_k(1000, 3, 500)
    assert got == pytest.approx(brute(1000, 3, 500), rel=1e-12)
    assert 0.0 <= pass_at_k(2000, 1, 1) <= 1.0


def test_scalar_in_scalar_out_and_array_shape():
    assert isinstance(pass_at_k(10, 3, 1), float)
    out = pass_at_k([10, 10, 10], [0, 3, 10], 1)
    assert out.shape == (3,)
    np.testing.assert_allclose(out, [0.0, 0.3, 1.0])


def test_properties_random():
    rng = np.random.default_rng(7)
    n = rng.integers(16, 200, size=500)
    c = rng.integers(0, n + 1)
    p1 = pass_at_k(n, c, 1)
    np.testing.assert_allclose(p1, c / n, rtol=1e-12)  # pass@1 = c / n
    prev = p1
    for k in (2, 4, 8, 16):
        pk = pass_at_k(n, c, k)
        assert np.all((pk >= 0) & (pk <= 1))
        assert np.all(pk >= prev - 1e-12)  # non-decreasing in k
        prev = pk
    more = pass_at_k(n, np.minimum(c + 1, n), 8)
    assert np.all(more >= pass_at_k(n, c, 8) - 1e-12)  # non-decreasing in c
    np.testing.assert_array_equal(pass_at_k(n, c, 16)[c == 0], 0.0)


def test_pass_at_n_is_any_pass():
    n = np.array([5, 5, 7])
    c = np.array([0, 1, 7])
    np.testing.assert_array_equal(pass_at_k(n, c, 5), [0.0, 1.0, 1.0])


def test_k_above_n_names_problem_n_k_and_fix():
    with pytest.raises(DataError) as err:
        pass_at_k([16, 8], [3, 1], 16, task_ids=["HumanEval/0", "HumanEval/7"])
    msg = str(err.value)
    assert "HumanEval/7 (n=8)" in msg and "pass@16" in msg and "HumanEval/0" not in msg
    assert "raise" in msg and "drop k=16" in msg


def test_many_short_problems_are_summarized():
    with pytest.raises(DataError, match="and 5 more"):
        pass_at_k([1] * 10, [0] * 10, 2)


@pytest.mark.parametrize("n,c,k", [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 1.5), (5.5, 2, 1)])
def test_malformed_input_is_a_data_error(n, c, k):
    with pytest.raises(DataError):
        pass_at_k(n, c, k)


def test_mismatched_lengths():
    with pytest.raises(DataError, match="one entry per problem"):
        pass_at_k([5, 5], [1], 1)
