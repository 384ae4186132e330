"""Deliverables A-E rendered from a run directory only: report.md and a self-contained report.html.

    from selfdistill.report import render_report
    md_path, html_path = render_report(Path("runs/quickstart"))

or `python -m selfdistill.report RUN_DIR`. Pure core: no torch, transformers or vllm; matplotlib (the
`report` extra) only for the plots. The layout and every input are described in docs/report.md.
"""

from selfdistill.report.inputs import Run, load_run
from selfdistill.report.render import build_markdown, render_report

__all__ = ["Run", "build_markdown", "load_run", "render_report"]
