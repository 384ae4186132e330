"""Deliverable C in the report: the verifier-aware arm (SSD on the samples that pass the pool's tests),
its filter, its training and its deltas against base and against minimal SSD; or why it was omitted.
"""

from __future__ import annotations

from selfdistill.report import deltas, fmt
from selfdistill.report.header import HEADINGS, not_run
from selfdistill.report.inputs import Run
from selfdistill.report.pipeline import training_table


def why_omitted(run: Run) -> str:
    want = (run.spec.get("ssd") or {}).get("verifier_arm", "auto")
    with_tests = (run.round.get("pool") or {}).get("n_with_tests")
    if want == "off":
        return "the spec switches it off (`ssd.verifier_arm = \"off\"`)"
    if with_tests == 0:
        return ("the prompt pool has no tests, so there is nothing to verify samples with "
                f"(pool `{((run.round.get('pool') or {}).get('provenance') or {}).get('source', '?')}`)")
    label = fmt.verdict_label(run.verdict["overall"]) if run.verdict else run.round.get("precondition", {}).get("kind")
    return (f"`ssd.verifier_arm = \"{want}\"` adds it only when the precondition verdict is GO-VERIFIER-AWARE-SSD "
            f"(rule R4: a verifier is available and a regression is costly), and the verdict is {label}")


def _filter_rows(run: Run) -> list[tuple[str, object]]:
    s, pool = run.round["sampling"], run.round.get("pool") or {}
    return [
        ("filter", ("keep a T_train sample only if it passes its pool problem's tests (after the same "
                   "empty / single-line filter as minimal SSD)")),
        ("pool prompts with tests", f"{pool.get('n_with_tests')} of {pool.get('n_problems')}"),
        ("samples on tested prompts", fmt.num(s.get("kept_with_tests"))),
        ("samples kept (passing)", fmt.num(s.get("kept_verifier"))),
        ("acceptance rate", fmt.share(s.get("acceptance_rate"))),
        ("minimal SSD keeps, for contrast", fmt.num(s.get("kept_minimal"))),
    ]


def section(run: Run) -> list[str]:
    lines = [f"## {HEADINGS['C']}", ""]
    if run.round is None:
        return lines + not_run(run)
    if "verifier" not in run.round["arms"]:
        return lines + [f"> **Omitted.** No verifier-aware arm in this round: {why_omitted(run)}.", ""]
    lines += [(f"Arm **verifier**: {(run.round.get('arm_titles') or {}).get('verifier', 'verifier-aware SSD')}; its "
              "own training directory, never merged into or reported as minimal SSD."), ""]
    lines += [*fmt.kv_table(_filter_rows(run)), "", *training_table(run, ["verifier"])]
    lines += ["### Deltas", "", *deltas.table(run, ["verifier_vs_base", "verifier_vs_ssd"])]
    return lines + [f"Battery: {fmt.battery_status(run.battery, 'verifier')}.", ""]
