"""Deliverable A from a metrics dict: the overall Precondition Verdict, one per slice, and a summary.

Reads only the metrics dict (`selfdistill.metrics.summary.summarize`, i.e. metrics.json) and applies
the same pure `verdict_over_ks` (the gap at every k) to the overall numbers and to each slice's numbers;
SSD can be GO on the hard slice and not on the easy one. The strategy's minimum of 200 held-out problems
is part of the report: `meets_min_problems` is recorded, and the summary and the overall justification
open with it when the set is smaller. What this does not do: write files (the caller writes verdict.json
from `PreconditionReport.to_json()`).
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from selfdistill.decide.verdict import DEFAULT_RULES, Rules, Verdict, VerdictKind, verdict_over_ks
from selfdistill.errors import DataError
from selfdistill.tasks.registry import MIN_HELDOUT

SCHEMA = "selfdistill.verdict/1"
MIN_PROBLEMS = MIN_HELDOUT  # the strategy's mandatory held-out size, one home: tasks.registry


@dataclass(frozen=True)
class PreconditionReport:
    k: int
    rules: Rules
    overall: Verdict
    slices: dict[str, Verdict]
    skipped_slices: dict[str, str]  # slice -> why it has no verdict
    slice_source: str
    summary: str
    ks: tuple[int, ...] = ()  # every k >= 2 the verdict looked at (self.k is the largest)
    n_problems: int | None = None  # held-out problems evaluated
    min_problems: int = MIN_PROBLEMS

    @property
    def meets_min_problems(self) -> bool | None:
        return None if self.n_problems is None else self.n_problems >= self.min_problems

    def to_json(self) -> dict:
        return {
            "schema": SCHEMA,
            "n_problems": self.n_problems,
            "min_problems": self.min_problems,
            "meets_min_problems": self.meets_min_problems,
            "k": self.k,
            "ks": list(self.ks),
            "rules": self.rules.to_json(),
            "overall": self.overall.to_json(),
            "slices": {name: v.to_json() for name, v in self.slices.items()},
            "skipped_slices": dict(self.skipped_slices),
            "slice_source": self.slice_source,
            "summary": self.summary,
        }


def _pick_ks(metrics: Mapping, k: int | None, wanted: Sequence[int] | None) -> list[int]:
    """Every k >= 2 the verdict uses: `wanted` (default: all in the metrics) up to `k` (default: the largest)."""
    ks = [int(x) for x in metrics.get("ks", [])]
    if k is None:
        if not ks or max(ks) < 2:
            raise DataError(f"metrics.json has ks={ks}; the precondition needs a k >= 2 (e.g. eval.k = [1, 16])")
        k = max(ks)
    if k not in ks:
        raise DataError(
            f"metrics.json has no pass@{k} (ks={ks}); re-run the metrics stage with k={k} or pick one of {ks}"
        )
    wanted = ks if wanted is None else [int(x) for x in wanted]
    missing = [x for x in wanted if 2 <= x <= k and x not in ks]
    if missing:
        raise DataError(f"metrics.json has no pass@{missing[0]} (ks={ks}); re-run the metrics stage with k={wanted}")
    return sorted({x for x in wanted if 2 <= x <= k} | {k})


def _median_n(metrics: Mapping, slice_name: str | None) -> int | None:
    def n_of(p: Mapping) -> int:  # a cross-fit slice rests on its estimate half only
        half = (p.get("halves") or {}).get("estimate") if slice_name is not None else None
        return half["n"] if half else p["n"]

    rows = [n_of(p) for p in metrics.get("per_problem", {}).values()
            if slice_name is None or p.get("slice") == slice_name]
    return int(statistics.median(rows)) if rows else None


def _group_verdict(group: Mapping, ks: list[int], rules: Rules, n_samples: int | None) -> Verdict | str:
    """A verdict for one group from the gap at every k in `ks` with data, or the reason it has none."""
    try:
        pass1 = group["metrics"]["pass@1"]
        rows = {k: (group["gaps"][f"pass@{k}-pass@1"], group["metrics"][f"pass@{k}"]) for k in ks}
    except KeyError as missing:
        raise DataError(f"metrics.json lacks {missing} for pass@k at k={ks}; re-run the metrics stage") from None
    rows = {k: row for k, row in rows.items() if row[0]["value"] is not None}
    if pass1["value"] is None or not rows:
        return f"no problem has n >= {ks[0]} samples after infra exclusion"
    verdict = verdict_over_ks(
        {k: gap for k, (gap, _) in rows.items()}, pass1, {k: passk for k, (_, passk) in rows.items()}, rules,
        n_problems={k: gap["n_problems"] for k, (gap, _) in rows.items()}, n_samples_per_problem=n_samples,
    )
    k = verdict.k
    if max(rows) < ks[-1]:
        note = (f" (This group has pass@k only up to k = {max(rows)}: no problem in it has n >= {ks[-1]} samples "
                "here, e.g. after a cross-fit split of the samples or infra exclusion.)")
        verdict = dataclasses.replace(verdict, justification=verdict.justification + note)
    if pass1["n_problems"] != verdict.n_problems:
        note = (
            f" (pass@1 is over the {pass1['n_problems']} problems with a sample; pass@{k} and the gap over the "
            f"{verdict.n_problems} with n >= {k} after infra exclusion.)"
        )
        verdict = dataclasses.replace(verdict, justification=verdict.justification + note)
    return verdict


def below_minimum_note(n_problems: int, minimum: int = MIN_PROBLEMS) -> str:
    return (
        f"Below the {minimum}-problem minimum: this verdict rests on {n_problems} held-out problems, fewer than "
        f"the {minimum} the strategy makes mandatory; at this size the 95% CIs cover less often than they claim "
        "(docs/decision-rule.md, coverage), so it is not a basis for a training decision on its own."
    )


def _label(v: Verdict) -> str:
    return f"{v.kind.value}: {v.other.value}" if v.other else v.kind.value


def _summary(overall: Verdict, slices: dict[str, Verdict], skipped: dict[str, str], source: str,
             n_problems: int | None) -> str:
    text = f"Overall: {_label(overall)} at pass@{overall.k} (rule {overall.rule_id})."
    if n_problems is not None and n_problems < MIN_PROBLEMS:
        text = f"Below the {MIN_PROBLEMS}-problem minimum ({n_problems} problems). " + text
    if overall.only_at_largest_k:
        text += f" The gap clears only at the largest k ({overall.k}): weaker evidence."
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
    metrics: Mapping, rules: Rules = DEFAULT_RULES, *, k: int | None = None, ks: Sequence[int] | None = None
) -> PreconditionReport:
    """Overall and per-slice verdicts from the gap at every k in `ks` (default: every k in the metrics)
    up to `k` (default: the largest)."""
    chosen = _pick_ks(metrics, k, ks)
    overall = _group_verdict(metrics, chosen, rules, _median_n(metrics, None))
    if isinstance(overall, str):
        raise DataError(f"no overall pass@{chosen[-1]}: {overall}; raise the samples per problem (n) or lower k")
    n_problems = metrics.get("n_problems")
    if n_problems is not None and n_problems < MIN_PROBLEMS:
        overall = dataclasses.replace(overall,
                                      justification=f"{below_minimum_note(n_problems)} {overall.justification}")
    slices, skipped = {}, {}
    for name, group in metrics.get("slices", {}).items():
        verdict = _group_verdict(group, chosen, rules, _median_n(metrics, name))
        if isinstance(verdict, str):
            skipped[name] = verdict
        else:
            slices[name] = verdict
    source = metrics.get("slice_source", "")
    summary = _summary(overall, slices, skipped, source, n_problems)
    return PreconditionReport(chosen[-1], rules, overall, slices, skipped, source, summary, tuple(chosen), n_problems)
