"""`selfdistill decide SPEC --metrics M`: deliverable A, the Precondition Verdict, from a complete spec
and a metrics.json. The spec supplies the rule's numbers (gap threshold, floor, ceiling), whether a
verifier exists for the prompt pool, and the failure cost; the metrics supply pass@1, pass@k and the
gap with their CIs at every k, overall and per slice. Writes verdict.json and verdict.md beside the
metrics; both lead with the 200-problem minimum when the set is smaller.

Not here: the rule itself (decide/verdict.py, table-tested) or the statistics (metrics/).
"""

from __future__ import annotations

from pathlib import Path

from selfdistill.decide.precondition import precondition_from_metrics
from selfdistill.decide.render import render_precondition
from selfdistill.decide.verdict import Rules
from selfdistill.errors import DataError
from selfdistill.rundir import file_sha256, read_json, write_json_atomic
from selfdistill.spec import ComparatorKind, Spec


def rules_from_spec(spec: Spec) -> Rules:
    d = spec.diagnostics
    return Rules(
        gap_threshold=d.gap_threshold_pp / 100,
        floor=d.floor_pp / 100,
        ceiling=d.ceiling_pp / 100,
        verifier_available=spec.pool.tests_available,
        failure_cost=spec.failure_cost.level.value,
        preference_data=spec.comparator.kind is ComparatorKind.DPO,
        rl_gpu_hours=spec.budget.gpu_hours_sampling + spec.budget.gpu_hours_training,
    )


def decide(spec: Spec, metrics_path: Path, out: Path) -> str:
    """Write verdict.json and verdict.md into `out`; return the Markdown."""
    metrics = read_json(metrics_path, "metrics file")
    k = max(spec.diagnostics.k)
    if k not in metrics.get("ks", []):
        raise DataError(
            f"error: {metrics_path} has pass@k for k={metrics.get('ks')} but the spec's verdict needs pass@{k} "
            f"(diagnostics.k); score samples with n >= {k} per problem, or lower diagnostics.k with a reason"
        )
    report = precondition_from_metrics(metrics, rules_from_spec(spec), k=k, ks=spec.diagnostics.k)
    errata = {e["task_id"]: e["reason"] for e in metrics.get("provenance", {}).get("excluded", [])}
    markdown = render_precondition(metrics, report, errata=errata or None)
    comparable = metrics.get("provenance", {}).get("comparable", True)
    if not comparable:
        limit = metrics["provenance"].get("limit")
        markdown = (
            f"> **Not comparable**: computed on a seeded subset of {limit} problems (`--limit {limit}`), "
            "not the whole held-out set. A smoke test of the pipeline, not a basis for a training decision.\n\n"
            + markdown
        )
    verdict = report.to_json() | {
        "comparable": comparable,
        "metrics_file": str(metrics_path),
        "metrics_sha256": file_sha256(metrics_path),
        "spec": spec.model_dump(mode="json"),
    }
    write_json_atomic(out / "verdict.json", verdict)
    (out / "verdict.md").write_text(markdown + "\n", encoding="utf-8")
    return markdown
