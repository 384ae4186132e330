"""The eval stage: `selfdistill eval SPEC [--arm NAME] [--limit N]` = generate + score + metrics for one arm.

    runs/<run>/manifest.json           resolved spec, versions, held-out provenance, per-arm generation
    runs/<run>/<arm>/generation.json   the arm's sampling parameters, backend and model (resume guard)
    runs/<run>/<arm>/samples.jsonl     append-only: raw text, extracted program, extraction method,
                                       finish reason, token counts, seed — one line per sample
    runs/<run>/<arm>/outcomes.jsonl    sandbox outcomes, scored while generation runs
    runs/<run>/<arm>/metrics.json      written last: the arm is done when it exists

Killed at any moment and run again, it resumes: samples already in samples.jsonl are not generated
again (each sample has its own seed, derived from (run seed, task_id, sample_idx), so what remains is
exactly what a full run would have produced), and outcomes already scored are not run again. An arm
sampled with other parameters is refused rather than mixed. `--limit N` evaluates a seeded subset of N
problems and stamps every result `comparable: false`.

Not here: the engines (generate/), the sandbox (execute/), the statistics (metrics/).
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from selfdistill.errors import DataError
from selfdistill.execute.outcome import Job
from selfdistill.generate.base import GenRequest, GenResult
from selfdistill.generate.params import SamplingParams, sample_seed
from selfdistill.heldout import HeldoutSet
from selfdistill.rundir import JsonlStream, read_json, write_json_atomic
from selfdistill.score import Sample, ScoreConfig, guard_sandbox, outcome_record, record_isolation, score
from selfdistill.spec import Spec
from selfdistill.tasks.problem import Problem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalConfig:
    """What an evaluation needs: the engine, the model, how to decode and how to score. `sampling` carries no
    stop strings (they depend on the problems: `EvalConfig.params`); `score.k` is cut to the sampled n."""
    backend: str
    model: str  # resolved: a path or a hub name
    options: dict
    chat: bool
    sampling: SamplingParams
    score: ScoreConfig
    seed: int  # the run seed: the --limit subset and (via sampling.seed) the per-sample seeds

    @classmethod
    def from_spec(cls, spec: Spec, *, temperature: float | None = None, model: str | None = None,
                  options: dict | None = None) -> EvalConfig:
        """The spec's T_eval evaluation; an arm's own temperature, model and extra backend options on top."""
        from selfdistill.generate.default_model import resolve_model

        g, d = spec.generation, spec.diagnostics
        return cls(
            backend=g.backend.value,
            model=resolve_model(spec.model.path if model is None else model, spec.model.name),
            options=dict(g.options) | dict(options or {}),
            chat=g.chat,
            sampling=SamplingParams(
                temperature=g.temperature if temperature is None else temperature, top_p=g.top_p, top_k=g.top_k,
                min_p=g.min_p, max_new_tokens=g.max_new_tokens, n=d.n, seed=d.seed),
            score=ScoreConfig(k=tuple(d.k), timeout_s=d.timeout_s, memory_mb=d.memory_mb,
                              bootstrap_resamples=d.bootstrap_resamples, seed=d.seed),
            seed=d.seed,
        )

    def params(self, problems: list[Problem]) -> SamplingParams:
        """The decode. A base model continuing HumanEval-style prompts (every problem has a prefix) stops where
        the function body ends (the stops the program builder cuts at); chat models, and base models writing
        whole programs, stop at end of turn / end of text."""
        from selfdistill.generate.prompts import BASE_STOP

        return replace(self.sampling, stop=BASE_STOP if not self.chat and all(p.prefix for p in problems) else ())


@dataclass(frozen=True)
class EvalPlan:
    arm: str
    arm_dir: Path
    problems: list[Problem]
    params: SamplingParams
    limit: int | None


def choose_problems(problems: list[Problem], limit: int | None, seed: int) -> list[Problem]:
    """All problems, or a seeded subset of `limit` of them (kept in task order)."""
    if limit is None or limit >= len(problems):
        return problems
    if limit < 1:
        raise DataError(f"error: --limit {limit} must be >= 1")
    keep = set(random.Random(seed).sample(range(len(problems)), limit))
    return [p for i, p in enumerate(problems) if i in keep]


def generation_record(cfg: EvalConfig, plan: EvalPlan) -> dict:
    return {
        "backend": cfg.backend,
        "model": cfg.model,
        "chat": cfg.chat,
        "options": dict(cfg.options),
        "sampling": plan.params.to_json(),
        "sampling_order": "temperature -> top-k -> top-p -> min-p -> sample",
        "seed_policy": "per sample: sha256(run seed, task_id, sample_idx) mod 2^31-1, +1",
        "limit": plan.limit,
        "problems": [p.task_id for p in plan.problems] if plan.limit else "all",
        "comparable": plan.limit is None,
    }


def guard_resume(arm_dir: Path, record: dict, write: bool = True) -> None:
    """Write generation.json on first run (when `write`); refuse to mix samples drawn with other settings."""
    path = arm_dir / "generation.json"
    if path.exists():
        old = read_json(path, "generation record")
        keys = ("backend", "model", "chat", "sampling", "limit", "problems")
        changed = [k for k in keys if old.get(k) != record.get(k)]
        drawn = any(p.stat().st_size for p in arm_dir.glob("samples*.jsonl"))  # merged, or a data-parallel rank's
        if changed and not drawn:  # nothing drawn yet: nothing to mix
            if write:
                write_json_atomic(path, record)
            return
        if changed:
            raise DataError(
                f"error: {arm_dir} was sampled with other settings ({', '.join(changed)} differ); "
                "its samples cannot be mixed with these: use another --arm name or run directory"
            )
        return
    if write:
        write_json_atomic(path, record)


def planned_requests(plan: EvalPlan, prompts: dict[str, object]) -> list[GenRequest]:
    """Every sample of the plan, each with its own seed (run seed, task_id, sample_idx)."""
    return [
        GenRequest(p.task_id, i, prompts[p.task_id], sample_seed(plan.params.seed, p.task_id, i))
        for p in plan.problems
        for i in range(plan.params.n)
    ]


def pending_requests(plan: EvalPlan, prompts: dict[str, object], done: set[tuple[str, int]]) -> list[GenRequest]:
    return [q for q in planned_requests(plan, prompts) if (q.task_id, q.sample_idx) not in done]


def sample_record(problem: Problem, result: GenResult, chat: bool) -> dict:
    from selfdistill.generate.prompts import program_from_completion

    extraction = program_from_completion(problem, result.text, chat)
    return {
        "task_id": result.task_id,
        "sample_idx": result.sample_idx,
        "seed": result.seed,
        "raw": result.text,
        "program": extraction.code if extraction.code is not None else "",  # no code: scored as a failure
        "extraction": str(extraction.method),
        "finish_reason": result.finish_reason,
        "completion_tokens": result.completion_tokens,
        "prompt_tokens": result.prompt_tokens,
    }


def live_share(cores: int) -> tuple[int, int]:
    """How generation and live scoring share `cores`: (sandbox workers, generation threads while a program runs).

    llama.cpp's threads spin-wait for each other at every decoding step, so when a sandboxed program takes the
    core of one of them, all of them stall: on 2 cores, decoding with 2 threads fell to 0.07x of its speed with
    `score` running beside it (0.57x with 1 thread). So the scorer gets a quarter of the cores (at least one
    worker) and generation the others while any program runs, and all of them again as soon as the scorer is
    idle (batched decoding hands over samples in bursts, so it mostly is); benchmarks/bench_share.py measures
    generating-while-scoring against generating-then-scoring."""
    workers = max(1, cores // 4)
    return workers, max(1, cores - workers)


class Scorer:
    """Scores samples in the sandbox while generation runs (a thread feeding the pool's workers); `on_busy(True)`
    when a program starts running with none running before, `on_busy(False)` when the last one ends."""

    def __init__(self, problems: dict[str, Problem], cfg: ScoreConfig, stream: JsonlStream, progress, *,
                 workers: int | None = None, on_busy=None) -> None:
        self._problems, self._cfg, self._stream, self._progress = problems, cfg, stream, progress
        self._workers = workers or cfg.workers
        self._on_busy = on_busy or (lambda busy: None)
        self._in_flight = 0
        self._lock = threading.Lock()
        self._queue: queue.Queue[Sample | None] = queue.Queue()
        self._samples: dict[str, Sample] = {}
        self._thread = threading.Thread(target=self._run, name="scorer", daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> Scorer:
        self._thread.start()
        return self

    def submit(self, record: dict) -> None:
        sample = Sample(record["task_id"], record["sample_idx"], record["program"])
        self._samples[sample.key] = sample
        self._busy(+1)
        self._queue.put(sample)

    def _busy(self, change: int) -> None:
        with self._lock:
            self._in_flight += change
            edge = (self._in_flight == 1 and change > 0) or (self._in_flight == 0 and change < 0)
            if edge:
                self._on_busy(self._in_flight > 0)

    def __exit__(self, *exc: object) -> None:
        self._queue.put(None)
        self._thread.join()

    def _jobs(self) -> Iterator[Job]:
        while (sample := self._queue.get()) is not None:
            p = self._problems[sample.task_id]
            yield Job(sample.key, sample.program, p.tests, p.entry_point, self._cfg.timeout_s, self._cfg.memory_mb)

    def _run(self) -> None:
        from selfdistill.execute.pool import SandboxPool

        try:
            with SandboxPool(workers=self._workers) as pool:
                record_isolation(self._stream.path.parent, pool.isolation)
                for outcome in pool.imap(self._jobs()):
                    record = outcome_record(self._samples[outcome.job_id], outcome)
                    self._stream.append(record)
                    self._progress.scored(record)
                    self._busy(-1)
        except BaseException as exc:  # surfaced by the caller after generation; score() finishes the rest
            self.error = exc
            self._on_busy(False)
            for _ in iter(lambda: self._queue.get() is not None, False):
                pass


def evaluate(cfg: EvalConfig, heldout: HeldoutSet, run_dir: Path, arm: str, limit: int | None, progress, *,
             run_spec: Spec) -> dict | None:
    """Generate, score and summarise one arm; return its metrics (None on a data-parallel rank that does
    not merge: generate/shards.py). `run_spec` is the run's spec as given, recorded in the manifest by the
    first stage (layout.record_run); the arm's own settings are `cfg`'s, kept in its generation.json. The
    arm directory is locked throughout: a second eval of it is refused (data-parallel ranks share it by
    design; the merging rank's scoring locks it)."""
    from selfdistill.generate.shards import data_parallel_size
    from selfdistill.score import exclusive_lock

    if not arm or arm in (".", "..") or Path(arm).name != arm or "\\" in arm:
        raise DataError(f"error: arm {arm!r}: give a plain name (a directory under the run directory: "
                        "no '/', no '..', not empty)")
    if data_parallel_size(cfg.backend, cfg.options) > 1:
        return _evaluate(cfg, heldout, run_dir, arm, limit, progress, run_spec)
    (run_dir / arm).mkdir(parents=True, exist_ok=True)
    with exclusive_lock(run_dir / arm, f"eval --arm {arm}"):
        return _evaluate(cfg, heldout, run_dir, arm, limit, progress, run_spec)


def _evaluate(cfg: EvalConfig, heldout: HeldoutSet, run_dir: Path, arm: str, limit: int | None, progress,
              run_spec: Spec) -> dict | None:
    from selfdistill.generate.backends import load_backend
    from selfdistill.generate.fill import fill_missing
    from selfdistill.generate.prompts import build_prompt
    from selfdistill.generate.shards import data_parallel_size, generate_shard

    problems = choose_problems(heldout.problems, limit, cfg.seed)
    plan = EvalPlan(arm, run_dir / arm, problems, cfg.params(problems), limit)
    plan.arm_dir.mkdir(parents=True, exist_ok=True)
    record = generation_record(cfg, plan)
    dp = data_parallel_size(cfg.backend, cfg.options) > 1  # vLLM data parallelism: every rank checks, rank 0 writes
    guard_resume(plan.arm_dir, record, write=not dp)
    if not dp:
        write_manifest(run_dir, run_spec, heldout)
    score_cfg = replace(cfg.score, k=tuple(k for k in cfg.score.k if k <= plan.params.n))
    by_id = {p.task_id: p for p in plan.problems}
    guard_sandbox(plan.arm_dir, score_cfg)  # before any outcome is appended: a resume under other limits is refused
    prompts = {p.task_id: build_prompt(p, cfg.chat) for p in plan.problems}
    if dp:  # each rank samples its share into its own file; DP rank 0 records, merges and scores
        prepare = lambda: (guard_resume(plan.arm_dir, record), write_manifest(run_dir, run_spec, heldout))  # noqa: E731
        if not generate_shard(cfg, plan, prompts, load_backend, prepare):
            return None  # not the merging rank
    fill_missing(
        plan.arm_dir / "samples.jsonl", planned_requests(plan, prompts), plan.params,
        lambda: load_backend(cfg.backend, cfg.model, chat=cfg.chat, options=cfg.options),
        lambda result: sample_record(by_id[result.task_id], result, cfg.chat),
        progress=progress, started=lambda backend: live_scoring(backend, plan, by_id, score_cfg, progress),
    )
    metrics = score(plan.problems, plan.arm_dir / "samples.jsonl", plan.arm_dir, score_cfg,
                    heldout.provenance | {"arm": arm, "limit": limit, "comparable": limit is None})
    metrics["generation"] = (read_json(plan.arm_dir / "generation.json", "generation record")
                             | summarize_samples(plan.arm_dir))
    write_json_atomic(plan.arm_dir / "metrics.json", metrics)
    return metrics


@contextmanager
def live_scoring(backend, plan: EvalPlan, by_id: dict[str, Problem], cfg: ScoreConfig, progress):
    """Around the eval stage's generation: record the backend, and score each sample as it is appended (the
    sink yielded); what the scorer could not finish is scored after generation."""
    description = backend.describe()
    # an HTTP server: what each request carries (refuses what it cannot honour)
    if hasattr(backend, "request_body"):
        description["request_body"] = backend.request_body(plan.params)
    workers, threads_while_scoring = live_share(_cores())
    workers = cfg.workers or workers
    set_threads = getattr(backend, "set_threads", None)  # llamacpp: fewer threads while a program runs

    def on_busy(busy: bool) -> None:
        if set_threads:
            set_threads(threads_while_scoring if busy else None)

    description["live_scoring"] = {"workers": workers,
                                   "generation_threads_while_scoring":
                                       threads_while_scoring if set_threads else None}
    record_backend(plan.arm_dir, description)
    with JsonlStream(plan.arm_dir / "outcomes.jsonl") as outcomes, \
            Scorer(by_id, cfg, outcomes, progress, workers=workers, on_busy=on_busy) as scorer:
        yield scorer.submit
    if scorer.error:
        log.warning("live scoring stopped (%s); scoring the rest after generation", scorer.error)


def _cores() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def record_backend(arm_dir: Path, description: dict) -> None:
    path = arm_dir / "generation.json"
    data = read_json(path, "generation record")
    data.setdefault("backend_runs", []).append(description | {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    write_json_atomic(path, data)


def summarize_samples(arm_dir: Path) -> dict:
    """Share of samples with no extractable code, truncation and token counts: reported, never hidden."""
    from selfdistill.rundir import read_jsonl

    records = [r for _, r in read_jsonl(arm_dir / "samples.jsonl", "samples file")]
    n = len(records) or 1
    tokens = sorted(r["completion_tokens"] for r in records)
    return {
        "n_samples": len(records),
        "no_code_share": sum(r["extraction"] == "none" for r in records) / n,
        "truncated_share": sum(r["finish_reason"] == "length" for r in records) / n,
        "completion_tokens_total": sum(tokens),
        "completion_tokens_median": tokens[len(tokens) // 2] if tokens else 0,
        "extraction_methods": {m: sum(r["extraction"] == m for r in records)
                               for m in {r["extraction"] for r in records}},
    }


def write_manifest(run_dir: Path, spec: Spec, heldout: HeldoutSet) -> None:
    """The run's record, written once by the first stage (layout.record_run): an arm evaluated later, with
    its own temperature and model, keeps its settings in its own generation.json, not in the manifest."""
    from selfdistill import layout

    layout.record_run(run_dir, spec, heldout)
