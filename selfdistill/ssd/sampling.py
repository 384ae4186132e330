"""The round's training samples: one (or n) completion per pool prompt from the FROZEN base model at
T_train with top-k/top-p truncation, each with its own recorded seed; the degeneracy filter; and, when
the pool has tests, the verification that the verifier-aware arm keeps.

    <round>/samples/generation.json   sampling parameters, backend, model, seed policy (resume guard)
    <round>/samples/samples.jsonl     append-only: raw text, extracted program, seed, finish reason, tokens,
                                      and `degenerate` (null, "empty" or "single-line")
    <round>/verify/outcomes.jsonl     sandbox outcomes of the samples of prompts with tests
    <round>/verify/metrics.json       pool pass@1 at T_train = the verifier's acceptance rate

The only filter of the minimal recipe is the paper's: empty and single-line completions are dropped.
Samples with no extractable code are NOT dropped (the raw text is what is trained on); their share is
reported. Resuming after a kill draws exactly the samples that are missing (per-sample seeds).
"""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from pathlib import Path

from selfdistill.evaluate import (
    EvalConfig,
    EvalPlan,
    generation_record,
    guard_resume,
    planned_requests,
    record_backend,
    sample_record,
)
from selfdistill.generate.params import SamplingParams
from selfdistill.rundir import dumps_line, read_jsonl, write_bytes_atomic, write_json_atomic
from selfdistill.score import ScoreConfig, score
from selfdistill.spec import Spec
from selfdistill.tasks.problem import Problem


def degeneracy(raw: str) -> str | None:
    """The paper's only filter: None for a kept sample, else why it is dropped."""
    text = raw.strip()
    if not text:
        return "empty"
    if "\n" not in text:
        return "single-line"
    return None


def train_params(spec: Spec) -> SamplingParams:
    s = spec.ssd
    return SamplingParams(
        temperature=s.t_train, top_p=s.top_p, top_k=s.top_k, min_p=s.min_p,
        max_new_tokens=s.max_new_tokens or spec.generation.max_new_tokens,
        n=s.n_per_prompt, seed=s.seed, stop=(),
    )


SSD_SAMPLES = "SSD training samples at T_train from the frozen base model"


def sampling_record(spec: Spec, model: str, plan: EvalPlan, purpose: str = SSD_SAMPLES) -> dict:
    """The eval stage's generation record, naming every pool prompt (the resume guard compares them)."""
    return generation_record(EvalConfig.from_spec(spec, model=model), plan) | {
        "problems": [p.task_id for p in plan.problems],
        "purpose": purpose,
        "filter": "drop empty or single-line completions only (the paper's degeneracy filter)",
    }


def sample_pool(spec: Spec, model: str, problems: list[Problem], round_dir: Path, progress,
                purpose: str = SSD_SAMPLES) -> Path:
    """Draw the missing samples (T_train, or the sampling settings of `spec.ssd`); return the samples file.
    `purpose` says in generation.json what they are for (a comparator's draw is not SSD's)."""
    from selfdistill.generate.backends import load_backend
    from selfdistill.generate.fill import fill_missing
    from selfdistill.generate.prompts import build_prompt

    out = round_dir / "samples"
    out.mkdir(parents=True, exist_ok=True)
    params = train_params(spec)
    plan = EvalPlan("samples", out, problems, params, None)
    guard_resume(out, sampling_record(spec, model, plan, purpose))
    by_id = {p.task_id: p for p in problems}
    g = spec.generation
    prompts = {p.task_id: build_prompt(p, g.chat) for p in problems}

    def make_record(result) -> dict:
        return sample_record(by_id[result.task_id], result, g.chat) | {"degenerate": degeneracy(result.text)}

    @contextmanager
    def started(backend):
        record_backend(out, backend.describe())
        yield None

    fill_missing(out / "samples.jsonl", planned_requests(plan, prompts), params,
                 lambda: load_backend(g.backend.value, model, chat=g.chat, options=g.options),
                 make_record, progress=progress, started=started)
    return out / "samples.jsonl"


def read_samples(path: Path) -> list[dict]:
    return [r for _, r in read_jsonl(path, "T_train samples file")]


VERIFY_PURPOSE = "verifier-aware arm: pool tests on the T_train samples"


def verify(spec: Spec, problems: list[Problem], samples_path: Path, round_dir: Path, progress=None,
           purpose: str = VERIFY_PURPOSE) -> dict | None:
    """Run the samples of prompts with tests in the sandbox; None when no pool prompt has tests. `purpose` labels
    the scoring record (the comparators' best-of-N draw passes its own)."""
    tested = [p for p in problems if p.tests is not None]
    if not tested:
        return None
    ids = {p.task_id for p in tested}
    out = round_dir / "verify"
    out.mkdir(parents=True, exist_ok=True)
    subset = out / "samples.jsonl"
    rows = [r for r in read_samples(samples_path) if r["task_id"] in ids]
    _write_if_changed(subset, rows)
    d = spec.diagnostics
    cfg = ScoreConfig(k=(1,), timeout_s=d.timeout_s, memory_mb=d.memory_mb,
                      bootstrap_resamples=d.bootstrap_resamples, seed=d.seed)
    return score(tested, subset, out, cfg, {"purpose": purpose}, progress)


def _write_if_changed(path: Path, rows: list[dict]) -> None:
    text = "".join(dumps_line(r) + "\n" for r in rows)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        write_bytes_atomic(path, text.encode("utf-8"))


def passed_keys(round_dir: Path) -> set[tuple[str, int]]:
    """(task_id, sample_idx) of the samples whose latest outcome is a pass."""
    from selfdistill.score import latest_records

    path = round_dir / "verify" / "outcomes.jsonl"
    if not path.exists():
        return set()
    records = latest_records([r for _, r in read_jsonl(path, "verifier outcomes")])
    return {(r["task_id"], r["sample_idx"]) for r in records if r["status"] == "passed"}


def sample_stats(samples: list[dict], passed: set[tuple[str, int]] | None, tested: set[str] = frozenset()) -> dict:
    """Counts of the filter, and the verifier's acceptance rate among kept samples of prompts with tests."""
    n = len(samples) or 1
    reasons = Counter(r.get("degenerate") for r in samples)
    kept = [r for r in samples if not r.get("degenerate")]
    stats = {
        "n_samples": len(samples),
        "kept_minimal": len(kept),
        "dropped_empty": reasons.get("empty", 0),
        "dropped_single_line": reasons.get("single-line", 0),
        "no_code_share": sum(r["extraction"] == "none" for r in samples) / n,
        "truncated_share": sum(r["finish_reason"] == "length" for r in samples) / n,
        "completion_tokens_total": sum(r["completion_tokens"] for r in samples),
    }
    if passed is not None:
        kept_verified = [r for r in kept if (r["task_id"], r["sample_idx"]) in passed]
        stats["kept_verifier"] = len(kept_verified)
        kept_tested = [r for r in kept if r["task_id"] in tested]
        stats["kept_with_tests"] = len(kept_tested)
        stats["acceptance_rate"] = len(kept_verified) / (len(kept_tested) or 1)
    return stats


def write_stats(round_dir: Path, stats: dict) -> None:
    write_json_atomic(round_dir / "samples" / "stats.json", stats)
