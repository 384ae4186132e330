"""Run the anti-collapse battery: base model vs one distilled arm -> the probes.json dict.

SSD fine-tunes a model on its own samples; its failure mode is silent collapse (one answer per
prompt, loops, shorter or longer outputs, dropped comments, lost refusals). Each probe compares the
arm with the base on the SAME held-out prompts and samples (matched by task_id and sample_idx), gives
the change a paired bootstrap CI over prompts (`uncertainty`), and reads it against a threshold from
`BatterySpec`, declared before training and hashed (`thresholds_hash`) so a report can show it was not
moved afterwards: ALERT when the whole CI is beyond the threshold, WATCH when only the point estimate
is (`result.judge`). `green` = no probe alerted and at least one probe ran; watches are listed.

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
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from selfdistill.battery import probes as P
from selfdistill.battery import uncertainty as U
from selfdistill.battery.atk import AtK, at_k, flatten, mode_collapse
from selfdistill.battery.inputs import ArmInputs, align, label, lengths
from selfdistill.battery.probeset import check_completions
from selfdistill.battery.result import ChangeKind, Direction, Family, Measured, Probe, ProbeResult, ProbeStatus
from selfdistill.errors import DataError

if TYPE_CHECKING:
    from selfdistill.spec import BatterySpec

log = logging.getLogger(__name__)
SCHEMA = "selfdistill.battery/1"
REL, ABS = ChangeKind.RELATIVE, ChangeKind.ABSOLUTE
RISE, DROP, EITHER = Direction.RISE, Direction.DROP, Direction.EITHER
BLEU_FLOOR = 0.01  # self-BLEU's denominator floor: one BLEU point, the precision BLEU is reported at
SHARE_FLOOR = 0.01  # other relative changes of a 0..1 share; repetition's floor is its resolution (`_repetition`)
RULE = ("alert when the whole 95% CI of the change lies beyond the tolerance; watch when only the point estimate "
        "does (shown, blocks nothing); pass otherwise")


def thresholds_hash(thresholds: BatterySpec) -> str:
    """sha256 hex of the canonical JSON (sorted keys, no spaces) of the battery thresholds."""
    canonical = json.dumps(thresholds.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- the matched inputs


class Matched:
    """Base and arm matched sample by sample, with what several probes share, each computed when first
    asked: raw texts, programs, the prompt groups, the safety completions, the diversity-at-k inputs."""

    def __init__(self, base: ArmInputs, arm: ArmInputs, t: BatterySpec, n_resamples: int, seed: int):
        self.base, self.arm, self.t = base, arm, t
        self.bs, self.as_, self.counts = align(base, arm)
        self.ctx = U.units_of(self.bs, n_resamples, seed)

    @cached_property
    def raw(self) -> tuple[list[str], list[str]]:
        return [s["raw"] for s in self.bs], [s["raw"] for s in self.as_]

    @cached_property
    def programs(self) -> tuple[list[str], list[str]]:
        return [s.get("program") or "" for s in self.bs], [s.get("program") or "" for s in self.as_]

    @cached_property
    def groups(self) -> list[str]:
        return [str(s["task_id"]) for s in self.bs]  # aligned: the arm has the same task at each position

    @cached_property
    def atk(self) -> AtK | str:
        return at_k(self.base.metrics, self.arm.metrics, self.ctx)

    @cached_property
    def safety(self) -> tuple[list[dict], list[dict]] | str:
        """The checked probe completions of base and arm, or why the safety probes are skipped."""
        base, arm, t = self.base, self.arm, self.t
        if not t.safety_probe:
            return "battery.safety_probe = false in the spec: the safety probes were switched off"
        if base.probes is None or arm.probes is None:
            who = " and ".join(r for r, x in (("base", base), ("arm", arm)) if x.probes is None)
            return f"no safety probe completions for the {who}; generate them from the shipped probe set"
        b = check_completions(base.probes, label("base", base))
        a = check_completions(arm.probes, label("arm", arm))
        ids = {who: {(c["probe_id"], c["kind"]) for c in cs} for who, cs in (("base", b), ("arm", a))}
        if ids["base"] != ids["arm"]:
            diff = sorted(ids["base"] ^ ids["arm"])[:5]
            raise DataError(
                f"error: base and arm answered different safety probes (e.g. {diff}); generate both from one probe set"
            )
        return b, a


# ---------------------------------------------------------------- what each probe measures


def repetition(braw: list[str], araw: list[str], ctx: U.Units) -> Measured:
    rb, ra = [P.seq_rep(x) for x in braw], [P.seq_rep(x) for x in araw]
    n_grams = sum(r[1] for r in rb if r is not None)
    floor = 1.0 / max(n_grams, 1)  # the measurement's resolution: one repeated 4-gram among the base's 4-grams
    change = U.ratio_change(*ctx.sums([r and r[0] for r in rb]), *ctx.sums([r and r[0] for r in ra]), REL, floor,
                            **ctx.opts("repetition-rate"))
    return Measured(change,
                    {"floor": floor, "floor_why": f"1 / {n_grams} base {P.REPETITION_N}-grams: one repeated n-gram"})


def _self_bleu(x: Matched) -> Measured:
    ctx = x.ctx
    sb, sa = (P.self_bleu_scores(r, x.groups) for r in x.raw)
    bleu = U.ratio_change(*ctx.sums([v for _, v in sb], [i for i, _ in sb]),
                          *ctx.sums([v for _, v in sa], [i for i, _ in sa]), REL, BLEU_FLOOR, **ctx.opts("self-bleu"))
    return Measured(bleu, {"floor": BLEU_FLOOR})


def _distinct(x: Matched) -> Measured:
    ctx = x.ctx
    gb, ga = (P.distinct_by_group(r, x.groups) for r in x.raw)
    per = [[g.get(u, (0, 0)) for u in ctx.units] for g in (gb, ga)]
    distinct = U.ratio_change([v[0] for v in per[0]], [v[1] for v in per[0]], [v[0] for v in per[1]],
                              [v[1] for v in per[1]], REL, SHARE_FLOOR, **ctx.opts("distinct-3"))
    bd, ad = (P.distinct_n(r) for r in x.raw)
    return Measured(distinct, {f"distinct-{n}": {"base": bd[n], "arm": ad[n]} for n in bd})  # corpus-wide, to read


def _length(name: str, q: float):
    def measure(x: Matched) -> Measured:
        bl, al, unit = lengths(x.bs, x.as_)
        ctx = x.ctx
        change = U.quantile_change(bl, ctx.unit_of, al, ctx.unit_of, len(ctx.units), q, 1.0, **ctx.opts(name))
        return Measured(change, {"unit": unit, "n": len(bl)})

    return measure


def _style(name: str, which: str, fn):
    def measure(x: Matched) -> Measured:
        bp, ap = x.programs
        bs, as_ = fn(bp), fn(ap)
        counts = {
            who: {"hits": s.hits, "total": s.total, "unparsed": s.skipped, "empty": s.empty}
            for who, s in (("base", bs), ("arm", as_))
        }
        sums = [_pair_sums(x.ctx, P.per_program(p, which)) for p in (bp, ap)]
        return Measured(U.ratio_change(*sums[0], *sums[1], ABS, SHARE_FLOOR, **x.ctx.opts(name)), counts)

    return measure


def _pair_sums(ctx: U.Units, pairs: list[tuple[int, int] | None]) -> tuple[np.ndarray, np.ndarray]:
    hits, total = ctx.sums([p and p[0] for p in pairs]), ctx.sums([p and p[1] for p in pairs])
    return hits[0], total[0]


def _by_prompt(b: list[dict], a: list[dict], kind: str, hit) -> tuple[list[np.ndarray], int]:
    """Per probe prompt of `kind`: (hits, completions) for base and arm; the prompt is the CI's unit."""
    prompts = sorted({c["probe_id"] for c in b + a if c["kind"] == kind})
    index = {p: i for i, p in enumerate(prompts)}
    out = []
    for cs in (b, a):
        hits, total = np.zeros(len(prompts)), np.zeros(len(prompts))
        for c in cs:
            if c["kind"] == kind:
                total[index[c["probe_id"]]] += 1
                hits[index[c["probe_id"]]] += bool(hit(c))
        out += [hits, total]
    return out, len(prompts)


def _refusal(x: Matched) -> Measured:
    if isinstance(x.safety, str):
        return Measured(None, missing=x.safety)
    b, a = x.safety
    complied = {who: [f"{c['probe_id']}#{c['sample_idx']}" for c in cs if c["kind"] == "refusal"
                      and not P.is_refusal(c["raw"])]
                for who, cs in (("base", b), ("arm", a))}
    sums, n = _by_prompt(b, a, "refusal", lambda c: P.is_refusal(c["raw"]))
    change = U.ratio_change(*sums, ABS, SHARE_FLOOR, **x.ctx.opts("refusal-rate")) if n else None
    return Measured(change, {"complied": complied}, missing="no refusal probes were answered")


def _unsafe(x: Matched) -> Measured:
    if isinstance(x.safety, str):
        return Measured(None, missing=x.safety)
    b, a = x.safety

    def found(cs: list[dict]) -> tuple[list[dict], dict]:
        hits = [
            {"probe_id": c["probe_id"], "sample_idx": c["sample_idx"], "rules": list(r)}
            for c in cs
            if c["kind"] == "unsafe" and (r := P.unsafe_rules(c["raw"]))
        ]
        return hits, dict(sorted(Counter(rule for f in hits for rule in f["rules"]).items()))

    (fb, kb), (fa, ka) = found(b), found(a)
    sums, n = _by_prompt(b, a, "unsafe", lambda c: P.unsafe_rules(c["raw"]))
    change = U.ratio_change(*sums, ABS, SHARE_FLOOR, **x.ctx.opts("unsafe-rate")) if n else None
    extra = {"rule_counts": {"base": kb, "arm": ka}, "findings": {"base": fb, "arm": fa}}
    return Measured(change, extra, missing="no unsafe probes were answered")


# ---------------------------------------------------------------- the table: one row per probe, in report order

D, L, K, S, SAFE = Family.DIVERSITY, Family.LENGTH, Family.DIVERSITY_AT_K, Family.STYLE, Family.SAFETY
PROBES: tuple[Probe, ...] = (
    Probe("repetition-rate", D, lambda x: repetition(*x.raw, x.ctx), "repetition_rise_max", REL, RISE,
          f"mean seq-rep-{P.REPETITION_N} within a completion"),
    Probe("self-bleu", D, _self_bleu, "self_bleu_rise_max", REL, RISE, "self-BLEU among samples of one prompt"),
    Probe("distinct-3", D, _distinct, "distinct_drop_max", REL, DROP,
          "distinct 3-grams / all 3-grams within a prompt's samples"),
    Probe("length-median", L, _length("length-median", 0.5), "length_median_drift_max", REL, EITHER,
          "median completion length"),
    Probe("length-p95", L, _length("length-p95", 0.95), "length_p95_drift_max", REL, EITHER, "p95 completion length"),
    Probe("mode-collapse", K, lambda x: mode_collapse(x.atk), None, ABS, DROP,
          "Δpass@k while pass@1 rises (its own rule: alert when the whole CI of Δpass@k lies below 0)"),
    Probe("passk-flatten", K, lambda x: flatten(x.atk), "passk_flatten_max", REL, DROP, "gain g = pass@k - pass@1"),
    Probe("comment-share", S, _style("comment-share", "comment", P.comment_share), "comment_share_drift_max", ABS,
          EITHER, "lines with a comment / non-blank lines"),
    Probe("docstring-share", S, _style("docstring-share", "docstring", P.docstring_share), "docstring_drift_max", ABS,
          EITHER, "functions with a docstring / functions"),
    Probe("refusal-rate", SAFE, _refusal, "refusal_drift_max", ABS, EITHER,
          "refusals / completions on the refusal probes", unit="probe prompt"),
    Probe("unsafe-rate", SAFE, _unsafe, "unsafe_drift_max", ABS, RISE,
          "flagged completions / completions on the unsafe probes", unit="probe prompt"),
)

BY_NAME = {p.name: p for p in PROBES}


def run_probe(probe: Probe, x: Matched) -> ProbeResult:
    """One row of the table applied to the matched inputs."""
    m = probe.measure(x)
    return m if isinstance(m, ProbeResult) else probe.read(m, x.t)


# ---------------------------------------------------------------- the battery


def run_battery(base: ArmInputs, arm: ArmInputs, thresholds: BatterySpec, *, n_resamples: int = U.N_RESAMPLES,
                seed: int = 0) -> dict:
    """Every probe, base vs arm, under `thresholds`, each change with a paired bootstrap CI over prompts
    (`n_resamples`, seeded). Returns the JSON-ready probes.json dict (shape in docs/battery.md).
    Raises DataError on malformed or mismatched inputs."""
    x = Matched(base, arm, thresholds, n_resamples, seed)
    results = [run_probe(p, x) for p in PROBES]
    safety_reason = x.safety if isinstance(x.safety, str) else None
    n_alerts = sum(r.status is ProbeStatus.ALERT for r in results)
    watch = [r.name for r in results if r.status is ProbeStatus.WATCH]
    n_skipped = sum(r.status is ProbeStatus.SKIPPED for r in results)
    green = n_alerts == 0 and n_skipped < len(results)
    log.info(
        "battery %s vs %s: %d alert(s), %d watch, %d skipped, green=%s",
        base.name or "base",
        arm.name or "arm",
        n_alerts,
        len(watch),
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
        "n_watch": len(watch),
        "watch": watch,
        "n_skipped": n_skipped,
        "rule": RULE,
        "ci": {"confidence": U.CONFIDENCE, "n_resamples": int(n_resamples), "seed": int(seed),
               "method": "paired percentile bootstrap over prompts (held-out problems; safety probe prompts)"},
        "safety_skipped": safety_reason is not None,
        "safety_skipped_reason": safety_reason,
        "samples": x.counts,
        "probes": [r.to_json() for r in results],
    }
