"""Synthetic per-sample records for the verdict tests: three difficulty slices whose pass@1-pass@k gaps differ."""

import numpy as np

N, K = 32, 16


def problem(task_id: str, c: int, n: int = N, infra: int = 0) -> list[dict]:
    statuses = ["passed"] * c + ["failed"] * (n - c) + ["infra"] * infra
    return [{"task_id": task_id, "status": s} for s in statuses]


def synthetic() -> tuple[list[dict], dict[str, str]]:
    """Hard: rarely right first, often right within 16 (big gap). Medium: consistent, always or never
    right (no gap). Easy: always right (ceiling)."""
    rng = np.random.default_rng(0)
    recs, labels = [], {}
    for i in range(30):
        recs += problem(f"hard/{i}", int(rng.binomial(N, rng.uniform(0.05, 0.3))))
        labels[f"hard/{i}"] = "hard"
        recs += problem(f"medium/{i}", N if i % 2 else 0)
        labels[f"medium/{i}"] = "medium"
        recs += problem(f"easy/{i}", N)
        labels[f"easy/{i}"] = "easy"
    return recs, labels
