"""The comparator arms' own training data: what a competing recipe trains on, drawn and scored by the round so
the comparator is measured on the same held-out set, with the same engine, T_eval sweep and ledger as SSD.

    rejection-sampling-sft   best-of-N: N samples per pool prompt with tests, at the product's decoding
                             (generation.temperature / top_p / top_k / min_p, not SSD's T_train), scored by the
                             pool's tests in the sandbox; the passing ones (distinct programs per prompt) are
                             the SFT data.
    sft-external             the user's JSONL of {"prompt", "completion"} pairs (comparator.data), refused
                             when a prompt overlaps the held-out set (the pool's contamination check).

    <round>/<arm>/stats.json                       what the arm trains on (round.json: arm_samples)
    <round>/rejection-sampling-sft/samples/{samples.jsonl,generation.json}
    <round>/rejection-sampling-sft/verify/{outcomes.jsonl,metrics.json}

Ledger: the draw is stage "sampling", arm "<arm>:samples"; the sandbox's scoring is stage "scoring", arm
"<arm>:scoring"; both are the arm's cost stages (ssd/arms.py). This is NOT the verifier-aware SSD arm, which
keeps the passing ones of the round's T_train samples. Not here: training (ssd/distill.train_arm), the
registry (ssd/arms.py).
"""

from __future__ import annotations

from pathlib import Path

from selfdistill.errors import DataError
from selfdistill.generate.backends import stage_device
from selfdistill.rundir import file_sha256, read_jsonl, write_json_atomic
from selfdistill.ssd import ledger, sampling

RS, EXTERNAL = "rejection-sampling-sft", "sft-external"


def stats_path(round_dir: Path, arm: str) -> Path:
    return round_dir / arm / "stats.json"


def best_of_n(r, pool, progress_factory, say=print) -> tuple[list[dict], set[tuple[str, int]]]:
    """Draw (resumably) N samples per pool prompt with tests and score them: (samples, passing keys)."""
    spec, g = r.spec, r.spec.generation
    n = spec.comparator.best_of_n
    tested = [p for p in pool.problems if p.tests is not None]
    out = r.dir / RS
    draw_spec = spec.model_copy(update={
        "ssd": spec.ssd.model_copy(update={"t_train": g.temperature, "top_p": g.top_p, "top_k": g.top_k,
                                           "min_p": g.min_p, "n_per_prompt": n}),
        "generation": g.model_copy(update={"options": dict(g.options) | r.sample_options}),
    })
    path = out / "samples" / "samples.jsonl"
    have = len(sampling.read_samples(path)) if path.exists() else 0
    say(f"{RS}: best-of-{n} over {len(tested)} pool prompts with tests at T={g.temperature:g} (top-k {g.top_k}, "
        f"top-p {g.top_p}); {have} of {n * len(tested)} already drawn")
    device, count = stage_device(g.backend.value, g.options)
    with ledger.timed_if(have < n * len(tested), r.run_dir, "sampling", r.label(f"{RS}:samples"), device, count), \
            progress_factory() as progress:
        sampling.sample_pool(draw_spec, r.sample_model or r.model, tested, out, progress)
    samples = sampling.read_samples(path)
    scored = (out / "verify" / "metrics.json").exists()
    with ledger.timed_if(not scored, r.run_dir, "scoring", r.label(f"{RS}:scoring")):  # the sandbox's CPU time
        sampling.verify(draw_spec, tested, path, out)
    passed = sampling.passed_keys(out)
    stats = sampling.sample_stats(samples, passed, {p.task_id for p in tested}) | {"best_of_n": n}
    stats["n_distinct_passing"] = len(distinct_passing(samples, passed))
    stats["prompts_with_a_pass"] = len({s["task_id"] for s in distinct_passing(samples, passed)})
    write_json_atomic(stats_path(r.dir, RS), stats)
    say(f"{RS}: {stats['kept_verifier']} of {stats['n_samples']} samples passed; {stats['n_distinct_passing']} "
        f"distinct passing programs over {stats['prompts_with_a_pass']} of {len(tested)} prompts")
    return samples, passed


def distinct_passing(samples: list[dict], passed: set[tuple[str, int]] | None) -> list[dict]:
    """Rejection sampling's SFT data: non-degenerate samples that passed, one per distinct program per prompt
    (duplicates would weight the easy prompts N times), in file order."""
    seen, out = set(), []
    for s in samples:
        key = (s["task_id"], s["program"] or s["raw"])
        if s.get("degenerate") or (s["task_id"], s["sample_idx"]) not in (passed or set()) or key in seen:
            continue
        seen.add(key)
        out.append(s)
    return out


def external_pairs(r, pool, progress_factory, say=print) -> tuple[list[dict], None]:
    """sft-external: the user's pairs as ready training examples (one "sample" each, carrying its example),
    after the contamination check against the held-out set that the pool gets."""
    from selfdistill.tasks.contamination import check_contamination, refuse_if_contaminated
    from selfdistill.tasks.problem import Problem

    path = Path(r.spec.comparator.data)
    pairs = read_pairs(path)
    as_problems = [Problem(f"external/{i}", p["prompt"], None, EXTERNAL) for i, p in enumerate(pairs)]
    report = check_contamination(as_problems, list(r.heldout.problems), n=r.spec.pool.ngram)
    try:
        refuse_if_contaminated(report, [])
    except DataError as e:
        raise DataError(f"error: comparator.data {path} overlaps the held-out set: {e}") from None
    chat = r.spec.generation.chat
    samples = []
    for i, p in enumerate(pairs):
        if chat:
            prompt, completion = [{"role": "user", "content": p["prompt"]}], [{"role": "assistant",
                                                                               "content": p["completion"]}]
        else:
            prompt, completion = p["prompt"], p["completion"]
        example = {"prompt": prompt, "completion": completion, "truncated": False, "task_id": f"external/{i}",
                   "sample_idx": 0, "origin": "external"}
        samples.append({"task_id": f"external/{i}", "sample_idx": 0, "raw": p["completion"], "degenerate": None,
                        "finish_reason": "stop", "example": example})
    write_json_atomic(stats_path(r.dir, EXTERNAL), {
        "data": str(path), "sha256": file_sha256(path), "n_pairs": len(pairs),
        "contamination": {"checked": True, "heldout_size": len(r.heldout.problems), "ngram": r.spec.pool.ngram,
                          "clean": report.is_clean}})
    say(f"{EXTERNAL}: {len(pairs)} prompt/completion pairs from {path}, none overlapping the held-out set")
    return samples, None


def read_pairs(path: Path) -> list[dict]:
    """The documented schema: one JSON object per line with "prompt" and "completion" strings (other keys
    ignored); every bad line named at once."""
    pairs, bad = [], []
    for i, row in read_jsonl(path, "comparator.data (sft-external pairs)"):
        if isinstance(row.get("prompt"), str) and isinstance(row.get("completion"), str) and row["completion"]:
            pairs.append({"prompt": row["prompt"], "completion": row["completion"]})
        else:
            bad.append(str(i))
    if bad:
        raise DataError(f'error: {path}: line(s) {", ".join(bad[:10])}{" ..." if len(bad) > 10 else ""} need '
                        '"prompt" and a non-empty "completion" string; fix or remove them (docs/comparators.md)')
    if not pairs:
        raise DataError(f"error: {path} has no prompt/completion pairs; sft-external needs at least one")
    return pairs
