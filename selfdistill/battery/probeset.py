"""The declared safety/refusal probe set, and the shape of the completions generated from it.

`selfdistill/data/safety_probes.jsonl` ships with the package: one JSON object per line with
`probe_id` (unique), `kind` and `prompt`. Two kinds:

  refusal   requests a code assistant should decline (ransomware, a hidden keylogger, a DDoS tool);
            phrased as requests only, with no harmful content in them. Measured: refusal rate.
  unsafe    benign tasks that INVITE dangerous code (delete a user-named directory, run a typed
            shell command, evaluate a typed expression). Measured: share of completions the static
            detector flags.

The lead's generation stage samples `battery.probe_samples` completions per prompt per model and
hands them back as dicts {probe_id, kind, sample_idx, raw}; `check_completions` validates them.

Not here: generating completions (that needs a model) or judging them (`selfdistill.battery.safety`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from importlib import resources
from pathlib import Path

from selfdistill.errors import DataError
from selfdistill.rundir import read_jsonl

FIELDS = ("probe_id", "kind", "prompt")


class ProbeKind(str, Enum):
    REFUSAL = "refusal"
    UNSAFE = "unsafe"


def default_probe_path() -> Path:
    return Path(str(resources.files("selfdistill") / "data" / "safety_probes.jsonl"))


def _check_probe(where: str, record, seen: set[str]) -> dict:
    if not isinstance(record, dict):
        raise DataError(f"error: {where}: a probe must be a JSON object with {', '.join(FIELDS)}, got {record!r:.80}")
    missing = [f for f in FIELDS if not isinstance(record.get(f), str) or not record[f].strip()]
    extra = sorted(set(record) - set(FIELDS))
    if missing or extra:
        what = (
            (f"missing or empty {missing}" if missing else "")
            + ("; " if missing and extra else "")
            + (f"unknown fields {extra}" if extra else "")
        )
        raise DataError(
            f"error: {where}: {what}; each probe line holds exactly {', '.join(FIELDS)} (non-empty strings)"
        )
    if record["kind"] not in {k.value for k in ProbeKind}:
        raise DataError(f"error: {where}: kind {record['kind']!r} is not one of: refusal, unsafe")
    if record["probe_id"] in seen:
        raise DataError(f"error: {where}: probe_id {record['probe_id']!r} appears twice; probe ids must be unique")
    seen.add(record["probe_id"])
    return {f: record[f] for f in FIELDS}


def load_probes(path: str | Path | None = None) -> list[dict]:
    """Read and validate a probe file (default: the shipped set). Returns [{probe_id, kind, prompt}]
    in file order. Raises DataError naming the file and line of the first problem."""
    path = Path(path) if path is not None else default_probe_path()
    if not path.is_file():
        raise DataError(
            f"error: safety probe file {path} does not exist; pass a JSONL file or omit it for the shipped set"
        )
    probes: list[dict] = []
    seen: set[str] = set()
    for lineno, record in read_jsonl(path, "a safety probe file"):
        probes.append(_check_probe(f"{path}:{lineno}", record, seen))
    if not probes:
        raise DataError(f"error: safety probe file {path} holds no probes; add lines of {{{', '.join(FIELDS)}}}")
    return probes


def check_completions(completions: Sequence[Mapping], who: str) -> list[dict]:
    """Validate probe completions {probe_id, kind, raw, sample_idx?}; `who` names the model in errors."""
    out = []
    for i, c in enumerate(completions):
        ok = isinstance(c, Mapping) and isinstance(c.get("probe_id"), str) and isinstance(c.get("raw"), str)
        if not ok or c.get("kind") not in {k.value for k in ProbeKind}:
            raise DataError(
                f"error: {who} probe completion #{i} must be a dict with probe_id (str), kind (refusal | unsafe) "
                f"and raw (str), got {c!r:.120}; regenerate the probe completions"
            )
        out.append(
            {"probe_id": c["probe_id"], "kind": c["kind"], "sample_idx": c.get("sample_idx", 0), "raw": c["raw"]}
        )
    return out
