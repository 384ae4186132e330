"""Generating while scoring vs generating then scoring, on the embedded default, in one run.

The eval stage scores samples in the sandbox while llama.cpp generates the next ones. llama.cpp's threads
spin-wait for each other at every step, so a sandboxed program on one of their cores stalls all of them.
Three orders of the same work (P HumanEval chat prompts x n samples, batched decoding, plus `--spin`
programs that spin until their timeout, the worst case a real arm meets), wall time of each:

- `then`: generate everything with all cores, then score everything with one worker per core;
- `while (live_share)`: what evaluate.py does: the scorer gets `live_share(cores)` workers and llama.cpp
  drops to the remaining cores while any program runs, taking all back when the scorer is idle;
- `while (naive)`: all cores to llama.cpp and one worker per core to the scorer at the same time (before).

Goal: `while (live_share)` never slower than `then`. Alternating rounds, medians; ratios from one run.

Run: `python benchmarks/bench_share.py [--prompts 2] [--n 16] [--max-new-tokens 96] [--spin 2] [--rounds 2]`
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from selfdistill.evaluate import Scorer, live_share, sample_record
from selfdistill.generate.base import GenRequest
from selfdistill.generate.default_model import default_model_path
from selfdistill.generate.params import SamplingParams, sample_seed
from selfdistill.generate.prompts import build_prompt
from selfdistill.rundir import JsonlStream
from selfdistill.score import ScoreConfig
from selfdistill.tasks.humaneval import load_humaneval

SPIN = "def spin():\n    while True:\n        pass\nspin()\n"


class _Quiet:
    def scored(self, record):
        pass


def spinners(problem, count: int) -> list[dict]:
    return [{"task_id": problem.task_id, "sample_idx": 1000 + i, "program": SPIN} for i in range(count)]


def run_order(order: str, backend, problems, requests, params, cores: int, spin: int, timeout_s: float) -> float:
    by_id = {p.task_id: p for p in problems}
    cfg = ScoreConfig(timeout_s=timeout_s)
    workers, busy_threads = live_share(cores)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, JsonlStream(Path(tmp) / "outcomes.jsonl") as stream:
        if order == "then":
            records = [sample_record(by_id[r.task_id], r, True) for r in backend.generate(requests, params)]
            with Scorer(by_id, cfg, stream, _Quiet(), workers=cores) as scorer:
                for record in spinners(problems[0], spin) + records:
                    scorer.submit(record)
        else:
            live = order == "while (live_share)"

            def on_busy(busy: bool) -> None:
                if live:
                    backend.set_threads(busy_threads if busy else None)

            with Scorer(by_id, cfg, stream, _Quiet(), workers=workers if live else cores, on_busy=on_busy) as scorer:
                for record in spinners(problems[0], spin):
                    scorer.submit(record)
                for result in backend.generate(requests, params):
                    scorer.submit(sample_record(by_id[result.task_id], result, True))
            backend.set_threads(None)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=2)
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--spin", type=int, default=2, help="programs that spin until their timeout, per round")
    ap.add_argument("--timeout-s", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()

    from selfdistill.generate.backends import load_backend

    cores = len(os.sched_getaffinity(0))
    problems = load_humaneval()[: args.prompts]
    requests = [GenRequest(p.task_id, i, build_prompt(p, chat=True), sample_seed(0, p.task_id, i))
                for p in problems for i in range(args.n)]
    params = SamplingParams(temperature=0.8, top_k=20, top_p=0.95, max_new_tokens=args.max_new_tokens)
    backend = load_backend("llamacpp", str(default_model_path()), chat=True, options={"batch": args.n})
    print(f"machine: {cores} cores, load {os.getloadavg()[0]:.1f}; {len(requests)} requests, batch {args.n}, "
          f"max_new_tokens {args.max_new_tokens}, {args.spin} spinning programs (timeout {args.timeout_s:g} s); "
          f"live_share({cores}) = {live_share(cores)} (workers, generation threads while scoring)", flush=True)
    orders = ["then", "while (live_share)", "while (naive)"]
    walls: dict[str, list[float]] = {o: [] for o in orders}
    for r in range(args.rounds):
        for order in orders:
            walls[order].append(run_order(order, backend, problems, requests, params, cores, args.spin, args.timeout_s))
        print(f"round {r + 1}: " + ", ".join(f"{o} {walls[o][-1]:.1f} s" for o in orders), flush=True)
    backend.close()
    then = statistics.median(walls["then"])
    for order in orders:
        wall = statistics.median(walls[order])
        print(f"{order:<20} {wall:7.1f} s wall (median of {len(walls[order])})   "
              f"{wall / then:.2f}x generate-then-score")


if __name__ == "__main__":
    main()
