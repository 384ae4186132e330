"""The strategist's refusals, as checks on a spec: each anti-pattern the SSD strategy forbids is named with
its reason and its fix. `selfdistill check` (and every stage that calls it) refuses a spec with any.

  pool-is-heldout      evaluating on the prompt pool: the pool and the held-out set are the same task
  no-pass-at-k         no k above 1: the precondition (pass@k - pass@1) cannot be measured
  rounds-without-gate  ssd.round > 1 with the round-2 gate switched off
  filtered-minimal     filters beyond the degeneracy filter on the minimal arm: filtered samples reported
                       as minimal SSD (that is the verifier-aware arm, reported separately)
  safety-probe-off     the safety/refusal probe switched off
  anchor-above-20      an anchor-data mix above 20%: diagnose the sampling step instead
  low-rank-lora        LoRA rank below 16 without a declared full-fine-tune or higher-rank pilot
  round2-promotion     a round-2 checkpoint named for promotion before its gate passed (read from the run
                       directory's gate.json when one is given)

One more is named but not refused by `check`, because it is a property of the user's data rather than of
the spec's choices (a user's own held-out set may simply be smaller):

  heldout-below-200    a held-out set under the strategy's mandatory 200 problems (`below_minimum`); `check`
                       prints it, and every verdict on such a set is stamped "below the 200-problem
                       minimum" (verdict.json `meets_min_problems: false`, verdict.md and the report lead
                       with it), so no GO goes out on it without the stamp
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from selfdistill.spec import Spec, TrainMethod
from selfdistill.tasks.registry import MIN_HELDOUT

MAX_ANCHOR = 0.20
MIN_RANK = 16


@dataclass(frozen=True)
class AntiPattern:
    code: str
    field: str
    reason: str
    fix: str

    def line(self) -> str:
        return f"  [{self.code}] {self.field}: {self.reason}; {self.fix}"


def below_minimum(n_problems: int, minimum: int = MIN_HELDOUT) -> AntiPattern | None:
    """The heldout-below-200 anti-pattern for a held-out set of `n_problems`, or None when it meets the minimum."""
    if n_problems >= minimum:
        return None
    return AntiPattern(
        "heldout-below-200", "heldout.task",
        f"the held-out set has {n_problems} problems, fewer than the {minimum} the strategy makes mandatory: "
        "pass@k differences of a few points are within noise and the 95% CIs cover less often than they claim; "
        f"every verdict on it is stamped as below the minimum",
        f"use a larger held-out set (e.g. heldout.mbpp_share adds a seeded MBPP share: 164 + 60 >= {minimum}), "
        "or read the stamped verdict as evidence, not a decision")


def _same_task(pool_source: str, heldout_task: str) -> bool:
    if pool_source.startswith(("split:", "codebase:")) or pool_source == "mbpp":
        return False
    if pool_source.lower() == heldout_task.lower():
        return True
    try:
        return Path(pool_source).expanduser().resolve() == Path(heldout_task).expanduser().resolve()
    except OSError:
        return False


def find_antipatterns(spec: Spec, run_dir: Path | None = None) -> list[AntiPattern]:
    found = []
    if _same_task(spec.pool.source, spec.heldout.task):
        found.append(AntiPattern(
            "pool-is-heldout", "pool.source",
            f"the prompt pool {spec.pool.source!r} is the held-out set: every delta would be measured on "
            "prompts the model was trained on", 'use a disjoint pool, or "split:<task>" for a recorded split'))
    if max(spec.diagnostics.k) < 2:
        found.append(AntiPattern(
            "no-pass-at-k", "diagnostics.k",
            f"k = {spec.diagnostics.k} has no pass@k: SSD's precondition is pass@k - pass@1 and it cannot be "
            "measured", "add 4, 8 and 16 (with n >= 16)"))
    if spec.ssd.round > 1 and not spec.gate.enabled:
        found.append(AntiPattern(
            "rounds-without-gate", "gate.enabled",
            f"ssd.round = {spec.ssd.round} with the round-2 gate off: a second round amplifies whatever the "
            "first one did, collapse included", "set gate.enabled = true and pass the gate first"))
    extra = [f for f in spec.ssd.minimal_filter if f != "degeneracy"]
    if extra:
        found.append(AntiPattern(
            "filtered-minimal", "ssd.minimal_filter",
            f"filters {extra} on the minimal arm would report filtered samples as minimal SSD",
            'keep ["degeneracy"]; filtering by tests is the verifier-aware arm (ssd.verifier_arm = "on")'))
    if not spec.battery.safety_probe:
        found.append(AntiPattern(
            "safety-probe-off", "battery.safety_probe",
            "the safety/refusal probe is switched off: a refusal or unsafe-code drift would go unseen",
            "set battery.safety_probe = true"))
    if spec.train.anchor_ratio > MAX_ANCHOR:
        found.append(AntiPattern(
            "anchor-above-20", "train.anchor_ratio",
            f"an anchor-data mix of {100 * spec.train.anchor_ratio:.0f}% (above {100 * MAX_ANCHOR:.0f}%) is "
            "patching format drift with external data", "diagnose the sampling step instead (T_train, "
            "truncation, the no-code share), then keep the mix at or below 20%"))
    if spec.train.method is TrainMethod.LORA and spec.train.lora_r < MIN_RANK and not spec.train.pilot:
        found.append(AntiPattern(
            "low-rank-lora", "train.lora_r",
            f"LoRA rank {spec.train.lora_r} is below {MIN_RANK}: a null result would not tell SSD from "
            "under-capacity", "raise lora_r to 16 or more, or declare the full-fine-tune or higher-rank pilot "
            "that justifies it in train.pilot"))
    if spec.promotion.candidate_round > 1:
        gate = _gate_decision(run_dir)
        if gate != "ENTER":
            found.append(AntiPattern(
                "round2-promotion", "promotion.candidate_round",
                f"a round-{spec.promotion.candidate_round} checkpoint is named for promotion but the round-2 gate "
                + ("has not been run" if gate is None else "said STOP"),
                "promote round 1's checkpoint, or pass the gate (selfdistill gate) first"))
    return found


def _gate_decision(run_dir: Path | None) -> str | None:
    import json

    if run_dir is None:
        return None
    from selfdistill import layout

    path = layout.round_file(run_dir, layout.GATE)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("decision")
    except (OSError, json.JSONDecodeError):
        return None
