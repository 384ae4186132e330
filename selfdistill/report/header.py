"""The top of the report: title, the warning box (below the 200-problem minimum, forced past a GO-OTHER or
INCONCLUSIVE verdict, or a --limit subset), the contents, and the one sentence that every section of an
unrun round uses to say why it was not run.
"""

from __future__ import annotations

import re

from selfdistill.decide.refuse import a, refuses
from selfdistill.report import fmt
from selfdistill.report.inputs import Run

HEADINGS = {
    "A": "A. Precondition Verdict",
    "B": "B. SSD Pipeline Spec",
    "C": "C. Verifier-Aware Arm Spec",
    "D": "D. Round-2 Gate",
    "E": "E. Promotion Plan",
}


def slug(heading: str) -> str:
    """GitHub's heading anchor: lowercase, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def title(run: Run) -> list[str]:
    spec = run.spec
    model = spec.get("model") or {}
    heldout = (run.manifest or {}).get("heldout") or {}
    facts = [f"run directory `{run.dir.name}`"]
    if model.get("name"):
        size = f", {model['parameters_b']:g}B parameters" if model.get("parameters_b") else ""
        facts.append(f"model **{model['name']}**{size}")
    task = heldout.get("task") or (spec.get("heldout") or {}).get("task")
    if task:
        n = f", {heldout['n_problems']} problems" if heldout.get("n_problems") is not None else ""
        share = heldout.get("mbpp_share")
        plus = f" + {share['n']} MBPP problems (seed {share['seed']}, held out of the pool)" if share else ""
        facts.append(f"held-out set `{task}`{plus}{n}")
    if (run.manifest or {}).get("created"):
        facts.append(f"created {run.manifest['created']}")
    if (run.manifest or {}).get("selfdistill_version"):
        facts.append(f"selfdistill {run.manifest['selfdistill_version']}")
    return [f"# Simple Self-Distillation report: {model.get('name') or run.dir.name}", "", "; ".join(facts) + ".", ""]


def warnings(run: Run) -> list[str]:
    """One warning box at the very top, or nothing."""
    items = []
    minimum = (run.verdict or {}).get("min_problems", 200)
    if run.verdict and run.verdict.get("meets_min_problems") is False:
        items.append(
            f"**Warning: below the {minimum}-problem minimum.** The precondition verdict rests on "
            f"{run.verdict.get('n_problems')} held-out problems; the strategy makes {minimum} mandatory, and at this "
            "size the 95% CIs cover less often than they claim. Not a basis for a training decision on its own."
        )
    if run.forced:
        if refuses(run.verdict_kind):
            label = fmt.verdict_label(run.verdict["overall"]) if run.verdict else "unknown (no verdict.json)"
            kind = run.verdict_kind or "unknown"
            items.append(
                f"**Warning: forced past {a(kind)} precondition verdict.** The verdict is {label}; the round ran "
                "only because `--force` was passed. Every result below is stamped forced: evidence about the "
                "pipeline, not a recommendation to train."
            )
        else:
            items.append(
                f"**Warning: run with `--force`.** The verdict ({fmt.verdict_label(run.verdict['overall'])}) did "
                "not need it; results are stamped forced all the same."
            )
    if not run.comparable:
        subset = f"a `--limit {run.limit}` subset of {run.limit} problems" if run.limit else "a `--limit` subset"
        items.append(
            f"**Warning: not comparable.** Evaluated on {subset}, not the whole held-out set: a smoke test of "
            "the pipeline, not a basis for a training decision; do not compare these numbers with a full run."
        )
    if not items:
        return []
    lines = []
    for item in items:
        lines += [f"> {item}", ">"]
    return lines[:-1] + [""]


def contents() -> list[str]:
    return [f"- [{h}](#{slug(h)})" for h in HEADINGS.values()] + [""]


def not_run_reason(run: Run, *, summary: bool = True) -> str:
    """Why round 1 has no results in this run directory (with the verdict's summary, or without)."""
    if run.verdict is None:
        return ("the precondition has not been run: base/verdict.json does not exist "
                "(run `selfdistill ssd SPEC --run-dir` on this directory)")
    overall = run.verdict["overall"]
    if refuses(overall["kind"]) and not run.forced:
        why = ("the gap's CI straddles the threshold, so the precondition is not confirmed"
               if overall["kind"] == "INCONCLUSIVE" else "SSD is not the recommended move")
        return (f"the precondition verdict is {fmt.verdict_label(overall)}: {why}, and the round was not started "
                f"(it runs past {overall['kind']} only with `--force`). "
                + (run.verdict.get("summary", "") if summary else "")).strip()
    return (f"round1/round.json does not exist: the round has not been run, or has not finished, in this run "
            f"directory (the precondition verdict is {fmt.verdict_label(overall)})")


def not_run(run: Run, *, summary: bool = False) -> list[str]:
    return [f"> **Not run.** Round 1 has no results: {not_run_reason(run, summary=summary)}", ""]
