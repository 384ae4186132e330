"""`selfdistill ssd SPEC`: one SSD round, stage by stage, each resumable, each timed into the cost ledger.

    <run>/base/                       the precondition: base model at the diagnostic temperature, and the
                                      verdict (verdict.json); GO-OTHER or INCONCLUSIVE refuses the round unless --force
                                      (a GO-OTHER whose move's arm comparator.measure names: that comparator
                                      alone, beside the base, SSD still refused; decide/refuse.py)
    <run>/round1/pool.json            the prompt pool: source, provenance, ids, content hashes
    <run>/round1/samples/             T_train samples from the frozen base model (sampling.py)
    <run>/round1/verify/              pool tests run on them (when the pool has tests)
    <run>/round1/train-ssd/           minimal SSD: examples.jsonl, job.json, train.log, train.json,
                                      adapter/ or merged/, the export for the evaluation engine
    <run>/round1/train-verifier/      verifier-aware arm: the same, on passing samples only (its own dir,
                                      never merged into or reported as minimal SSD)
    <run>/base-T<t>/ ssd-T<t>/ verifier-T<t>/   held-out evaluation at each T_eval (same engine,
                                      precision and parameters for every arm; `base` when t equals the
                                      diagnostic temperature)
    <run>/round1/round.json           the round's summary: sweep (pass@1 against T_eff = T_train x T_eval),
                                      paired deltas with CIs overall and per slice, sample statistics,
                                      training records, costs
    <run>/ledger.jsonl                wall time and devices per stage

Killed and run again, every stage continues where it stopped (samples and outcomes are appended as they
finish; training resumes from its last checkpoint; finished arms are read back, not rerun).

This module is round 1's: the prompt pool, the precondition, the arms to train; then `distill` (ssd/distill.py),
the body every round runs. Round 2 is ssd/round2.py; pipeline.py runs the one the spec names (ssd.round).

Not here: the engines (generate/), fine-tuning (train/finetune.py), export (train/export.py), pools (pool/).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from selfdistill import layout
from selfdistill.decide.refuse import forced_past
from selfdistill.errors import SpecError
from selfdistill.generate.backends import require_local_weights
from selfdistill.heldout import HeldoutSet
from selfdistill.spec import Spec
from selfdistill.ssd import arms
from selfdistill.ssd.distill import Round, RoundRefused, distill, evaluate_arm, stamp_manifest, write_pool_record
from selfdistill.tasks.registry import MIN_HELDOUT

log = logging.getLogger(__name__)
__all__ = ["Round", "RoundRefused", "arm_name", "load_round_pool", "planned_arms", "precondition", "run_round"]


def arm_name(arm: str, t: float, spec: Spec) -> str:
    return layout.arm_dir_name(arm, t, spec.generation.temperature)


def load_round_pool(spec: Spec, heldout: HeldoutSet):
    """The prompt pool, checked against the held-out set; and the held-out set without a split's pool ids."""
    from selfdistill.pool import load_pool
    from selfdistill.tasks.errata import Exclusion

    p = spec.pool
    pool = load_pool(p.source, split_fraction=p.split_fraction, seed=p.seed, limit=p.limit,
                     heldout=heldout.problems, heldout_task=spec.heldout.task, ngram=p.ngram,
                     reserved=heldout.reserved_pool_ids)
    if p.tests_available and pool.n_with_tests == 0:
        raise SpecError(
            f"error: pool.tests_available = true but the pool {p.source!r} has no tests; "
            "set it to false (no verifier-aware arm) or use a pool with tests"
        )
    drop = set(pool.exclude_from_heldout)
    if drop:
        kept = [q for q in heldout.problems if q.task_id not in drop]
        excluded = list(heldout.excluded) + [Exclusion(t, "in the SSD prompt pool (split)") for t in sorted(drop)]
        provenance = heldout.provenance | {
            "n_problems": len(kept),
            "meets_min_problems": len(kept) >= heldout.provenance.get("min_problems", MIN_HELDOUT),
            "excluded": [{"task_id": e.task_id, "reason": e.reason} for e in excluded],
        }
        heldout = replace(heldout, problems=kept, excluded=excluded, provenance=provenance)
    return pool, heldout


def precondition(r: Round, progress_factory) -> dict:
    """Evaluate the base model at the diagnostic temperature and decide; refuse on GO-OTHER or INCONCLUSIVE
    (decide/refuse.py) unless forced, or, on GO-OTHER, measure the move's comparator arm alone when
    comparator.measure names it (`comparator_only`: SSD stays refused)."""
    from selfdistill.decide.refuse import measures_refused_move, refusal, refuses
    from selfdistill.decision import decide

    metrics = evaluate_arm(r, "base", r.spec.generation.temperature, r.model, {}, progress_factory)
    decide(r.spec, r.run_dir / layout.BASE / layout.METRICS, r.run_dir / layout.BASE)
    verdict = layout.read_record(r.run_dir / layout.BASE / layout.VERDICT, "verdict")
    kind = verdict["overall"]["kind"]
    only = None if r.force else measures_refused_move(verdict, [m.value for m in r.spec.comparator.measure])
    if refuses(kind) and not r.force and only is None:
        raise RoundRefused(refusal(verdict, str(r.run_dir / layout.BASE / layout.VERDICT_MD)))
    return {"kind": kind, "verdict": verdict, "metrics": metrics, "comparator_only": only is not None}


def planned_arms(spec: Spec, verdict_kind: str, pool, comparator_only: bool = False) -> list[str]:
    return arms.planned(spec, verdict_kind, pool.n_with_tests, comparator_only=comparator_only)


def run_round(spec: Spec, heldout: HeldoutSet, run_dir: Path, *, limit: int | None, force: bool,
              progress_factory, say=print) -> dict:
    """Run (or resume) round 1; write and return its round.json. (pipeline.run_ssd_round dispatches by ssd.round.)"""
    from selfdistill.generate.default_model import resolve_model

    require_local_weights(spec.generation.backend.value)
    run_dir = run_dir.resolve()  # records name absolute paths: a training job or an export outlives the cwd
    pool, heldout = load_round_pool(spec, heldout)
    r = Round(spec, heldout, run_dir, limit, force, resolve_model(spec.model.path, spec.model.name))
    r.dir.mkdir(parents=True, exist_ok=True)
    write_pool_record(r.dir, pool)
    stamp_manifest(r)

    n_eval = min(limit, len(heldout.problems)) if limit else len(heldout.problems)
    say(f"precondition: base model on {n_eval} held-out problems at T={spec.generation.temperature}"
        + (f" (a seeded subset of {len(heldout.problems)}: not comparable)" if limit else ""))
    pre = precondition(r, progress_factory)
    say(f"precondition verdict: {pre['kind']}" + (" (forced past it)" if forced_past(pre["kind"], force) else ""))
    planned = planned_arms(spec, pre["kind"], pool, pre["comparator_only"])
    if pre["comparator_only"]:
        say(f"SSD refused ({pre['kind']}: {pre['verdict']['overall'].get('other')}); measuring the comparator "
            f"arm(s) {', '.join(planned)} beside the base (comparator.measure), no SSD arm")
    return distill(r, pool, planned, pre["metrics"], pre["verdict"], progress_factory, say)
