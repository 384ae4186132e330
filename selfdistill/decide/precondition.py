"""Deliverable A from a metrics dict: the overall Precondition Verdict, one per slice, and a summary.

Reads only the metrics dict (`selfdistill.metrics.summary.summarize`, i.e. metrics.json) and applies
the same pure `precondition_verdict` to the overall numbers and to each slice's numbers; SSD can be
GO on the hard slice and not on the easy one. What this does not do: write files (the caller writes
verdict.json from `PreconditionReport.to_json()`).
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

from selfdistill.decide.verdict import DEFAULT_RULES, Rules, Verdict, VerdictKind, precondition_verdict
from selfdistill.errors import DataError

SCHEMA = "selfdistill.verdict/1"


@dataclass(frozen=True)
class PreconditionReport:
    k: int
    rules: Rules
    overall: Verdict
    slices: dict[str, Verdict]
    skipped_slices: dict[str, str]  # slice -> why it has no verdict
    slice_source: str
    summary: str

    def to_json(self) -> dict:
        return {
            "schema": SCHEMA,
            "k": self.k,
            "rules": self.rules.to_json(),
            "overall": self.overall.to_json(),
            "slices": {name: v.to_json() for name, v in self.slices.items()},
            "skipped_slices": dict(self.skipped_slices),
            "slice_source": self.slice_source,
            "summary": self.summary,
        }


def _pick_k(metrics: Mapping, k: int | None) -> int:
    ks = [int(x) for x in metrics.get("ks", [])]
    if k is None:
        if not ks or max(ks) < 2:
            raise DataError(f"metrics.json has ks={ks}; the precondition needs a k >= 2 (e.g. eval.k = [1, 16])")
        return max(ks)
    if k not in ks:
        raise DataError(
            f"metrics.json has no pass@{k} (ks={ks}); re-run the metrics stage with k={k} or pick one of {ks}"
        )
    return k


def _median_n(metrics: Mapping, slice_name: str | None) -> int | None:
    rows = [
        p["n"] for p in metrics.get("per_problem", {}).values() if slice_name is None or p.get("slice") == slice_name
    ]
    return int(statistics.median(rows)) if rows else None


def _group_verdict(group: Mapping, k: int, rules: Rules, n_samples: int | None) -> Verdict | str:
    """A verdict for one group, or the reason it has none."""
    key = f"pass@{k}"
    try:
        gap, pass1, passk = group["gaps"][f"{key}-pass@1"], group["metrics"]["pass@1"], group["metrics"][key]
    except KeyError as missing:
        raise DataError(f"metrics.json lacks {missing} for pass@{k}; re-run the metrics stage") from None
    if gap["value"] is None or pass1["value"] is None:
        return f"no problem has n >= {k} samples after infra exclusion"
    verdict = precondition_verdict(
        gap, pass1, passk, k, rules, n_problems=gap["n_problems"], n_samples_per_problem=n_samples
    )
    if pass1["n_problems"] != gap["n_problems"]:
        note = (
            f" (pass@1 is over the {pass1['n_problems']} problems with a sample; pass@{k} and the gap over the "
            f"{gap['n_problems']} with n >= {k} after infra exclusion.)"
        )
        verdict = dataclasses.replace(verdict, justification=verdict.justification + note)
    return verdict


def _label(v: Verdict) -> str:
    return f"{v.kind.value}: {v.other.value}" if v.other else v.kind.value


def _summary(overall: Verdict, slices: dict[str, Verdict], skipped: dict[str, str], source: str) -> str:
    text = f"Overall: {_label(overall)} at pass@{overall.k} (rule {overall.rule_id})."
    if slices:
        text += " Per slice: " + ", ".join(f"{n} {_label(v)} ({v.rule_id})" for n, v in slices.items()) + "."
    if skipped:
        text += " No verdict for: " + ", ".join(f"{n} ({why})" for n, why in skipped.items()) + "."
    go = {VerdictKind.GO_SSD, VerdictKind.GO_VERIFIER_AWARE_SSD}
    go_slices = [n for n, v in slices.items() if v.kind in go]
    if go_slices and len(go_slices) < len(slices):
        text += (
            f" The slices disagree: SSD's lift should concentrate on {', '.join(go_slices)}; "
            "watch the other slices for regressions."
        )
    elif slices and all(v.kind is overall.kind for v in slices.values()):
        text += " Every slice agrees with the overall verdict."
    if source == "base-pass-rate-proxy":
        text += " Slices are a pass-rate proxy, not benchmark labels."
    return text


def precondition_from_metrics(
    metrics: Mapping, rules: Rules = DEFAULT_RULES, *, k: int | None = None
) -> PreconditionReport:
    """Overall and per-slice verdicts at pass@k (default: the largest k in the metrics)."""
    k = _pick_k(metrics, k)
    overall = _group_verdict(metrics, k, rules, _median_n(metrics, None))
    if isinstance(overall, str):
        raise DataError(f"no overall pass@{k}: {overall}; raise the samples per problem (n) or lower k")
    slices, skipped = {}, {}
    for name, group in metrics.get("slices", {}).items():
        verdict = _group_verdict(group, k, rules, _median_n(metrics, name))
        if isinstance(verdict, str):
            skipped[name] = verdict
        else:
            slices[name] = verdict
    source = metrics.get("slice_source", "")
    return PreconditionReport(k, rules, overall, slices, skipped, source, _summary(overall, slices, skipped, source))
