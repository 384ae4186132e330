"""The run directory's layout, in one place: the names of its directories and files, the manifest and who
writes each of its keys, and the schema tags a reader checks.

    <run>/manifest.json            the run's record (keys and their one writer: MANIFEST_OWNERS)
    <run>/ledger.jsonl             wall time and devices per stage (ssd/ledger.py)
    <run>/base/                    the diagnostic base arm: metrics.json, verdict.json, verdict.md
    <run>/<arm>-T<t>/              an evaluated arm at T_eval = t (`r<N>-<arm>-T<t>` in round N > 1)
    <run>/round<N>/                a round: pool.json, samples/, verify/, train-<arm>/, round.json,
                                   battery.json, gate.json, promotion.json, probes/

The manifest has exactly one writer per key, so no stage can overwrite what another recorded:

    created, selfdistill_version, python, platform, spec, heldout
                    `record_run`: once, by the first stage that runs (the spec as the spec file resolves
                    to, and the held-out set the run evaluates on); never rewritten afterwards
    rounds          `stamp_round`: per round, its own entry (forced, limit, the round's spec hash and,
                    for round 2+, its own held-out slice and the spec it ran with)
    battery, gate   `declare`: sealed once when T_train sampling starts (values and their hash); a later
                    stage compares the spec against them, it never rewrites them

Each arm's own settings (model, temperature, sampling) live in its directory (`generation.json`), not in
the manifest.

Schema tags: every summary a stage writes carries `schema`; `read_record` refuses a file whose tag is
not the one this version writes (exit 2, naming the file, both tags and the fix).

Not here: what the records mean (each stage owns its fields), JSON I/O itself (rundir.py).
"""

from __future__ import annotations

import copy
import hashlib
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

from selfdistill.errors import DataError
from selfdistill.rundir import read_json, write_json_atomic

MANIFEST = "manifest.json"
LEDGER = "ledger.jsonl"
BASE = "base"  # the diagnostic base arm: the precondition's evaluation and verdict
METRICS = "metrics.json"
VERDICT = "verdict.json"
VERDICT_MD = "verdict.md"
GENERATION = "generation.json"
SAMPLES = "samples.jsonl"
POOL = "pool.json"
ROUND_SUMMARY = "round.json"
BATTERY = "battery.json"
GATE = "gate.json"
PROMOTION = "promotion.json"

# the cost ledger's stages, in pipeline order (report tables follow it)
STAGES = ("precondition", "sampling", "verification", "scoring", "training", "export", "evaluation", "probes")

# the schema tag each summary carries; a reader accepts exactly these
SCHEMAS = {
    "metrics": "selfdistill.metrics/1",
    "verdict": "selfdistill.verdict/1",
    "round": "selfdistill.round/1",
    "battery": "selfdistill.battery-run/1",
    "gate": "selfdistill.gate/1",
    "promotion": "selfdistill.promotion/1",
}

RUN_KEYS = ("created", "selfdistill_version", "python", "platform", "spec", "heldout")
MANIFEST_OWNERS = {**{k: "record_run" for k in RUN_KEYS}, "rounds": "stamp_round", "battery": "declare",
                   "gate": "declare"}


def round_name(number: int = 1) -> str:
    return f"round{number}"


ROUND = round_name(1)


def round_dir(run_dir: Path, number: int = 1) -> Path:
    return Path(run_dir) / round_name(number)


def round_file(run_dir: Path, name: str, number: int = 1) -> Path:
    """A round's summary file: round_file(run, GATE) is <run>/round1/gate.json."""
    return round_dir(run_dir, number) / name


def train_dir(round_path: Path, arm: str) -> Path:
    return round_path / f"train-{arm}"


def arm_dir_name(arm: str, t: float, diagnostic_t: float, number: int = 1) -> str:
    """An evaluated arm's directory: `base` for the base at the diagnostic temperature in round 1,
    `<arm>-T<t>` otherwise, prefixed `r<N>-` in round N > 1."""
    if number > 1:
        return f"r{number}-{arm}-T{t:g}"
    if arm == "base" and t == diagnostic_t:
        return BASE
    return f"{arm}-T{t:g}"


def stage_label(name: str, number: int = 1) -> str:
    """Ledger labels: round 1 keeps the plain names; later rounds are prefixed r<N>-."""
    return name if number == 1 else f"r{number}-{name}"


# --- schema tags -----------------------------------------------------------------------------------------

def check_schema(data: dict, path: Path, kind: str) -> dict:
    """`data` as read from `path`, if its schema tag is the one this version writes for `kind`."""
    want, got = SCHEMAS[kind], data.get("schema") if isinstance(data, dict) else None
    if got != want:
        found = f"schema {got!r}" if got is not None else "no schema tag"
        raise DataError(
            f"error: {path} carries {found}; this selfdistill version reads {want!r}: it was written by "
            "another selfdistill version (or by hand). Rerun the stage that writes it with this version, "
            "or read the run with the version that wrote it"
        )
    return data


def read_record(path: Path, kind: str, what: str | None = None) -> dict:
    """Read a stage's summary (metrics, verdict, round, battery, gate, promotion) and check its tag."""
    return check_schema(read_json(path, what or f"{kind} file"), path, kind)


# --- the manifest ----------------------------------------------------------------------------------------

def manifest_path(run_dir: Path) -> Path:
    return Path(run_dir) / MANIFEST


def read_manifest(run_dir: Path) -> dict:
    path = manifest_path(run_dir)
    return read_json(path, "run manifest") if path.exists() else {}


def _update(run_dir: Path, owner: str, change: Callable[[dict], None]) -> dict:
    """Read, change and write the manifest, refusing (as a bug) a change to a key `owner` does not own."""
    manifest = read_manifest(run_dir)
    before = copy.deepcopy(manifest)
    change(manifest)
    touched = {k for k in set(before) | set(manifest) if before.get(k) != manifest.get(k)}
    foreign = sorted(k for k in touched if MANIFEST_OWNERS.get(k) != owner)
    if foreign:
        raise RuntimeError(f"manifest writer {owner} changed keys it does not own: {', '.join(foreign)}")
    if touched:
        write_json_atomic(manifest_path(run_dir), manifest)
    return manifest


def spec_json(spec) -> dict:
    return spec.model_dump(mode="json")


def spec_sha256(spec) -> str:
    return hashlib.sha256(json.dumps(spec_json(spec), sort_keys=True).encode()).hexdigest()


def record_run(run_dir: Path, spec, heldout) -> dict:
    """The run's spec, versions and held-out provenance: written once, by the first stage that runs."""
    from selfdistill import __version__

    def change(m: dict) -> None:
        if "spec" in m:
            return
        m.setdefault("created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        m |= {"selfdistill_version": __version__, "python": platform.python_version(),
              "platform": platform.platform(), "spec": spec_json(spec), "heldout": heldout.provenance}

    return _update(run_dir, "record_run", change)


def stamp_round(run_dir: Path, number: int, *, forced: bool, limit: int | None, spec, heldout) -> dict:
    """The round's own entry under `rounds`: forced (once forced, always), limit, the spec it ran with (its
    hash; in full for round 2+, whose spec differs) and its held-out slice (round 2+ evaluates on a fresh one)."""

    def change(m: dict) -> None:
        entry = m.setdefault("rounds", {}).setdefault(round_name(number), {"forced": False})
        entry["forced"] = bool(entry.get("forced")) or forced
        entry["limit"] = limit
        entry["spec_sha256"] = spec_sha256(spec)
        if number > 1:
            entry["spec"] = spec_json(spec)
            entry["heldout"] = heldout.provenance

    return _update(run_dir, "stamp_round", change)


def declare(run_dir: Path, key: str, record: dict) -> dict:
    """Seal `record` under `key` (battery, gate) unless already sealed; return what the manifest holds."""
    sealed: dict = {}

    def change(m: dict) -> None:
        m.setdefault(key, record)
        sealed.update(m[key])

    Path(run_dir).mkdir(parents=True, exist_ok=True)
    _update(run_dir, "declare", change)
    return sealed


def values_sha256(values: dict) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def changed_keys(declared: dict, now: dict) -> list[str]:
    return sorted(k for k in set(declared) | set(now) if declared.get(k) != now.get(k))
