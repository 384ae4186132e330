"""report.md -> one self-contained report.html: CSS inline, plots as base64 PNG data URIs, no script,
no external URL (links that leave the page are rendered as their text; images that are not the
report's own plots are dropped).

Markdown is parsed by markdown-it-py (CommonMark + tables; raw HTML in the text is escaped, never
passed through), which rich already depends on.
"""

from __future__ import annotations

import base64
import html

from markdown_it import MarkdownIt
from markdown_it.token import Token

from selfdistill.report.header import slug

PLOT_PREFIX = "report-plots/"
BOX_CLASSES = {"**Warning": "warning", "**Not comparable": "warning",
               "**SSD was refused": "warning",
               "**Not run": "absent", "**Omitted": "absent", "**Missing": "absent"}

CSS = """
:root { --fg: #1d2330; --muted: #5b6577; --line: #d8dde6; --bg-soft: #f5f7fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff; font: 15px/1.5 system-ui, -apple-system, "Segoe UI",
  Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 1.7em; margin: 0.2em 0 0.4em; }
h2 { font-size: 1.35em; margin-top: 2em; padding-bottom: 0.25em; border-bottom: 2px solid var(--line); }
h3 { font-size: 1.12em; margin-top: 1.6em; }
h4, h5, h6 { font-size: 1em; margin-top: 1.3em; }
table { display: block; overflow-x: auto; border-collapse: collapse; margin: 0.6em 0 1em; font-size: 13.5px; }
th, td { border: 1px solid var(--line); padding: 4px 8px; vertical-align: top; text-align: left; }
th { background: var(--bg-soft); }
tr:nth-child(even) td { background: #fbfcfd; }
code { background: var(--bg-soft); padding: 0 3px; border-radius: 3px; font-size: 0.92em; }
blockquote { margin: 1em 0; padding: 0.5em 1em; border-left: 4px solid var(--line); background: var(--bg-soft); }
blockquote.warning { border: 2px solid #c0392b; border-left-width: 8px; background: #fdecea; }
blockquote.absent { border-left-color: #8a94a6; color: var(--muted); }
img.plot { display: block; max-width: 100%; height: auto; margin: 0.5em 0 0; border: 1px solid var(--line); }
em { color: var(--muted); }
.alert { color: #b03a2e; font-weight: 600; }
.ok { color: #1e7d45; font-weight: 600; }
"""


def _plot_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _image(tok: Token, plots: dict) -> Token:
    src = str(tok.attrGet("src"))
    plot = plots.get(src.removeprefix(PLOT_PREFIX).removesuffix(".png")) if src.startswith(PLOT_PREFIX) else None
    if plot is None:
        return Token("text", "", 0, content=f"[image omitted: {tok.content}]")
    tok.attrSet("src", _plot_uri(plot.png))
    tok.attrSet("class", "plot")
    return tok


def _inline(children: list[Token], plots: dict) -> list[Token]:
    """Embed the report's plots; keep in-page links (#...), render every other link as its text."""
    out, kept = [], []
    for tok in children:
        if tok.type == "link_open":
            kept.append(str(tok.attrGet("href")).startswith("#"))
            if not kept[-1]:
                continue
        elif tok.type == "link_close" and not kept.pop():
            continue
        out.append(_image(tok, plots) if tok.type == "image" else tok)
    return out


def _next_inline(tokens: list[Token], i: int) -> str:
    return next((t.content for t in tokens[i + 1:] if t.type == "inline"), "")


def _decorate(tokens: list[Token], plots: dict) -> None:
    for i, tok in enumerate(tokens):
        if tok.type == "blockquote_open":
            text = _next_inline(tokens, i)
            cls = next((c for prefix, c in BOX_CLASSES.items() if text.startswith(prefix)), None)
            if cls:
                tok.attrSet("class", cls)
        elif tok.type == "heading_open" and tok.tag in ("h2", "h3"):
            tok.attrSet("id", slug(_next_inline(tokens, i)))
        elif tok.type == "inline" and tok.children:
            tok.children = _inline(tok.children, plots)


def _highlight(body: str) -> str:
    body = body.replace("battery ALERT", '<span class="alert">battery ALERT</span>')
    for word in ("FAIL", "ALERT"):
        body = body.replace(f"<strong>{word}</strong>", f'<strong class="alert">{word}</strong>')
    return body.replace("battery green", '<span class="ok">battery green</span>')


def to_html(markdown: str, plots: dict | None, title: str) -> str:
    """The page: the Markdown rendered, its plot references replaced by embedded PNGs."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(markdown)
    _decorate(tokens, plots or {})
    body = _highlight(md.renderer.render(tokens, md.options, {}))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n{body}</main>\n"
        "</body>\n</html>\n"
    )
