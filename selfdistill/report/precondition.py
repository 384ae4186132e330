"""Deliverable A in the report: base/verdict.md as `selfdistill decide` rendered it (headings moved two
levels down), or, without it, the verdict from verdict.json; before the round has run, the base arm's
pass@k curve and completion lengths sit here too. Either way it leads with the 200-problem minimum and
ends with the note on what the CIs estimate (decide/render.py).
"""

from __future__ import annotations

from selfdistill.decide.render import CI_NOTE, minimum_line
from selfdistill.report import fmt, plots
from selfdistill.report.header import HEADINGS
from selfdistill.report.inputs import Run


def _demote(markdown: str, levels: int = 2) -> list[str]:
    out = []
    for line in markdown.rstrip().splitlines():
        hashes = len(line) - len(line.lstrip("#"))
        demote = hashes > 0 and line[hashes:hashes + 1] == " "
        out.append("#" * min(6, hashes + levels) + line[hashes:] if demote else line)
    return out


def _from_json(verdict: dict) -> list[str]:
    overall = verdict["overall"]
    k = overall.get("k") or verdict.get("k")  # the k the verdict rests on
    rows = [("verdict", fmt.verdict_label(overall))]
    if k:
        rows += [("pass@1 (%)", fmt.pct(overall.get("pass1"))), (f"pass@{k} (%)", fmt.pct(overall.get("passk")))]
        rows += [(f"gap pass@{r['k']} − pass@1",
                  fmt.pp(r["gap"] | {"n_problems": r["n_problems"]}, n=True) + f" ({r['side']})")
                 for r in overall.get("gaps_by_k") or []] or [
            (f"gap pass@{k} − pass@1", fmt.pp(overall.get("gap"), n=True))]
    lines = ["*base/verdict.md is missing; this is the verdict as recorded in base/verdict.json.*", "",
             f"> {minimum_line(verdict)}", "", *fmt.kv_table(rows), ""]
    if overall.get("justification"):
        lines += [overall["justification"], ""]
    for name, v in (verdict.get("slices") or {}).items():
        lines.append(f"- **{name}**: {fmt.verdict_label(v)}; gap {fmt.pp(v.get('gap'), n=True)}")
    return lines + ["", f"Summary: {verdict['summary']}", "", CI_NOTE, ""]


def section(run: Run, figs: dict | None) -> list[str]:
    lines = [f"## {HEADINGS['A']}", ""]
    if run.verdict_md:
        lines += _demote(run.verdict_md) + [""]
    elif run.verdict:
        lines += _from_json(run.verdict)
    else:
        return lines + [("> **Not run.** base/verdict.json does not exist: the base model has not been evaluated "
                        "and judged in this run directory (`selfdistill ssd SPEC --run-dir` starts with it)."), ""]
    if run.round is None:
        lines += ["### Base model: pass@k and completion lengths", ""]
        lines += plots.markdown(figs, "passk", "base/metrics.json is missing")
        lines += plots.markdown(figs, "lengths", "no samples.jsonl in the run directory")
    return lines
