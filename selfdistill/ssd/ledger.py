"""The cost ledger: wall time and devices per stage, appended to `<run>/ledger.jsonl` as each stage ends.

One record per stage invocation: {stage, arm, wall_s, device ("cpu" | "cuda"), device_count,
device_hours = wall_s x device_count / 3600, gpu_hours (device_hours on GPUs, else 0), started,
finished}. A stage invocation that ends (normally) appends its record; a stage skipped because it was
done appends nothing. An invocation that is KILLED appends nothing: its work is kept (samples, checkpoints)
and the resumed invocation's record counts only the rest, so totals can understate what a round that was
killed really cost (the wall time lost to the kill is not recorded).

`totals` sums per stage (sampling, training, evaluation) and overall; `accuracy_per_hour` divides a
pass@1 by the hours that produced it (device-hours, and GPU-hours where there were any).
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from pathlib import Path

from selfdistill.layout import LEDGER, STAGES
from selfdistill.rundir import JsonlStream, read_jsonl


def ledger_path(run_dir: Path) -> Path:
    return run_dir / LEDGER


@contextmanager
def timed(run_dir: Path, stage: str, arm: str, device: str = "cpu", device_count: int = 1):
    """Time the block and append its record when it ends normally. `note` may be set on the yielded dict, and
    `moved_s`: seconds of the block already recorded under another record (GRPO's reward scoring on a CPU run),
    taken out of this one's wall and kept beside it."""
    extra: dict = {}
    started = time.time()
    yield extra
    wall = max(0.0, time.time() - started - extra.get("moved_s", 0.0))
    hours = wall * device_count / 3600
    record = {
        "stage": stage,
        "arm": arm,
        "wall_s": round(wall, 3),
        "device": extra.pop("device", device),
        "device_count": extra.pop("device_count", device_count),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }
    record["device_hours"] = record["wall_s"] * record["device_count"] / 3600 if record["device_count"] else hours
    record["gpu_hours"] = record["device_hours"] if record["device"] == "cuda" else 0.0
    with JsonlStream(ledger_path(run_dir)) as stream:
        stream.append(record)


def append_record(run_dir: Path, stage: str, arm: str, wall_s: float, device: str = "cpu", device_count: int = 1,
                  **extra) -> None:
    """A record for work timed elsewhere (the sandbox's reward scoring inside a training job), same fields."""
    now = time.time()
    hours = wall_s * device_count / 3600
    record = {"stage": stage, "arm": arm, "wall_s": round(wall_s, 3), "device": device, "device_count": device_count,
              "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now - wall_s)),
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now)), **extra,
              "device_hours": hours, "gpu_hours": hours if device == "cuda" else 0.0}
    with JsonlStream(ledger_path(run_dir)) as stream:
        stream.append(record)


def timed_if(work: bool, run_dir: Path, stage: str, arm: str, device: str = "cpu", device_count: int = 1):
    """`timed` when the stage has work to do; a stage read back as done appends nothing."""
    return timed(run_dir, stage, arm, device, device_count) if work else nullcontext({})


def read_ledger(run_dir: Path) -> list[dict]:
    path = ledger_path(run_dir)
    return [r for _, r in read_jsonl(path, "cost ledger")] if path.exists() else []


def totals(records: list[dict]) -> dict:
    """Per stage and overall: wall seconds, device-hours, GPU-hours."""
    by_stage: dict[str, dict] = defaultdict(lambda: {"wall_s": 0.0, "device_hours": 0.0, "gpu_hours": 0.0, "runs": 0})
    for r in records:
        row = by_stage[r["stage"]]
        row["wall_s"] += r["wall_s"]
        row["device_hours"] += r["device_hours"]
        row["gpu_hours"] += r["gpu_hours"]
        row["runs"] += 1
    overall = {k: sum(v[k] for v in by_stage.values()) for k in ("wall_s", "device_hours", "gpu_hours", "runs")}
    return {"stages": {s: by_stage[s] for s in STAGES if s in by_stage}, "overall": overall}


def arm_hours(records: list[dict], arms: set[str]) -> dict:
    """Hours spent on records whose arm is in `arms` (e.g. one training arm plus the shared sampling)."""
    rows = [r for r in records if r["arm"] in arms]
    return {k: sum(r[k] for r in rows) for k in ("wall_s", "device_hours", "gpu_hours")}


def accuracy_per_hour(pass_at_1: float, hours: dict) -> dict:
    return {
        "per_device_hour": pass_at_1 / hours["device_hours"] if hours["device_hours"] > 0 else None,
        "per_gpu_hour": pass_at_1 / hours["gpu_hours"] if hours["gpu_hours"] > 0 else None,
    }
