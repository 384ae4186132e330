"""Everything the report reads, read once from the run directory into a `Run`.

Optional files that are absent become None (their section says what is missing); a file that is there
but is not JSON, or lacks a field the report needs, is a DataError naming the file and the field.
Nothing else is read: not the spec file, not the model, not the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from selfdistill import layout
from selfdistill.errors import DataError
from selfdistill.layout import ROUND
from selfdistill.rundir import read_json, read_jsonl

# file -> the fields the report indexes without a fallback ("a.b" = nested)
REQUIRED = {
    "verdict": ("overall.kind", "overall.rule_id", "summary"),
    "metrics": ("ks", "metrics.pass@1"),
    "round": ("arms", "t_eval", "sweep", "deltas", "sampling", "costs"),
    "battery": ("arms",),
    "gate": ("decision", "checks"),
    "promotion": ("candidate", "blocked"),
    "ledger": ("stage", "wall_s", "device_hours", "gpu_hours"),
}


@dataclass(frozen=True)
class Run:
    dir: Path
    manifest: dict | None
    verdict: dict | None
    verdict_md: str | None
    arms: dict[str, dict]  # evaluation directory name (base, ssd-T1.1, ...) -> metrics.json
    lengths: dict[str, list[int]]  # evaluation directory name -> completion_tokens per sample
    round: dict | None
    battery: dict | None
    gate: dict | None
    promotion: dict | None
    ledger: list[dict] | None

    @property
    def spec(self) -> dict:
        for source in (self.manifest, self.verdict):
            if source and isinstance(source.get("spec"), Mapping):
                return source["spec"]
        return {}

    @property
    def round_stamp(self) -> dict:
        return ((self.manifest or {}).get("rounds") or {}).get(ROUND) or {}

    @property
    def forced(self) -> bool:
        return bool((self.round or {}).get("forced") or self.round_stamp.get("forced"))

    @property
    def limit(self) -> int | None:
        for source in ((self.round or {}).get("limit"), self.round_stamp.get("limit")):
            if source is not None:
                return source
        return None

    @property
    def comparable(self) -> bool:
        flags = [(self.round or {}).get("comparable", True), (self.verdict or {}).get("comparable", True)]
        return all(flags) and self.limit is None

    @property
    def verdict_kind(self) -> str | None:
        return self.verdict["overall"]["kind"] if self.verdict else None


def _has(data: Mapping, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(data, Mapping) or part not in data:
            return False
        data = data[part]
    return True


def check_fields(data, path: Path, kind: str) -> dict:
    if not isinstance(data, dict):
        raise DataError(f"error: {path} holds a JSON {type(data).__name__}, not an object; it is damaged")
    missing = [f for f in REQUIRED.get(kind, ()) if not _has(data, f)]
    if missing:
        raise DataError(
            f"error: {path} lacks {', '.join(missing)}; it is damaged or was written by another selfdistill "
            "version: rerun the stage that writes it"
        )
    return data


def _optional(path: Path, kind: str) -> dict | None:
    """The file's record, or None when it is absent; its fields and (for a stage summary) its schema tag checked."""
    if not path.is_file():
        return None
    data = check_fields(read_json(path, f"{kind} file"), path, kind)
    return layout.check_schema(data, path, kind) if kind in layout.SCHEMAS else data


def _lengths(path: Path) -> list[int]:
    out = []
    for lineno, record in read_jsonl(path, "samples file"):
        tokens = record.get("completion_tokens")
        if isinstance(tokens, bool) or not isinstance(tokens, int):
            raise DataError(f"error: {path}:{lineno} has completion_tokens={tokens!r}; expected a whole number")
        out.append(tokens)
    return out


def _arms(run_dir: Path) -> tuple[dict[str, dict], dict[str, list[int]]]:
    arms, lengths = {}, {}
    for d in sorted(p for p in run_dir.iterdir() if p.is_dir() and p.name != ROUND):
        if (d / layout.METRICS).is_file():
            arms[d.name] = _optional(d / layout.METRICS, "metrics")
        if (d / layout.SAMPLES).is_file():
            lengths[d.name] = _lengths(d / layout.SAMPLES)
    return arms, lengths


def _ledger(path: Path) -> list[dict] | None:
    if not path.is_file():
        return None
    rows = []
    for lineno, record in read_jsonl(path, "cost ledger"):
        rows.append(check_fields(record, Path(f"{path}:{lineno}"), "ledger"))
    return rows


def load_run(run_dir: Path) -> Run:
    """Read the run directory. Raises DataError when it is not a directory or a file in it is damaged."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"error: run directory {run_dir} does not exist; pass the --run-dir of a selfdistill run")
    base = run_dir / layout.BASE
    verdict_md = base / layout.VERDICT_MD
    arms, lengths = _arms(run_dir)
    return Run(
        dir=run_dir,
        manifest=_optional(run_dir / layout.MANIFEST, "manifest"),
        verdict=_optional(base / layout.VERDICT, "verdict"),
        verdict_md=verdict_md.read_text(encoding="utf-8", errors="replace") if verdict_md.is_file() else None,
        arms=arms,
        lengths=lengths,
        round=_optional(run_dir / ROUND / layout.ROUND_SUMMARY, "round"),
        battery=_optional(run_dir / ROUND / layout.BATTERY, "battery"),
        gate=_optional(run_dir / ROUND / layout.GATE, "gate"),
        promotion=_optional(run_dir / ROUND / layout.PROMOTION, "promotion"),
        ledger=_ledger(run_dir / layout.LEDGER),
    )
