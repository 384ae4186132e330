"""The cost ledger: wall time and devices per stage, appended to `<run>/ledger.jsonl` as each stage ends.

One record per stage invocation: {stage, arm, wall_s, device ("cpu" | "cuda"), device_count,
device_hours = wall_s x device_count / 3600, gpu_hours (device_hours on GPUs, else 0), started,
finished}. A stage invocation that ends appends its record (one that raised: with `ended` saying so, its
hours were spent all the same); a stage skipped because it was done appends nothing. While it runs, an
invocation keeps an open record in `<run>/ledger.open/` with a heartbeat every HEARTBEAT_S seconds; one that is
KILLED (even SIGKILL) leaves it behind, and the next stage that starts in that run appends it, its wall time
up to its last heartbeat, `ended: "killed"`. So the resumed invocation's record counts the rest and the
totals count both (to within one heartbeat).

`totals` sums per stage (sampling, training, evaluation) and overall; `accuracy_per_hour` divides a
pass@1 by the hours that produced it (device-hours, and GPU-hours where there were any).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import defaultdict
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path

from selfdistill.layout import LEDGER, STAGES
from selfdistill.rundir import JsonlStream, read_jsonl, write_json_atomic

OPEN = "ledger.open"  # the open records of invocations still running (or killed)
HEARTBEAT_S = 10.0


def ledger_path(run_dir: Path) -> Path:
    return run_dir / LEDGER


@contextmanager
def timed(run_dir: Path, stage: str, arm: str, device: str = "cpu", device_count: int = 1):
    """Time the block and append its record when it ends (raised: marked `ended: failed (...)`; killed: appended
    later by `recover_killed` from its open record). `note` may be set on the yielded dict, and
    `moved_s`: seconds of the block already recorded under another record (GRPO's reward scoring on a CPU run),
    taken out of this one's wall and kept beside it."""
    recover_killed(run_dir)
    extra: dict = {}
    started = time.time()
    beat = _Heartbeat(run_dir, {"stage": stage, "arm": arm, "device": device, "device_count": device_count,
                                "started": started, "pid": os.getpid()})
    try:
        yield extra
    except BaseException as exc:
        extra["ended"] = f"failed ({type(exc).__name__})"
        raise
    finally:
        beat.stop()
        finished = time.time()
        wall = max(0.0, finished - started - extra.get("moved_s", 0.0))
        _append(run_dir, stage, arm, wall, extra.pop("device", device), extra.pop("device_count", device_count),
                started, extra, finished)
        beat.close()


def _append(run_dir: Path, stage: str, arm: str, wall: float, device: str, device_count: int, started: float,
            extra: dict, finished: float | None = None) -> None:
    record = {
        "stage": stage,
        "arm": arm,
        "wall_s": round(wall, 3),
        "device": device,
        "device_count": device_count,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started + wall if finished is None
                                                                          else finished)),
        **extra,
    }
    record["device_hours"] = record["wall_s"] * record["device_count"] / 3600
    record["gpu_hours"] = record["device_hours"] if record["device"] == "cuda" else 0.0
    with JsonlStream(ledger_path(run_dir)) as stream:
        stream.append(record)


class _Heartbeat:
    """The open record of a running invocation, its `beat` rewritten every HEARTBEAT_S seconds by a thread."""

    def __init__(self, run_dir: Path, record: dict):
        self.path = Path(run_dir) / OPEN / f"{os.getpid()}-{uuid.uuid4().hex[:12]}.json"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.record, self.done = record, threading.Event()
        self._write()
        self.thread = threading.Thread(target=self._run, name="ledger-heartbeat", daemon=True)
        self.thread.start()

    def _write(self) -> None:
        write_json_atomic(self.path, self.record | {"beat": time.time()})

    def _run(self) -> None:
        while not self.done.wait(HEARTBEAT_S):
            with suppress(OSError):  # a full disk must not kill the stage; the record is written at its end anyway
                self._write()

    def stop(self) -> None:
        self.done.set()
        self.thread.join()

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover_killed(run_dir: Path) -> int:
    """Append the record of every invocation of this run that was killed (its open record left behind: its
    process is gone, or its heartbeat stopped) with its wall time up to its last heartbeat; return how many."""
    folder = Path(run_dir) / OPEN
    found = 0
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # being written right now, or torn: the next stage looks again
        stale = time.time() - rec["beat"] > 3 * HEARTBEAT_S
        if not stale and _alive(rec["pid"]):
            continue  # still running (this process's own open stages among them)
        _append(run_dir, rec["stage"], rec["arm"], max(0.0, rec["beat"] - rec["started"]), rec["device"],
                rec["device_count"], rec["started"], {"ended": "killed (wall time up to its last heartbeat)"})
        path.unlink(missing_ok=True)
        found += 1
    return found


def append_record(run_dir: Path, stage: str, arm: str, wall_s: float, device: str = "cpu", device_count: int = 1,
                  **extra) -> None:
    """A record for work timed elsewhere (the sandbox's reward scoring inside a training job), same fields."""
    _append(run_dir, stage, arm, wall_s, device, device_count, time.time() - wall_s, extra)


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
