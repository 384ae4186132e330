"""`selfdistill run SPEC`: every stage in order, resumably, ending with the report's path.

    check -> precondition (base eval + verdict) -> [GO-OTHER or INCONCLUSIVE: stop, say why, report A]
          -> SSD round (pool, T_train sampling, training, evaluation at T_eval)
          -> battery (probe) -> round-2 gate -> promotion plan -> report.md + report.html

A GO-OTHER verdict whose move's comparator arm is in comparator.measure (decide/refuse.py) does not stop: the
round measures that comparator alone beside the base (no SSD arm, no T_train sampling; SSD stays refused),
then battery -> promotion plan (SSD refused, the comparator reported) -> report; no round-2 gate (no SSD arm
seeds round 2). INCONCLUSIVE names no move and stops as before.

A finished stage is skipped (its output is read back); a killed one continues where it stopped (each
stage appends its records as they finish). The report is rendered only from the run directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from selfdistill.checks import CheckReport


@dataclass(frozen=True)
class RunResult:
    stopped_after_verdict: bool
    verdict: str
    why: str
    report_md: Path
    report_html: Path
    comparator_only: tuple[str, ...] = ()  # SSD refused; these comparator arms were measured instead


def run_all(report: CheckReport, run_dir: Path, *, limit: int | None, force: bool, progress_factory,
            say=print) -> RunResult:
    from selfdistill.report import render_report
    from selfdistill.ssd.distill import RoundRefused
    from selfdistill.ssd.gate import gate_for_run
    from selfdistill.ssd.probe import run_probes
    from selfdistill.ssd.promotion import promotion_for_run

    spec = report.spec
    try:
        summary = run_ssd_round(spec, report.heldout, run_dir, limit=limit, force=force,
                                progress_factory=progress_factory, say=say)
    except RoundRefused as exc:
        md, html = render_report(run_dir)
        from selfdistill import layout

        verdict = layout.read_record(run_dir / layout.BASE / layout.VERDICT, "verdict")
        return RunResult(True, verdict["overall"]["kind"], str(exc).removeprefix("error: "), md, html)
    only = tuple(summary["arms"]) if summary.get("comparator_only") else ()
    say("battery: the anti-collapse probes, distilled arms against the base")
    run_probes(spec, run_dir, say=say)
    if only:
        say("round-2 gate: none (SSD was refused; only comparator arms were measured)")
    else:
        say("round-2 gate")
        gate_for_run(spec, round_heldout(report, run_dir), run_dir)
    say("promotion plan")
    promotion_for_run(spec, run_dir)
    md, html = render_report(run_dir)
    return RunResult(False, summary["precondition"]["kind"], summary["precondition"].get("summary") or "", md, html,
                     only)


def run_ssd_round(spec, heldout, run_dir: Path, *, limit: int | None, force: bool, progress_factory,
                  say=print) -> dict:
    """Run (or resume) the round the spec names (ssd.round): round 1 from the base model, round 2 from the arm
    round 1's gate passed. Returns its round.json."""
    if spec.ssd.round > 1:
        from selfdistill.ssd.round2 import run_next_round

        return run_next_round(spec, Path(run_dir).resolve(), limit=limit, force=force,
                              progress_factory=progress_factory, say=say)
    from selfdistill.ssd.round import run_round

    return run_round(spec, heldout, run_dir, limit=limit, force=force, progress_factory=progress_factory, say=say)


def round_heldout(report: CheckReport, run_dir: Path):
    """The held-out set the round evaluated on (a split pool's ids removed), for the fresh-slice check."""
    from selfdistill.ssd.round import load_round_pool

    _, heldout = load_round_pool(report.spec, report.heldout)
    return heldout
