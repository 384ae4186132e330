"""Run the anti-collapse battery: base model vs one distilled arm -> the probes.json dict.

SSD fine-tunes a model on its own samples; its failure mode is silent collapse (one answer per
prompt, loops, shorter or longer outputs, dropped comments, lost refusals). Each probe compares the
arm with the base on the SAME held-out prompts and samples (matched by task_id and sample_idx) and
alerts when the change passes a threshold from `BatterySpec`, declared before training and hashed
(`thresholds_hash`) so a report can show it was not moved afterwards. `green` = no probe alerted
and at least one probe ran.

Safety probes need completions of the shipped probe set (`probeset.load_probes`); when the spec
switches them off or none were generated, they are `skipped`, `green` comes from the rest, and the
result says `safety_skipped: true`.

Not here: generating samples or probe completions, writing probes.json (the calling stage does,
with `rundir.write_json_atomic`), or refusing changed thresholds (the stage compares hashes).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING

from selfdistill.battery import probes as P
from selfdistill.battery.inputs import ArmInputs, align, label, lengths
from selfdistill.battery.probeset import check_completions
from selfdistill.battery.result import ChangeKind, Direction, Family, ProbeResult, ProbeStatus, compare, skipped
from selfdistill.errors import DataError

if TYPE_CHECKING:
    from selfdistill.spec import BatterySpec

log = logging.getLogger(__name__)
SCHEMA = "selfdistill.battery/1"
REL, ABS = ChangeKind.RELATIVE, ChangeKind.ABSOLUTE
RISE, DROP, EITHER = Direction.RISE, Direction.DROP, Direction.EITHER
RATE_FLOOR = 0.05  # relative rises of repetition / self-BLEU are taken on max(base, 0.05): a base near 0 is noise


def thresholds_hash(thresholds: BatterySpec) -> str:
    """sha256 hex of the canonical JSON (sorted keys, no spaces) of the battery thresholds."""
    canonical = json.dumps(thresholds.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- families


def _diversity(base: list[Mapping], arm: list[Mapping], t: BatterySpec) -> list[ProbeResult]:
    braw, araw = [s["raw"] for s in base], [s["raw"] for s in arm]
    groups = [str(s["task_id"]) for s in base]  # aligned: the arm has the same task at each position
    bd, ad = P.distinct_n(braw), P.distinct_n(araw)
    dist = {f"distinct-{n}": {"base": bd[n], "arm": ad[n]} for n in bd}
    return [
        compare(
            "repetition-rate",
            Family.DIVERSITY,
            P.repetition_rate(braw),
            P.repetition_rate(araw),
            t.repetition_rise_max,
            REL,
            RISE,
            f"mean seq-rep-{P.REPETITION_N} within a completion",
            floor=RATE_FLOOR,
        ),
        compare(
            "self-bleu",
            Family.DIVERSITY,
            P.self_bleu(braw, groups),
            P.self_bleu(araw, groups),
            t.self_bleu_rise_max,
            REL,
            RISE,
            "self-BLEU among samples of one prompt",
            floor=RATE_FLOOR,
        ),
        compare(
            "distinct-3",
            Family.DIVERSITY,
            bd[3],
            ad[3],
            t.distinct_drop_max,
            REL,
            DROP,
            "distinct 3-grams / all 3-grams",
            extra=dist,
        ),
    ]


def _length(base: list[Mapping], arm: list[Mapping], t: BatterySpec) -> list[ProbeResult]:
    bl, al, unit = lengths(base, arm)
    bs, as_ = P.length_stats(bl), P.length_stats(al)
    extra = {"unit": unit, "n": len(bl)}
    return [
        compare(
            "length-median",
            Family.LENGTH,
            bs["median"],
            as_["median"],
            t.length_median_drift_max,
            REL,
            EITHER,
            "median completion length",
            floor=1.0,
            extra=extra,
        ),
        compare(
            "length-p95",
            Family.LENGTH,
            bs["p95"],
            as_["p95"],
            t.length_p95_drift_max,
            REL,
            EITHER,
            "p95 completion length",
            floor=1.0,
            extra=extra,
        ),
    ]


def _ci(i: Mapping) -> str:
    lo, hi = i.get("ci_low"), i.get("ci_high")
    ci = f" [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
    return f"{i['value']:.3f}{ci}"


def _diversity_at_k(bm: Mapping, am: Mapping, t: BatterySpec) -> list[ProbeResult]:
    k = P.largest_common_k(bm, am)
    b1, a1 = P.interval(bm, "pass@1"), P.interval(am, "pass@1")
    if k is None or b1 is None or a1 is None:
        why = (
            "base and arm metrics.json share no pass@k with k > 1 and a value (eval.k holds only 1?)"
            if k is None
            else "pass@1 is missing from a metrics.json"
        )
        return [
            skipped("mode-collapse", Family.DIVERSITY_AT_K, ABS, DROP, 0.0, why),
            skipped("passk-flatten", Family.DIVERSITY_AT_K, REL, DROP, t.passk_flatten_max, why),
        ]
    bk, ak = P.interval(bm, f"pass@{k}"), P.interval(am, f"pass@{k}")
    collapsed = P.mode_collapse(b1["value"], bk["value"], a1["value"], ak["value"])
    intervals = {"k": k, "pass@1": {"base": b1, "arm": a1}, f"pass@{k}": {"base": bk, "arm": ak}}
    detail = (
        f"pass@1 base {_ci(b1)} -> arm {_ci(a1)}; pass@{k} base {_ci(bk)} -> arm {_ci(ak)}; "
        f"alert when pass@1 rises while pass@{k} falls (point estimates; CIs shown for reading)"
    )
    mode = ProbeResult(
        "mode-collapse",
        Family.DIVERSITY_AT_K,
        float(ak["value"]),
        float(bk["value"]),
        float(ak["value"] - bk["value"]),
        ABS,
        DROP,
        0.0,
        ProbeStatus.ALERT if collapsed else ProbeStatus.PASS,
        detail,
        intervals,
    )
    gb, ga = P.gain(bm, k), P.gain(am, k)
    if gb is None or ga is None or gb <= 0:
        why = f"the base has no pass@{k} - pass@1 gain to flatten (g_base = {gb})"
        return [mode, skipped("passk-flatten", Family.DIVERSITY_AT_K, REL, DROP, t.passk_flatten_max, why, {"k": k})]
    flat = compare(
        "passk-flatten",
        Family.DIVERSITY_AT_K,
        gb,
        ga,
        t.passk_flatten_max,
        REL,
        DROP,
        f"gain g = pass@{k} - pass@1",
        floor=1e-12,
        extra={"k": k},
    )
    return [mode, flat]


def _style(base: list[Mapping], arm: list[Mapping], t: BatterySpec) -> list[ProbeResult]:
    bp, ap = [s.get("program") or "" for s in base], [s.get("program") or "" for s in arm]
    out = []
    for name, fn, th, what in (
        ("comment-share", P.comment_share, t.comment_share_drift_max, "lines with a comment / non-blank lines"),
        ("docstring-share", P.docstring_share, t.docstring_drift_max, "functions with a docstring / functions"),
    ):
        bs, as_ = fn(bp), fn(ap)
        counts = {
            who: {"hits": s.hits, "total": s.total, "unparsed": s.skipped, "empty": s.empty}
            for who, s in (("base", bs), ("arm", as_))
        }
        out.append(compare(name, Family.STYLE, bs.value, as_.value, th, ABS, EITHER, what, extra=counts))
    return out


def _safety(base: ArmInputs, arm: ArmInputs, t: BatterySpec) -> tuple[list[ProbeResult], str | None]:
    reason = None
    if not t.safety_probe:
        reason = "battery.safety_probe = false in the spec: the safety probes were switched off"
    elif base.probes is None or arm.probes is None:
        who = " and ".join(r for r, x in (("base", base), ("arm", arm)) if x.probes is None)
        reason = f"no safety probe completions for the {who}; generate them from the shipped probe set"
    if reason:
        return [
            skipped("refusal-rate", Family.SAFETY, ABS, EITHER, t.refusal_drift_max, reason),
            skipped("unsafe-rate", Family.SAFETY, ABS, RISE, t.unsafe_drift_max, reason),
        ], reason
    b = check_completions(base.probes, label("base", base))
    a = check_completions(arm.probes, label("arm", arm))
    ids = {who: {(c["probe_id"], c["kind"]) for c in cs} for who, cs in (("base", b), ("arm", a))}
    if ids["base"] != ids["arm"]:
        diff = sorted(ids["base"] ^ ids["arm"])[:5]
        raise DataError(
            f"error: base and arm answered different safety probes (e.g. {diff}); generate both from one probe set"
        )
    return [_refusal(b, a, t), _unsafe(b, a, t)], None


def _refusal(b: list[dict], a: list[dict], t: BatterySpec) -> ProbeResult:
    def rate(cs: list[dict]) -> tuple[float | None, list[str]]:
        mine = [c for c in cs if c["kind"] == "refusal"]
        complied = [f"{c['probe_id']}#{c['sample_idx']}" for c in mine if not P.is_refusal(c["raw"])]
        return (1 - len(complied) / len(mine) if mine else None), complied

    (rb, cb), (ra, ca) = rate(b), rate(a)
    return compare(
        "refusal-rate",
        Family.SAFETY,
        rb,
        ra,
        t.refusal_drift_max,
        ABS,
        EITHER,
        "refusals / completions on the refusal probes",
        extra={"complied": {"base": cb, "arm": ca}},
    )


def _unsafe(b: list[dict], a: list[dict], t: BatterySpec) -> ProbeResult:
    def rate(cs: list[dict]) -> tuple[float | None, list[dict], dict]:
        mine = [c for c in cs if c["kind"] == "unsafe"]
        found = [
            {"probe_id": c["probe_id"], "sample_idx": c["sample_idx"], "rules": list(r)}
            for c in mine
            if (r := P.unsafe_rules(c["raw"]))
        ]
        counts = Counter(rule for f in found for rule in f["rules"])
        return (len(found) / len(mine) if mine else None), found, dict(sorted(counts.items()))

    (rb, fb, kb), (ra, fa, ka) = rate(b), rate(a)
    extra = {"rule_counts": {"base": kb, "arm": ka}, "findings": {"base": fb, "arm": fa}}
    return compare(
        "unsafe-rate",
        Family.SAFETY,
        rb,
        ra,
        t.unsafe_drift_max,
        ABS,
        RISE,
        "flagged completions / completions on the unsafe probes",
        extra=extra,
    )


# ---------------------------------------------------------------- the battery


def run_battery(base: ArmInputs, arm: ArmInputs, thresholds: BatterySpec) -> dict:
    """Every probe, base vs arm, under `thresholds`. Returns the JSON-ready probes.json dict
    (shape in docs/battery.md). Raises DataError on malformed or mismatched inputs."""
    bs, as_, counts = align(base, arm)
    results = [
        *_diversity(bs, as_, thresholds),
        *_length(bs, as_, thresholds),
        *_diversity_at_k(base.metrics, arm.metrics, thresholds),
        *_style(bs, as_, thresholds),
    ]
    safety, safety_reason = _safety(base, arm, thresholds)
    results += safety
    n_alerts = sum(r.status is ProbeStatus.ALERT for r in results)
    n_skipped = sum(r.status is ProbeStatus.SKIPPED for r in results)
    green = n_alerts == 0 and n_skipped < len(results)
    log.info(
        "battery %s vs %s: %d alert(s), %d skipped, green=%s",
        base.name or "base",
        arm.name or "arm",
        n_alerts,
        n_skipped,
        green,
    )
    return {
        "schema": SCHEMA,
        "base": base.name or "base",
        "arm": arm.name or "arm",
        "thresholds_hash": thresholds_hash(thresholds),
        "thresholds": thresholds.model_dump(mode="json"),
        "green": green,
        "n_alerts": n_alerts,
        "n_skipped": n_skipped,
        "safety_skipped": safety_reason is not None,
        "safety_skipped_reason": safety_reason,
        "samples": counts,
        "probes": [r.to_json() for r in results],
    }
