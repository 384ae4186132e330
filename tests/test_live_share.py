"""Generation and live scoring share the cores: the scorer's worker share and its busy/idle edges (the llamacpp
side, fewer threads while a program runs, is in tests/generate/test_llamacpp_batch.py)."""

from __future__ import annotations

import threading

from selfdistill.evaluate import Scorer, live_share
from selfdistill.rundir import JsonlStream, read_jsonl
from selfdistill.score import ScoreConfig
from selfdistill.tasks.humaneval import load_humaneval


def test_scorer_gets_a_quarter_of_the_cores_and_generation_the_rest():
    assert live_share(1) == (1, 1)
    assert live_share(2) == (1, 1)
    assert live_share(8) == (2, 6)
    assert live_share(16) == (4, 12)


class _Progress:
    def scored(self, record):
        pass


def test_scorer_reports_busy_when_programs_run_and_idle_when_the_last_ends(tmp_path):
    problem = load_humaneval()[0]
    edges, lock = [], threading.Lock()

    def on_busy(busy):
        with lock:
            edges.append(busy)

    good = problem.prompt + problem.canonical_solution
    with JsonlStream(tmp_path / "outcomes.jsonl") as stream, \
            Scorer({problem.task_id: problem}, ScoreConfig(timeout_s=5.0), stream, _Progress(), workers=1,
                   on_busy=on_busy) as scorer:
        for i in range(3):
            scorer.submit({"task_id": problem.task_id, "sample_idx": i, "program": good})
    assert scorer.error is None
    assert [r["status"] for _, r in read_jsonl(tmp_path / "outcomes.jsonl", "outcomes")] == ["passed"] * 3
    assert edges[0] is True and edges[-1] is False
    assert all(a != b for a, b in zip(edges, edges[1:], strict=False))  # edges alternate: busy, idle, busy, ...

