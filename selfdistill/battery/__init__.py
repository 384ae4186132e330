"""ANTI-COLLAPSE battery: does a distilled arm still write like the base, only better?

SSD's failure mode is silent collapse. `run_battery(base, arm, thresholds)` compares one distilled
arm with the base model on five families of probes (diversity, length, diversity-at-k, style,
safety) under thresholds declared in the spec before training (`BatterySpec`, hashed by
`thresholds_hash`), and returns the JSON-ready probes.json dict: per probe its value, base value,
change with its paired bootstrap CI over prompts, threshold and pass | watch | alert | skipped (alert:
the whole CI beyond the threshold; watch: only the point estimate), plus `green` (no alert).

Pure Python + numpy + sacrebleu: no torch, no model, no GPU. Not here: generating the samples or the
safety probe completions (the lead's stages do, from `load_probes()`), and writing probes.json.
Probe formulas, defaults and blind spots: docs/battery.md.
"""

from selfdistill.battery.inputs import ArmInputs, load_arm
from selfdistill.battery.probeset import ProbeKind, check_completions, default_probe_path, load_probes
from selfdistill.battery.result import ChangeKind, Direction, Family, ProbeResult, ProbeStatus
from selfdistill.battery.run import SCHEMA, run_battery, thresholds_hash
from selfdistill.battery.safety import extract_code, is_refusal, unsafe_rules

__all__ = [
    "SCHEMA",
    "ArmInputs",
    "ChangeKind",
    "Direction",
    "Family",
    "ProbeKind",
    "ProbeResult",
    "ProbeStatus",
    "check_completions",
    "default_probe_path",
    "extract_code",
    "is_refusal",
    "load_arm",
    "load_probes",
    "run_battery",
    "thresholds_hash",
    "unsafe_rules",
]
