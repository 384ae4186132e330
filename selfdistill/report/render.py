"""`render_report(run_dir)`: deliverables A-E as report.md and a self-contained report.html, rendered
from the run directory alone (its JSON and JSONL files; nothing is recomputed from models or data).

The page leads with evidence: a warning box first when the round was forced past GO-OTHER or ran on a
`--limit` subset, then A (the precondition verdict), B (the SSD pipeline and what it measured, with the
plots and the cost), C (the verifier-aware arm, or why it is omitted), D (the round-2 gate) and E (the
promotion plan). A section whose inputs are absent says what is missing; a damaged file is a DataError
naming it. The plots are also written as report-plots/*.png, which report.md links to.
"""

from __future__ import annotations

import logging
from pathlib import Path

from selfdistill.errors import DataError
from selfdistill.report import gate, header, pipeline, plots, precondition, verifier
from selfdistill.report.html import to_html
from selfdistill.report.inputs import ROUND, Run, load_run
from selfdistill.rundir import write_bytes_atomic

log = logging.getLogger(__name__)

SOURCES = {  # section -> the file whose shape it mostly depends on (named when rendering it fails)
    "A": "base/verdict.json", "B": f"{ROUND}/round.json", "C": f"{ROUND}/round.json",
    "D": f"{ROUND}/gate.json", "E": f"{ROUND}/promotion.json",
}


def _guarded(name: str, build, *args) -> list[str]:
    """A section, or a DataError naming its input when that input lacks a field the section reads."""
    try:
        return build(*args)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        raise DataError(
            f"error: {SOURCES[name]} (or a file beside it) does not have the shape the report expects "
            f"({type(exc).__name__}: {exc} while rendering section {name}); rerun the stage that writes it"
        ) from exc


def build_markdown(run: Run, figs: dict | None) -> str:
    lines = [*header.title(run), *header.warnings(run), *header.contents()]
    lines += _guarded("A", precondition.section, run, figs)
    lines += _guarded("B", pipeline.section, run, figs)
    lines += _guarded("C", verifier.section, run)
    lines += _guarded("D", gate.gate_section, run)
    lines += _guarded("E", gate.promotion_section, run)
    text = "\n".join(lines).rstrip() + "\n"
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


def render_report(run_dir: Path) -> tuple[Path, Path]:
    """Write `<run_dir>/report.md` and `<run_dir>/report.html`; return their paths."""
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    figs = plots.make_plots(run)
    markdown = build_markdown(run, figs)
    if figs:
        (run_dir / "report-plots").mkdir(exist_ok=True)
        for plot in figs.values():
            write_bytes_atomic(run_dir / "report-plots" / f"{plot.name}.png", plot.png)
    md_path, html_path = run_dir / "report.md", run_dir / "report.html"
    write_bytes_atomic(md_path, markdown.encode("utf-8"))
    title = markdown.splitlines()[0].lstrip("# ")
    write_bytes_atomic(html_path, to_html(markdown, figs, title).encode("utf-8"))
    log.info("report: %s, %s (%d plots)", md_path, html_path, len(figs or {}))
    return md_path, html_path
