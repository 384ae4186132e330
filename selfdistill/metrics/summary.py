"""Per-sample outcome records -> the metrics dict written as `<arm>/metrics.json`.

Input records are dicts with at least `task_id` and `status` (a `Status` or its value). Per problem:
n = samples that ran (every status except INFRA), c = samples that passed. INFRA samples are harness
faults: excluded from n, counted in `status_counts` and per problem. A problem with n < k (after
excluding INFRA) has no pass@k: it is listed under `excluded["pass@k"]`, never dropped silently.
pass@1 is always reported (the verdict needs it); each k > 1 also gets the within-arm gap
pass@k - pass@1 with its own paired CI (`gaps["pass@k-pass@1"]`).

Per-slice groups (`selfdistill.metrics.slices`): without labels or a separate run's pass rates the slices
are cross-fit, so each slice's numbers come from the ESTIMATE half of the samples (odd sample_idx) while
the ASSIGN half (even) chose the slice; `per_problem[t]["halves"]` keeps both halves' counts so a later
comparison of arms (`selfdistill.ssd.compare`) can cross-fit the same way.

All numbers are fractions 0..1 and plain Python types, so `json.dumps` takes the dict as is.
The shape is documented in docs/decision-rule.md ("metrics.json").
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from selfdistill.errors import DataError
from selfdistill.execute.outcome import Status
from selfdistill.metrics.bootstrap import CONFIDENCE, N_RESAMPLES, bootstrap_gap, bootstrap_mean
from selfdistill.metrics.passk import pass_at_k
from selfdistill.metrics.slices import ASSIGN_HALF, ESTIMATE_HALF, PROXY_BINS, SLICE_ORDER, SliceSource, assign_slices
from selfdistill.tasks.problem import Difficulty

SCHEMA = "selfdistill.metrics/1"


@dataclass(frozen=True)
class ProblemCounts:
    """Per-problem counts, problems sorted by task id."""

    task_ids: tuple[str, ...]
    n: np.ndarray  # samples that ran (INFRA excluded)
    c: np.ndarray  # samples that passed
    infra: np.ndarray  # INFRA samples
    status_counts: dict[str, int]  # all six statuses, in Status order

    def subset(self, keep: np.ndarray) -> ProblemCounts:
        ids = tuple(t for t, k in zip(self.task_ids, keep.tolist(), strict=True) if k)
        return ProblemCounts(ids, self.n[keep], self.c[keep], self.infra[keep], {})


def _status(i: int, record: Mapping) -> tuple[str, Status]:
    if not isinstance(record, Mapping) or "task_id" not in record or "status" not in record:
        raise DataError(f"outcome record #{i} must be a dict with 'task_id' and 'status', got {record!r:.120}")
    try:
        return str(record["task_id"]), Status(record["status"])
    except ValueError:
        allowed = ", ".join(s.value for s in Status)
        raise DataError(
            f"outcome record #{i} ({record['task_id']}) has status {record['status']!r}; expected one of: {allowed}"
        ) from None


def count_outcomes(records: Iterable[Mapping], half: int | None = None) -> ProblemCounts:
    """Count per-problem n, c and INFRA, and all statuses, from per-sample outcome records. `half`
    0 or 1 keeps only the samples whose `sample_idx` (else position within the task) has that parity."""
    per_task: dict[str, dict[Status, int]] = {}
    position: dict[str, int] = {}
    totals = {s: 0 for s in Status}
    for i, record in enumerate(records):
        task_id, status = _status(i, record)
        tally = per_task.setdefault(task_id, {s: 0 for s in Status})
        idx = record.get("sample_idx", position.get(task_id, 0))
        position[task_id] = position.get(task_id, 0) + 1
        if half is not None and int(idx) % 2 != half:
            continue
        tally[status] += 1
        totals[status] += 1
    ids = tuple(sorted(per_task))
    infra = np.array([per_task[t][Status.INFRA] for t in ids], dtype=np.int64)
    total = np.array([sum(per_task[t].values()) for t in ids], dtype=np.int64)
    c = np.array([per_task[t][Status.PASSED] for t in ids], dtype=np.int64)
    return ProblemCounts(ids, total - infra, c, infra, {s.value: totals[s] for s in Status})


def _seed(seed: int, label: str) -> np.random.Generator:
    """A stream per (group, metric), so adding a slice or a k never shifts another CI."""
    return np.random.default_rng([seed, zlib.crc32(label.encode())])


def _empty() -> dict:
    return {"value": None, "ci_low": None, "ci_high": None, "n_problems": 0}


def _group(
    counts: ProblemCounts, ks: Sequence[int], label: str, n_resamples: int, seed: int, confidence: float
) -> dict:
    """metrics, gaps and exclusions for one group of problems (overall or one slice)."""
    out: dict = {"n_problems": len(counts.task_ids), "metrics": {}, "gaps": {}, "excluded": {}}
    opts = {"n_resamples": n_resamples, "confidence": confidence}
    for k in ks:
        key, ok = f"pass@{k}", counts.n >= k
        out["excluded"][key] = [
            {"task_id": t, "n": int(n), "infra": int(f)}
            for t, n, f, keep in zip(counts.task_ids, counts.n, counts.infra, ok, strict=True)
            if not keep
        ]
        if not ok.any():
            out["metrics"][key] = _empty()
            if k > 1:
                out["gaps"][f"{key}-pass@1"] = _empty()
            continue
        sub = counts.subset(ok)
        passk = pass_at_k(sub.n, sub.c, k, sub.task_ids)
        out["metrics"][key] = bootstrap_mean(passk, seed=_seed(seed, f"{label}|{key}"), **opts).to_json()
        if k > 1:
            pass1 = sub.c / sub.n
            gap = bootstrap_gap(pass1, passk, seed=_seed(seed, f"{label}|{key}-pass@1"), **opts)
            out["gaps"][f"{key}-pass@1"] = gap.to_json()
    return out


def _check_ks(ks: Iterable[int], counts: ProblemCounts) -> list[int]:
    ks = list(ks)
    bad = [k for k in ks if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1]
    if bad:
        raise DataError(f"k values {bad} are not valid: each k must be a whole number >= 1 (e.g. [1, 16])")
    ks = sorted({1, *map(int, ks)})
    most = int((counts.n + counts.infra).max()) if counts.task_ids else 0
    too_big = [k for k in ks if k > most]
    if too_big:
        raise DataError(
            f"pass@{too_big[0]} needs n >= {too_big[0]} samples per problem, but no problem has more than "
            f"{most}; raise the samples per problem (n) or drop k={too_big}"
        )
    return ks


def summarize(
    records: Iterable[Mapping],
    ks: Iterable[int],
    *,
    difficulty: Mapping[str, Difficulty | str | None] | None = None,
    base_pass_rate: Mapping[str, float] | None = None,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> dict:
    """The metrics dict for one arm (JSON-serializable). `ks`: the k values (1 is always added).
    `difficulty`: task_id -> label; used when every problem has one. `base_pass_rate`: task_id ->
    base pass rate in [0, 1] from a separate run, for the proxy slices (default: cross-fit, the even
    sample_idx half assigns each problem's slice and the slice's numbers come from the odd half only)."""
    records = list(records)
    counts = count_outcomes(records)
    if not counts.task_ids:
        raise DataError("no outcome records to summarize; run the execute stage first")
    ks = _check_ks(ks, counts)
    assign, estimate = count_outcomes(records, ASSIGN_HALF), count_outcomes(records, ESTIMATE_HALF)
    slices = assign_slices(counts.task_ids, assign.n, assign.c, difficulty=difficulty, base_pass_rate=base_pass_rate)
    overall = _group(counts, ks, "overall", n_resamples, seed, confidence)
    sliced = estimate if slices.cross_fit else counts  # cross-fit: per-slice numbers from the other half only
    by_slice = {}
    for level in SLICE_ORDER:
        keep = np.array([slices.by_task[t] is level for t in counts.task_ids])
        if keep.any():
            by_slice[level.value] = _group(sliced.subset(keep), ks, level.value, n_resamples, seed, confidence)
    return {
        "schema": SCHEMA,
        "ks": ks,
        "confidence": confidence,
        "n_resamples": int(n_resamples),
        "seed": int(seed),
        "n_samples": int(sum(counts.status_counts.values())),
        "status_counts": counts.status_counts,
        **overall,
        "slice_source": slices.source.value,
        "slice_proxy_from": slices.proxy_from.value if slices.proxy_from else None,
        "slice_bins": dict(PROXY_BINS) if slices.source is SliceSource.PROXY else None,
        "slice_note": slices.note,
        "slice_estimate": "estimate half (odd sample_idx)" if slices.cross_fit else "all samples",
        "slices": by_slice,
        "unsliced": [t for t in counts.task_ids if slices.by_task[t] is None],
        "per_problem": {
            t: {"n": int(n), "c": int(c), "infra": int(f), "slice": s.value if (s := slices.by_task[t]) else None,
                "halves": {"assign": {"n": int(na), "c": int(ca)}, "estimate": {"n": int(ne), "c": int(ce)}}}
            for t, n, c, f, na, ca, ne, ce in zip(counts.task_ids, counts.n, counts.c, counts.infra,
                                                   assign.n, assign.c, estimate.n, estimate.c, strict=True)
        },
    }
