"""`selfdistill decide SPEC --metrics M`: deliverable A, the Precondition Verdict, from a complete spec
and a metrics.json. The spec supplies the rule's numbers (gap threshold, floor, ceiling), whether a
verifier exists for the prompt pool, and the failure cost; the metrics supply pass@1, pass@k and the
gap with their CIs at every k, overall and per slice. Writes verdict.json and verdict.md beside the
metrics; both lead with the 200-problem minimum when the set is smaller.

Not here: the rule itself (decide/verdict.py, table-tested) or the statistics (metrics/).
"""

from __future__ import annotations

import json
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


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: object) -> bool:  # nan and out-of-range values are the verdict's checks, named there
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _optional(kind):
    return lambda v: v is None or kind(v)


def _dict_of(item):
    return lambda v: isinstance(v, dict) and all(item(x) for x in v.values())


def _list_of(item):
    return lambda v: isinstance(v, list) and all(item(x) for x in v)


REQUIRED = ("ks", "n_problems", "n_resamples", "status_counts", "metrics", "gaps")  # read unguarded downstream
_ESTIMATE = {"value": _is_num, "ci_low": _is_num, "ci_high": _is_num, "n_problems": _optional(_is_int)}
_GROUP = {"metrics": dict, "gaps": dict, "excluded": _dict_of(_list_of(lambda e: isinstance(e, dict))),
          "n_problems": _optional(_is_int)}


def check_metrics_shape(metrics: dict, path: Path) -> None:
    """The shape of a metrics.json (as score/eval write it) before any of it is used: a wrongly typed field
    ("metrics": [], a null gap, "slices": "x") is a DataError naming the file and the field, not a
    traceback. Ranges (fractions in [0, 1], ordered CIs) are the verdict's own checks."""

    def bad(field: str, value: object, want: str) -> DataError:
        shown = json.dumps(value)[:80] if not isinstance(value, float) else repr(value)
        return DataError(f"error: metrics file {path}: {field} is {shown}, expected {want}; rewrite it with "
                         "`selfdistill score` (or eval), or fix that field")

    def check(field: str, value: object, ok, want: str) -> None:
        passed = isinstance(value, ok) if isinstance(ok, type) else ok(value)
        if not passed:
            raise bad(field, value, want)

    def group(prefix: str, g: dict) -> None:
        for key, ok in _GROUP.items():
            if key in g:
                check(f"{prefix}{key}", g[key], ok, "an object {...}" if ok is dict else
                      "a list of objects per key" if key == "excluded" else "an integer or null")
        for part in ("metrics", "gaps"):
            for name, est in g.get(part, {}).items():
                field = f"{prefix}{part}.{name}"
                check(field, est, dict, 'an object {"value", "ci_low", "ci_high", "n_problems"}')
                for key, ok in _ESTIMATE.items():
                    if key not in est and key != "n_problems":
                        raise bad(field, est, f'an object with "{key}"')
                    if key in est:
                        check(f"{field}.{key}", est[key], ok,
                              "an integer or null" if key == "n_problems" else "a number or null")

    for key in REQUIRED:
        if key not in metrics:
            raise DataError(f"error: metrics file {path} lacks the field {key!r} (score and eval always write it); "
                            "give a metrics.json written by `selfdistill score` or eval")
    check("ks", metrics.get("ks", []), _list_of(_is_int), "a list of integers")
    for key in ("n_problems", "n_samples", "n_resamples"):
        check(key, metrics.get(key), _optional(_is_int), "an integer")
    check("status_counts", metrics.get("status_counts", {}), _dict_of(_is_int), "an object of integer counts")
    group("", metrics)
    check("slices", metrics.get("slices", {}), dict, "an object {slice name: {...}}")
    for name, g in metrics.get("slices", {}).items():
        check(f"slices.{name}", g, dict, 'an object {"metrics", "gaps", ...}')
        for key in ("n_problems", "metrics", "gaps"):
            if key not in g:
                raise DataError(f"error: metrics file {path}: slices.{name} lacks the field {key!r}; "
                                "give a metrics.json written by `selfdistill score` or eval")
        group(f"slices.{name}.", g)
    check("per_problem", metrics.get("per_problem", {}), dict, "an object {task_id: {...}}")
    for task_id, row in metrics.get("per_problem", {}).items():
        field = f"per_problem.{task_id}"
        check(field, row, dict, 'an object {"n", "c", ...}')
        check(f"{field}.n", row.get("n"), _is_int, "an integer")
        check(f"{field}.slice", row.get("slice"), _optional(lambda v: isinstance(v, str)), "a slice name or null")
        check(f"{field}.halves", row.get("halves"), _optional(lambda v: isinstance(v, dict)), "an object or null")
        estimate = (row.get("halves") or {}).get("estimate")
        check(f"{field}.halves.estimate", estimate, _optional(lambda v: isinstance(v, dict) and _is_int(v.get("n"))),
              'an object {"n": integer, ...} or null')
    check("unsliced", metrics.get("unsliced", []), _list_of(lambda v: isinstance(v, str)), "a list of task ids")
    check("slice_bins", metrics.get("slice_bins"), _optional(_dict_of(lambda v: isinstance(v, str))),
          "an object of strings or null")  # null unless the slices are the base-pass-rate proxy (metrics/summary.py)
    for key in ("slice_source", "slice_note", "slice_proxy_from"):
        check(key, metrics.get(key), _optional(lambda v: isinstance(v, str)), "a string")
    prov = metrics.get("provenance", {})
    check("provenance", prov, dict, "an object {...}")
    check("provenance.excluded", prov.get("excluded", []),
          _list_of(lambda e: isinstance(e, dict) and isinstance(e.get("task_id"), str)
                   and isinstance(e.get("reason"), str)), '[{"task_id": ..., "reason": ...}, ...]')
    check("provenance.comparable", prov.get("comparable", True), lambda v: isinstance(v, bool), "true or false")
    check("provenance.limit", prov.get("limit"), _optional(_is_int), "an integer or null")


def decide(spec: Spec, metrics_path: Path, out: Path) -> str:
    """Write verdict.json and verdict.md into `out`; return the Markdown."""
    metrics = read_json(metrics_path, "metrics file")
    check_metrics_shape(metrics, metrics_path)
    k = max(spec.diagnostics.k)
    if k not in metrics.get("ks", []):
        raise DataError(
            f"error: {metrics_path} has pass@k for k={metrics.get('ks')} but the spec's verdict needs pass@{k} "
            f"(diagnostics.k); score samples with n >= {k} per problem, or lower diagnostics.k with a reason"
        )
    report = precondition_from_metrics(metrics, rules_from_spec(spec), k=k, ks=spec.diagnostics.k)
    errata = {e["task_id"]: e["reason"] for e in metrics.get("provenance", {}).get("excluded", [])}
    markdown = render_precondition(metrics, report, errata=errata or None,
                                   measured=[m.value for m in spec.comparator.measure])
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
