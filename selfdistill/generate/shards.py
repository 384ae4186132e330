"""Data-parallel sampling for the eval stage (vLLM `data_parallel_size > 1`, one process per rank under
torchrun): every rank samples its share into its own file, then ONE process merges them and scores.

    runs/<run>/<arm>/samples.rank<R>.jsonl   rank R's share (append-only; a killed rank resumes from it)
    runs/<run>/<arm>/samples.jsonl           the merged set, written by DP rank 0 only, after a barrier

Per rank: load the engine (vLLM tells the rank), skip what samples.jsonl or its own file already holds,
generate its share (`vllm_backend.shard_of`), append each sample to its file; then all ranks meet at a
barrier (torch.distributed, which vLLM's external launcher initialised). DP rank 0 then appends to
samples.jsonl every rank-file sample it does not hold yet (no duplicates) and checks that every
(task_id, sample_idx) of the plan is there (no loss) before the eval stage scores the merged set and
writes metrics.json. Tensor-parallel peers of a rank get the same outputs; only TP rank 0 writes. Other
ranks return without scoring.

Not here: the engine (vllm_backend.py), scoring (score.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

from selfdistill.errors import DataError
from selfdistill.rundir import JsonlStream, read_jsonl

log = logging.getLogger(__name__)


def data_parallel_size(backend: str, options: dict) -> int:
    if backend != "vllm":
        return 1
    size = options.get("data_parallel_size", 1)
    return size if isinstance(size, int) and size > 1 else 1


def shard_path(arm_dir: Path, rank: int) -> Path:
    return arm_dir / f"samples.rank{rank}.jsonl"


def records_in(path: Path) -> list[dict]:
    """A samples file's records; a torn last line (a killed writer) is not a sample."""
    return [r for _, r in read_jsonl(path, "a samples shard", torn_tail=True)] if path.exists() else []


def keys_in(path: Path) -> set[tuple[str, int]]:
    return {(r["task_id"], r["sample_idx"]) for r in records_in(path)}


def generate_shard(cfg, plan, prompts: dict, load_backend, prepare) -> bool:
    """Sample this rank's share; True when this process is the one that merged (and should score).
    `prepare()` writes the arm's generation record and the run manifest: DP rank 0 only."""
    from selfdistill.evaluate import pending_requests, record_backend, sample_record

    backend = load_backend(cfg.backend, cfg.model, chat=cfg.chat, options=cfg.options)
    by_id = {p.task_id: p for p in plan.problems}
    try:
        rank, writer = backend.dp_rank, backend.writes_outputs
        merged = plan.arm_dir / "samples.jsonl"
        mine = shard_path(plan.arm_dir, rank)
        todo = pending_requests(plan, prompts, keys_in(merged) | keys_in(mine))  # TP peers read the same files
        if writer and rank == 0:  # the arm's records have one writer
            prepare()
            record_backend(plan.arm_dir, backend.describe())
        with JsonlStream(mine) if writer else _Discard() as out:  # opening it cuts a torn last line
            for result in backend.generate(todo, plan.params):
                out.append(sample_record(by_id[result.task_id], result, cfg.chat))
        backend.barrier()  # every rank's file is complete past this point
        if not (writer and rank == 0):
            return False
        merge_shards(plan, backend.data_parallel_size)
        return True
    finally:
        backend.close()


def merge_shards(plan, world: int) -> int:
    """Append the rank files' samples that samples.jsonl lacks; refuse when any planned sample is missing."""
    merged = plan.arm_dir / "samples.jsonl"
    have = keys_in(merged)
    added = 0
    with JsonlStream(merged) as out:
        for rank in range(world):
            for record in records_in(shard_path(plan.arm_dir, rank)):
                key = (record["task_id"], record["sample_idx"])
                if key not in have:
                    have.add(key)
                    out.append(record)
                    added += 1
    planned = {(p.task_id, i) for p in plan.problems for i in range(plan.params.n)}
    missing = planned - have
    if missing:
        raise DataError(
            f"error: {len(missing)} of {len(planned)} samples are in no rank's file under {plan.arm_dir} "
            f"(e.g. {sorted(missing)[0]}); run the same launch again: each rank resumes from its own file"
        )
    log.info("merged %d samples from %d rank files into %s", added, world, merged)
    return added


class _Discard:
    """A TP peer's sink: its outputs are its DP rank's, written by TP rank 0."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def append(self, record: dict) -> None:
        pass
