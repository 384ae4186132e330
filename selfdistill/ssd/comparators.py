"""The comparator arms' own training data: what a competing recipe trains on, drawn and scored by the round so
the comparator is measured on the same held-out set, with the same engine, T_eval sweep and ledger as SSD.

    best-of-N draw           N = comparator.best_of_n samples per pool prompt with tests, at the product's decoding
                             (generation.temperature / top_p / top_k / min_p, not SSD's T_train), scored by the
                             pool's tests in the sandbox. Drawn ONCE per round, shared by the arms below.
    rejection-sampling-sft   the passing samples of the draw (distinct programs per prompt) are the SFT data.
    dpo                      preference pairs from the draw: (prompt, chosen = a passing program, rejected = a
                             program of the same prompt that ran and failed its tests), at most
                             comparator.dpo_pairs_per_prompt per prompt, chosen with the training seed.
    sft-external             the user's JSONL of {"prompt", "completion"} pairs (comparator.data), refused
                             when a prompt overlaps the held-out set (the pool's contamination check).

    <round>/<arm>/stats.json                       what the arm trains on (round.json: arm_samples)
    <round>/best-of-n/samples/{samples.jsonl,generation.json}
    <round>/best-of-n/verify/{outcomes.jsonl,metrics.json}

Ledger: the draw is stage "sampling", arm "best-of-n:samples"; the sandbox's scoring is stage "scoring", arm
"best-of-n:scoring". Both are cost stages of BOTH arms that use the draw (ssd/arms.py): each recipe on its own
would need it, so each arm's cost counts it once (the run's totals count it once). A harness fault (INFRA) is
never a rejected sample: it says nothing about the program. This is NOT the verifier-aware SSD arm, which keeps
the passing ones of the round's T_train samples. Not here: training (ssd/distill.train_arm, train/preference.py),
the registry (ssd/arms.py).
"""

from __future__ import annotations

import random
from pathlib import Path

from selfdistill.errors import DataError
from selfdistill.generate.backends import stage_device
from selfdistill.rundir import file_sha256, read_jsonl, write_json_atomic
from selfdistill.ssd import data, ledger, sampling

RS, DPO, EXTERNAL = "rejection-sampling-sft", "dpo", "sft-external"
BEST_OF_N = "best-of-n"  # the shared draw's directory and ledger prefix
FAILING = ("failed", "error", "timeout", "memory")  # ran and failed; "infra" (a harness fault) is not a failure
Key = tuple[str, int]


def stats_path(round_dir: Path, arm: str) -> Path:
    return round_dir / arm / "stats.json"


def draw_best_of_n(r, pool, progress_factory, say=print) -> tuple[list[dict], dict[Key, str], list]:
    """Draw (resumably, once per round) N samples per pool prompt with tests at the product's decoding and score
    them in the sandbox: (samples, latest outcome status per (task_id, sample_idx), the prompts with tests)."""
    spec, g = r.spec, r.spec.generation
    n = spec.comparator.best_of_n
    tested = [p for p in pool.problems if p.tests is not None]
    out = r.dir / BEST_OF_N
    draw_spec = spec.model_copy(update={
        "ssd": spec.ssd.model_copy(update={"t_train": g.temperature, "top_p": g.top_p, "top_k": g.top_k,
                                           "min_p": g.min_p, "n_per_prompt": n}),
        "generation": g.model_copy(update={"options": dict(g.options) | r.sample_options}),
    })
    path = out / "samples" / "samples.jsonl"
    have = len(sampling.read_samples(path)) if path.exists() else 0
    if have < n * len(tested):
        say(f"{BEST_OF_N}: best-of-{n} over {len(tested)} pool prompts with tests at T={g.temperature:g} "
            f"(top-k {g.top_k}, top-p {g.top_p}); {have} of {n * len(tested)} already drawn")
    device, count = stage_device(g.backend.value, g.options)
    with ledger.timed_if(have < n * len(tested), r.run_dir, "sampling", r.label(f"{BEST_OF_N}:samples"), device,
                         count), progress_factory() as progress:
        sampling.sample_pool(draw_spec, r.sample_model or r.model, tested, out, progress, purpose=(
            f"comparator draw: best-of-{n} samples per pool prompt with tests at the product's decoding "
            "(rejection-sampling-sft, dpo), not SSD's T_train"))
    scored = (out / "verify" / "metrics.json").exists()
    with ledger.timed_if(not scored, r.run_dir, "scoring", r.label(f"{BEST_OF_N}:scoring")):  # the sandbox's CPU
        sampling.verify(draw_spec, tested, path, out, purpose=(
            f"comparator draw: pool tests on best-of-{n} samples per prompt at the product's decoding "
            "(rejection-sampling-sft, dpo)"))
    return sampling.read_samples(path), outcome_statuses(out), tested


def outcome_statuses(draw_dir: Path) -> dict[Key, str]:
    """The latest sandbox status of each scored sample of the draw (a retried INFRA is superseded)."""
    from selfdistill.score import latest_records

    path = draw_dir / "verify" / "outcomes.jsonl"
    if not path.exists():
        return {}
    records = latest_records([row for _, row in read_jsonl(path, "comparator draw outcomes")])
    return {(row["task_id"], row["sample_idx"]): row["status"] for row in records}


def best_of_n(r, pool, progress_factory, say=print) -> tuple[list[dict], set[Key]]:
    """rejection-sampling-sft's data: the shared draw and its passing keys; its stats into <round>/<arm>/."""
    samples, statuses, tested = draw_best_of_n(r, pool, progress_factory, say)
    passed = {k for k, status in statuses.items() if status == "passed"}
    stats = sampling.sample_stats(samples, passed, {p.task_id for p in tested}) | {
        "best_of_n": r.spec.comparator.best_of_n, "draw": str(r.dir / BEST_OF_N)}
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


def program(sample: dict) -> str:
    """What the tests judged: the extracted program (the raw text when none was extracted)."""
    return sample["program"] or sample["raw"]


def distinct_failing(samples: list[dict], statuses: dict[Key, str]) -> list[dict]:
    """DPO's rejected candidates: non-degenerate samples whose program ran and failed the tests (failed, error,
    timeout, memory; never an INFRA outcome), one per distinct program per prompt, in file order."""
    seen, out = set(), []
    for s in samples:
        key = (s["task_id"], s["program"] or s["raw"])
        if s.get("degenerate") or statuses.get((s["task_id"], s["sample_idx"])) not in FAILING or key in seen:
            continue
        seen.add(key)
        out.append(s)
    return out


def preference_pairs(samples: list[dict], statuses: dict[Key, str], cap: int, seed: int,
                     exclude_truncated: bool = False) -> tuple[list[tuple[dict, dict]], dict]:
    """(chosen, rejected) sample pairs of the same prompt, at most `cap` per prompt, and the counts behind them.

    Per prompt: the distinct passing programs (chosen) and the distinct failing ones (rejected), each shuffled by
    a generator seeded with (seed, task_id), so a prompt's pairs do not depend on the other prompts; pairs are
    taken diagonal by diagonal (chosen i with rejected i, then i + 1, ...): the first ones use every chosen and
    every rejected program before any repeats, and no pair repeats. A prompt without a pass or without a
    failure gives no pair. `exclude_truncated` (ssd.truncated = "exclude") drops samples cut off at
    max_new_tokens from both sides first."""
    passed = {k for k, status in statuses.items() if status == "passed"}
    by_task: dict[str, list[dict]] = {}
    for s in samples:
        by_task.setdefault(s["task_id"], []).append(s)
    pairs: list[tuple[dict, dict]] = []
    counts = {"prompts": len(by_task), "prompts_with_pairs": 0, "prompts_without_a_pass": 0,
              "prompts_without_a_failure": 0, "n_infra_excluded": 0, "n_truncated_excluded": 0,
              "n_chosen_candidates": 0, "n_rejected_candidates": 0, "n_flaky_programs_excluded": 0}
    for task, group in by_task.items():
        counts["n_infra_excluded"] += sum(statuses.get((task, s["sample_idx"])) == "infra" for s in group)
        if exclude_truncated:
            counts["n_truncated_excluded"] += sum(data.is_truncated(s) for s in group)
            group = [s for s in group if not data.is_truncated(s)]
        chosen, rejected = distinct_passing(group, passed), distinct_failing(group, statuses)
        # a program that passed in one sample and failed in another (flaky, or timed out on a busy machine) is
        # no preference: neither chosen nor rejected
        flaky = {program(s) for s in chosen} & {program(s) for s in rejected}
        counts["n_flaky_programs_excluded"] += len(flaky)
        chosen = [s for s in chosen if program(s) not in flaky]
        rejected = [s for s in rejected if program(s) not in flaky]
        counts["n_chosen_candidates"] += len(chosen)
        counts["n_rejected_candidates"] += len(rejected)
        if not chosen or not rejected:
            counts["prompts_without_a_pass" if not chosen else "prompts_without_a_failure"] += 1
            continue
        rng = random.Random(f"{seed}:{task}")
        rng.shuffle(chosen)
        rng.shuffle(rejected)
        diagonal = [(chosen[i], rejected[(i + d) % len(rejected)]) for d in range(len(rejected))
                    for i in range(len(chosen))]
        pairs += diagonal[:cap]
        counts["prompts_with_pairs"] += 1
    return pairs, counts


def dpo_settings(spec) -> dict:
    """What the DPO job runs with (job.json "settings"): beta, the learning rate (comparator.dpo_learning_rate,
    else DPO's default for the training method, train/preference.py), the loss, the pair cap."""
    from selfdistill.train.preference import default_learning_rate

    c = spec.comparator
    return {"beta": c.dpo_beta, "loss_type": "sigmoid", "pairs_per_prompt": c.dpo_pairs_per_prompt,
            "learning_rate": c.dpo_learning_rate or default_learning_rate(spec.train.method),
            "learning_rate_from": "comparator.dpo_learning_rate" if c.dpo_learning_rate
            else f"DPO's default for train.method = {spec.train.method.value}",
            "learning_rate_key": "comparator.dpo_learning_rate"}  # what to change if it diverges


def dpo_pairs(r, pool, progress_factory, say=print) -> tuple[list[dict], None]:
    """dpo: preference pairs from the shared best-of-N draw, as ready training examples (one "sample" per pair,
    carrying it); the pairs and counts into <round>/dpo/stats.json. No pair at all is refused (exit 2)."""
    from selfdistill.spec import TruncatedPolicy

    spec = r.spec
    samples, statuses, tested = draw_best_of_n(r, pool, progress_factory, say)
    settings = dpo_settings(spec)
    exclude = spec.ssd.truncated is TruncatedPolicy.EXCLUDE
    pairs, counts = preference_pairs(samples, statuses, settings["pairs_per_prompt"], spec.train.seed, exclude)
    by_id = {p.task_id: p for p in tested}
    chat = spec.generation.chat
    out = [pair_sample(by_id[c["task_id"]], c, rj, statuses, chat) for c, rj in pairs]
    stats = {"best_of_n": spec.comparator.best_of_n, "draw": str(r.dir / BEST_OF_N), "n_samples": len(samples),
             "n_pairs": len(pairs), "pair_seed": spec.train.seed, "truncated_policy": spec.ssd.truncated.value,
             **counts, **settings,
             "pairs": [{"task_id": c["task_id"], "chosen": c["sample_idx"], "rejected": rj["sample_idx"],
                        "rejected_status": statuses[(rj["task_id"], rj["sample_idx"])]} for c, rj in pairs]}
    write_json_atomic(stats_path(r.dir, DPO), stats)
    if not pairs:
        raise DataError(
            f"error: the dpo arm has no preference pairs: of {len(tested)} pool prompts with tests, "
            f"{counts['prompts_without_a_pass']} had no passing sample and {counts['prompts_without_a_failure']} no "
            f"failing one among best-of-{spec.comparator.best_of_n} at T={spec.generation.temperature:g} "
            f"({counts['n_infra_excluded']} harness faults not counted as failures); DPO needs a prompt with both: "
            "raise comparator.best_of_n, use a pool whose prompts the model solves only sometimes, or remove dpo "
            f"from comparator.measure (counts in {stats_path(r.dir, DPO)})")
    say(f"{DPO}: {len(pairs)} preference pairs (passing over failing) from {counts['prompts_with_pairs']} of "
        f"{len(tested)} prompts (no pass: {counts['prompts_without_a_pass']}, no failure: "
        f"{counts['prompts_without_a_failure']}); beta {settings['beta']:g}, lr {settings['learning_rate']:g}")
    return out, None


def pair_sample(problem, chosen: dict, rejected: dict, statuses: dict[Key, str], chat: bool) -> dict:
    """One pair as the round hands it to train_arm: a "sample" carrying its example (the prompt as sampled, each
    side's raw completion as data.example builds it, and whether each side was cut off at max_new_tokens)."""
    c, rj = data.example(problem, chosen, chat), data.example(problem, rejected, chat)
    example = {"prompt": c["prompt"], "chosen": c["completion"], "rejected": rj["completion"],
               "chosen_truncated": c["truncated"], "rejected_truncated": rj["truncated"],
               "task_id": chosen["task_id"], "chosen_idx": chosen["sample_idx"], "rejected_idx": rejected["sample_idx"],
               "rejected_status": statuses[(rejected["task_id"], rejected["sample_idx"])], "origin": BEST_OF_N}
    cut = c["truncated"] or rj["truncated"]
    return {"task_id": chosen["task_id"], "sample_idx": chosen["sample_idx"], "raw": chosen["raw"],
            "degenerate": None, "finish_reason": "length" if cut else "stop", "example": example}


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
