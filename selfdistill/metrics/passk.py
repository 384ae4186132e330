"""Unbiased pass@k per problem, vectorized over problems.

Chen et al. 2021, "Evaluating Large Language Models Trained on Code" (arXiv 2107.03374), eq. 1 and
Fig. 3: with n samples of which c pass, the unbiased estimator of pass@k is

    pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n-c+1}^{n} (1 - k / i)

The product form avoids the huge binomials. When n - c < k every k-subset holds a pass: pass@k = 1.

What this does not do: decide which samples count. `n` must already exclude harness faults
(`Status.INFRA`, see `selfdistill.metrics.summary`); k > n is a user error, never a silent zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from selfdistill.errors import DataError

_MAX_NAMED = 5  # problems named in an error message before "... and N more"


def _as_counts(x, name: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(x))
    if arr.ndim != 1:
        raise DataError(f"{name} must be a 1-D array of per-problem counts, got shape {arr.shape}")
    if arr.size and not np.all(np.equal(np.mod(arr, 1), 0)):
        raise DataError(f"{name} must hold whole numbers (sample counts), got {arr[np.mod(arr, 1) != 0][:3]}")
    return arr.astype(np.int64)


def _names(idx: np.ndarray, task_ids: Sequence[str] | None, n: np.ndarray, c: np.ndarray | None = None) -> str:
    def one(i: int) -> str:
        who = task_ids[i] if task_ids is not None else f"problem #{i}"
        return f"{who} (n={n[i]})" if c is None else f"{who} (n={n[i]}, c={c[i]})"

    shown = ", ".join(one(int(i)) for i in idx[:_MAX_NAMED])
    more = f" and {len(idx) - _MAX_NAMED} more" if len(idx) > _MAX_NAMED else ""
    return shown + more


def check_counts(n, c, k: int, task_ids: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate per-problem (n, c) and k; return them as int64 arrays. Raises DataError."""
    n, c = _as_counts(n, "n"), _as_counts(c, "c")
    if n.shape != c.shape:
        raise DataError(f"n and c must have one entry per problem, got {n.size} n values and {c.size} c values")
    if task_ids is not None and len(task_ids) != n.size:
        raise DataError(f"task_ids has {len(task_ids)} entries for {n.size} problems")
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise DataError(f"k={k!r} is not a valid pass@k: k must be a whole number >= 1")
    bad = np.flatnonzero((c < 0) | (c > n))
    if bad.size:
        raise DataError(
            f"passed count c must satisfy 0 <= c <= n, but {bad.size} problem(s) break it: "
            f"{_names(bad, task_ids, n, c)}; recount the outcomes for these problems"
        )
    short = np.flatnonzero(n < k)
    if short.size:
        raise DataError(
            f"pass@{k} needs n >= {k} samples per problem, but {short.size} problem(s) have fewer: "
            f"{_names(short, task_ids, n)}; raise the samples per problem (n) or drop k={k}"
        )
    return n, c


def pass_at_k(n, c, k: int, task_ids: Sequence[str] | None = None) -> np.ndarray | float:
    """Unbiased pass@k for each problem. `n`, `c`: per-problem sample and pass counts (arrays or
    scalars); `k`: int. Returns a float array (a float for scalar n and c), values in [0, 1].
    `task_ids` only names problems in error messages."""
    scalar = np.ndim(n) == 0 and np.ndim(c) == 0
    n, c = check_counts(n, c, k, task_ids)
    out = np.ones(n.shape, dtype=np.float64)
    live = (n - c) >= k  # otherwise every k-subset contains a pass
    if live.any():
        nl, cl = n[live], c[live]
        j = np.arange(int(cl.max()))
        i = (nl - cl + 1)[:, None] + j[None, :]  # i = n-c+1 .. n, padded past c with 1.0 factors
        factors = np.where(j[None, :] < cl[:, None], 1.0 - k / i, 1.0)
        out[live] = 1.0 - factors.prod(axis=1)
    return float(out[0]) if scalar else out
