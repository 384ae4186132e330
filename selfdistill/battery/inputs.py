"""The battery's inputs: one model's samples, metrics and probe completions, and their alignment.

`ArmInputs` holds what `run_battery` reads for one model (base or a distilled arm); `load_arm` reads
it from a run directory. `align` keeps the samples both models have, matched by (task_id,
sample_idx), so numbers that depend on corpus size (distinct-n) compare like with like; a sample
without `sample_idx` takes its position among its task's samples.

Not here: the safety probe completions' file (the lead's generation stage owns where they live).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from selfdistill.battery.probes import code_tokens
from selfdistill.errors import DataError
from selfdistill.rundir import read_json, read_jsonl


@dataclass(frozen=True)
class ArmInputs:
    """One model's battery inputs. `samples`: the records of `<arm>/samples.jsonl`; `metrics`: the
    dict of `<arm>/metrics.json`; `probes`: safety probe completions {probe_id, kind, sample_idx,
    raw}, or None when not generated; `name` only labels the result and error messages."""

    samples: Sequence[Mapping]
    metrics: Mapping
    probes: Sequence[Mapping] | None = None
    name: str = ""


def load_arm(arm_dir: str | Path, probes: Sequence[Mapping] | None = None, name: str | None = None) -> ArmInputs:
    """ArmInputs from `<arm_dir>/samples.jsonl` and `<arm_dir>/metrics.json` (DataError if missing)."""
    arm_dir = Path(arm_dir)
    samples = [r for _, r in read_jsonl(arm_dir / "samples.jsonl", "samples file")]
    metrics = read_json(arm_dir / "metrics.json", "metrics file")
    return ArmInputs(samples, metrics, probes, name or arm_dir.name)


def label(role: str, inputs: ArmInputs) -> str:
    return f"{role} ({inputs.name})" if inputs.name else role


def _keyed(inputs: ArmInputs, who: str) -> dict[tuple[str, int], Mapping]:
    out: dict[tuple[str, int], Mapping] = {}
    seen: Counter[str] = Counter()
    for i, s in enumerate(inputs.samples):
        if not isinstance(s, Mapping) or "task_id" not in s or not isinstance(s.get("raw"), str):
            raise DataError(
                f"error: {who} sample #{i} must be a dict with 'task_id' and a string 'raw', got {s!r:.120}; "
                "regenerate <arm>/samples.jsonl"
            )
        task = str(s["task_id"])
        idx = s.get("sample_idx", seen[task])
        seen[task] += 1
        if isinstance(idx, bool) or not isinstance(idx, int) or (task, idx) in out:
            problem = "is not an integer" if not isinstance(idx, int) or isinstance(idx, bool) else "appears twice"
            raise DataError(
                f"error: {who} sample #{i}: ({task}, sample_idx={idx!r}) {problem}; each sample needs a unique integer "
                f"sample_idx per task"
            )
        out[(task, idx)] = s
    if not out:
        raise DataError(f"error: {who} has no samples; run the generate stage for it first")
    return out


def _check_metrics(inputs: ArmInputs, who: str) -> None:
    m = inputs.metrics
    if not isinstance(m, Mapping) or not isinstance(m.get("metrics"), Mapping):
        raise DataError(
            f"error: {who} metrics must be the dict of <arm>/metrics.json with a 'metrics' table "
            f"(pass@1, pass@k, ...), got {m!r:.120}; rerun the score stage for it"
        )


def align(base: ArmInputs, arm: ArmInputs) -> tuple[list[Mapping], list[Mapping], dict]:
    """The samples both models have, in (task_id, sample_idx) order, so corpus-size-dependent
    numbers (distinct-n) compare like with like. Also checks both metrics dicts have their table."""
    _check_metrics(base, label("base", base))
    _check_metrics(arm, label("arm", arm))
    b, a = _keyed(base, label("base", base)), _keyed(arm, label("arm", arm))
    shared = sorted(set(b) & set(a))
    if not shared:
        raise DataError(
            f"error: {label('base', base)} and {label('arm', arm)} share no (task_id, sample_idx) pairs; "
            "the battery compares samples of the same held-out prompts: generate both from one held-out set"
        )
    info = {"compared": len(shared), "base_only": len(b) - len(shared), "arm_only": len(a) - len(shared)}
    return [b[k] for k in shared], [a[k] for k in shared], info


def lengths(base: list[Mapping], arm: list[Mapping]) -> tuple[list[float], list[float], str]:
    def ok(s: Mapping) -> bool:
        v = s.get("completion_tokens")
        return isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0

    if all(map(ok, base)) and all(map(ok, arm)):
        return [s["completion_tokens"] for s in base], [s["completion_tokens"] for s in arm], "completion_tokens"
    missing = sum(not ok(s) for s in base + arm)
    unit = f"code tokens of raw (completion_tokens missing in {missing} samples; both models measured this way)"
    return [len(code_tokens(s["raw"])) for s in base], [len(code_tokens(s["raw"])) for s in arm], unit
