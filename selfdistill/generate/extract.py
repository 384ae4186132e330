"""Code extraction: the Python program a chat model's reply stands for, found by text rules alone.

Nothing here runs model output: the only analysis is `ast.parse` (a parser, never `exec`/`compile` to
code objects that are run). The rules, in order, on the reply with CRLF / lone CR turned into LF:

  0. Reasoning. When the reply contains `</think>`, only the text after the LAST `</think>` is used
     (drafts inside a reasoning section are not the answer). An unclosed `<think>` is left as is.
  1. "fenced-python": complete fenced blocks whose info string's first word is `python`, `py` or
     `python3` (any case; backtick or tilde fences of 3+ characters, indented or not; a block closes at
     a line holding only a fence of the same character at least as long). Among several: the first
     that defines the entry point (`def <entry_point>(`, `async def`, or `class <entry_point>`) when
     one is given, else the longest (the first of equally long ones). Blank blocks are skipped.
  2. "fenced-any": the same choice among complete fenced blocks with any other info string or none.
  3. "unterminated-fence": an opening fence never closed (the model ran out of tokens): everything
     after that fence line, when it is not blank.
  4. "raw-parses": the whole reply, when it parses with `ast.parse` AND holds at least one statement
     that is not a bare name/constant/attribute expression (so `def`, `class`, `import`, an
     assignment, a loop, a call such as `print(solve())` count; "Yes", "True" or "42" do not).
  5. "none": no code (`code is None`); the caller counts the sample as having no extractable code.

A fenced block's lines lose the fence line's own indentation (so a block inside a markdown list reads
as top-level code); leading and trailing blank lines are dropped and the code ends with one newline.
Nothing else is changed (trailing spaces may belong to a string literal).
What this module does NOT do: repair code, pick between two plausible solutions by running them, or
read prose for hints. `program_from_completion` in `prompts.py` turns an extraction into a program.
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass
from enum import StrEnum


class ExtractMethod(StrEnum):
    FENCED_PYTHON = "fenced-python"
    FENCED_ANY = "fenced-any"
    UNTERMINATED_FENCE = "unterminated-fence"
    RAW_PARSES = "raw-parses"
    NONE = "none"
    CONTINUATION = "continuation"  # base models only: prefix + truncated continuation (prompts.py)


@dataclass(frozen=True)
class Extraction:
    code: str | None
    method: ExtractMethod  # a StrEnum: compares equal to (and serializes as) its string value


PYTHON_LANGS = frozenset({"python", "py", "python3"})
THINK_CLOSE = "</think>"

_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*?)[ \t]*$")
_CLOSE = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*$")


@dataclass(frozen=True)
class _Block:
    lang: str
    code: str


def extract_code(text: str, entry_point: str | None = None) -> Extraction:
    """The code in a model reply, by the rules in the module docstring (never executed)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if THINK_CLOSE in text:
        text = text.rsplit(THINK_CLOSE, 1)[1]
    blocks, unterminated = _scan_fences(text)
    python = [b for b in blocks if b.lang in PYTHON_LANGS]
    if python:
        return Extraction(_choose(python, entry_point).code, ExtractMethod.FENCED_PYTHON)
    if blocks:
        return Extraction(_choose(blocks, entry_point).code, ExtractMethod.FENCED_ANY)
    if unterminated is not None:
        return Extraction(unterminated.code, ExtractMethod.UNTERMINATED_FENCE)
    if _parses_as_code(text):
        return Extraction(_tidy(text.split("\n")), ExtractMethod.RAW_PARSES)
    return Extraction(None, ExtractMethod.NONE)


def defines(code: str, name: str) -> bool:
    """Whether `code` has a line defining `name` as a function or class (any indentation)."""
    pattern = rf"^[ \t]*(?:(?:async[ \t]+)?def[ \t]+{re.escape(name)}[ \t]*\(|class[ \t]+{re.escape(name)}\b)"
    return re.search(pattern, code, re.MULTILINE) is not None


def _scan_fences(text: str) -> tuple[list[_Block], _Block | None]:
    """Complete non-blank fenced blocks in order, and the unterminated block that ends the text, if any."""
    lines = text.split("\n")
    blocks: list[_Block] = []
    i = 0
    while i < len(lines):
        opening = _OPEN.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence, indent = opening["fence"], opening["indent"]
        info = opening["info"].split()
        lang = info[0].strip("{}.").lower() if info else ""
        end = _closing_line(lines, i + 1, fence)
        if end is None:
            code = _tidy(_dedent(lines[i + 1 :], len(indent)))
            return blocks, (_Block(lang, code) if code.strip() else None)
        code = _tidy(_dedent(lines[i + 1 : end], len(indent)))
        if code.strip():
            blocks.append(_Block(lang, code))
        i = end + 1
    return blocks, None


def _closing_line(lines: list[str], start: int, fence: str) -> int | None:
    for j in range(start, len(lines)):
        closing = _CLOSE.match(lines[j])
        if closing and closing["fence"][0] == fence[0] and len(closing["fence"]) >= len(fence):
            return j
    return None


def _dedent(lines: list[str], width: int) -> list[str]:
    """Drop up to `width` leading blanks from each line (the fence line's own indentation)."""
    out = []
    for line in lines:
        blanks = len(line) - len(line.lstrip(" \t"))
        out.append(line[min(blanks, width) :])
    return out


def _tidy(lines: list[str]) -> str:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return "\n".join(lines) + "\n" if lines else ""


def _choose(blocks: list[_Block], entry_point: str | None) -> _Block:
    if entry_point:
        for block in blocks:
            if defines(block.code, entry_point):
                return block
    return max(blocks, key=lambda b: len(b.code))  # max keeps the first of equal lengths


def _parses_as_code(text: str) -> bool:
    if not text.strip():
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. SyntaxWarning for "\d" in prose
            tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return any(_is_code_statement(node) for node in tree.body)


def _is_code_statement(node: ast.stmt) -> bool:
    if isinstance(node, ast.Expr):  # a bare expression is code only when it does something
        return isinstance(node.value, (ast.Call, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr))
    return True
