"""Mine HumanEval-style prompts from a user's Python codebase (`codebase:<dir>` pools).

Walks `*.py` files under the directory in sorted order, skipping hidden directories, virtual
environments (`venv`, and any directory holding a pyvenv.cfg or conda-meta/), `site-packages`,
`__pycache__`, `node_modules`, test directories (`tests`, `test`) and test files (`test_*.py`,
`*_test.py`, `conftest.py`). Each file is parsed with `ast` (never imported or run); a file that does
not read or parse is counted and skipped.

A prompt is made for each top-level function and each method of a top-level (or nested) class whose
name does not start with `_` (nor its class's), and whose docstring is at least 20 characters long:

    <the module's top-level import statements>

    <the def signature, decorators dropped, dedented for methods>
        \"\"\"<the docstring, cleaned, indented 4 spaces>
        \"\"\"

so the model continues with the body, as for HumanEval. task_id = `<relative path>::<qualname>`,
entry point = the function name, no tests (these prompts are sampled, never scored). Functions nested
inside functions are not mined. Duplicates are dropped by the pool loader, not here.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
import warnings
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from selfdistill.errors import DataError
from selfdistill.tasks.problem import Problem

SOURCE = "codebase"
MIN_DOCSTRING = 20
SKIP_DIRS = frozenset({"site-packages", "__pycache__", "node_modules", "tests", "test", "venv"})
MAX_LISTED = 20


@dataclass
class MineStats:
    files_scanned: int = 0
    files_unparsable: int = 0
    unparsable: list[str] = field(default_factory=list)  # the first MAX_LISTED, relative paths
    functions_found: int = 0
    skipped_private: int = 0
    skipped_docstring: int = 0  # no docstring, shorter than MIN_DOCSTRING, or not renderable
    kept: int = 0

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {"min_docstring_chars": MIN_DOCSTRING}


def mine_codebase(root: str | Path) -> tuple[list[Problem], MineStats]:
    """Prompts mined from every eligible function under `root` (rules in the module docstring)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(
            f"codebase:{root}: no such directory; give the root of a Python codebase, e.g. codebase:./src"
        )
    stats, problems, seen = MineStats(), [], Counter()
    for path in python_files(root):
        rel = path.relative_to(root).as_posix()
        stats.files_scanned += 1
        tree, source = _parse(path)
        if tree is None:
            stats.files_unparsable += 1
            if len(stats.unparsable) < MAX_LISTED:
                stats.unparsable.append(rel)
            continue
        for problem in _file_prompts(tree, source, rel, stats):
            seen[problem.task_id] += 1
            if seen[problem.task_id] > 1:  # the same qualname twice in a file (conditional definitions)
                problem = replace(problem, task_id=f"{problem.task_id}#{seen[problem.task_id]}")
            problems.append(problem)
    stats.kept = len(problems)
    return problems, stats


def python_files(root: Path) -> list[Path]:
    """The `*.py` files to mine, sorted, with the skipped directories and test files left out."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not _skip_dir(here / d))
        found += [here / f for f in sorted(filenames) if f.endswith(".py") and not _is_test_file(f)]
    return found


def _skip_dir(path: Path) -> bool:
    if path.name.startswith(".") or path.name in SKIP_DIRS:
        return True
    return (path / "pyvenv.cfg").exists() or (path / "conda-meta").is_dir()  # a virtualenv or conda env


def _is_test_file(name: str) -> bool:
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"


def _parse(path: Path) -> tuple[ast.Module | None, str]:
    try:
        with tokenize.open(path) as f:  # honours a coding cookie
            source = f.read()
        return ast.parse(source, filename=str(path)), source
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError, RecursionError, MemoryError):
        return None, ""


def _file_prompts(tree: ast.Module, source: str, rel: str, stats: MineStats) -> list[Problem]:
    lines = [line + "\n" for line in source.split("\n")]  # as ast counts lines (str.splitlines also splits at \f)
    imports = [_segment(lines, n) for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    header = "\n".join(imports) + "\n\n\n" if imports else ""
    out = []
    for node, qualname in _functions(tree.body, "", stats):
        doc = ast.get_docstring(node, clean=True)
        if not doc or len(doc.strip()) < MIN_DOCSTRING:
            stats.skipped_docstring += 1
            continue
        block = docstring_block(doc)
        if block is None:
            stats.skipped_docstring += 1
            continue
        prompt = header + signature(node, lines) + "\n" + block
        out.append(Problem(task_id=f"{rel}::{qualname}", prompt=prompt, tests=None, source=SOURCE,
                           entry_point=node.name, prefix=prompt))  # fmt: skip
    return out


def _functions(body: list[ast.stmt], prefix: str, stats: MineStats, private: bool = False):
    """(function node, qualname) for functions and methods, public ones only; nested functions skipped."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            stats.functions_found += 1
            if private or node.name.startswith("_"):
                stats.skipped_private += 1
                continue
            yield node, prefix + node.name
        elif isinstance(node, ast.ClassDef):
            hidden = private or node.name.startswith("_")
            yield from _functions(node.body, f"{prefix}{node.name}.", stats, hidden)


def _segment(lines: list[str], node: ast.stmt) -> str:
    """A node's source text (`ast.get_source_segment` re-splits the whole file on every call)."""
    chunk = [line.encode() for line in lines[node.lineno - 1 : node.end_lineno]]  # offsets are in UTF-8 bytes
    chunk[-1] = chunk[-1][: node.end_col_offset]
    chunk[0] = chunk[0][node.col_offset :]
    return b"".join(chunk).decode()


def signature(node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> str:
    """The `def ...:` header as written (decorators dropped), dedented to column 0, up to its colon."""
    start = node.lineno - 1
    text = "".join(lines[start : node.body[0].lineno])
    depth = 0
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        elif tok.type == tokenize.OP and tok.string == ":" and depth == 0:
            row, col = tok.end
            break
    else:  # pragma: no cover - ast accepted the def, so its colon is there
        raise ValueError(f"no signature colon found in {text[:80]!r}")
    header = text.splitlines(keepends=True)[:row]
    header[-1] = header[-1][:col]
    dedent = re.compile(rf"^[ \t]{{0,{node.col_offset}}}")
    return "".join(dedent.sub("", h) for h in header).rstrip()


def docstring_block(doc: str) -> str | None:
    """The docstring as a literal indented 4 spaces, closing quotes on their own line (HumanEval style);
    raw when it holds backslashes, escaped when it cannot be written as it is; None if nothing compiles."""
    lines = doc.strip().split("\n")
    quote = "'''" if '"""' in doc else '"""'
    raw = "r" if "\\" in doc else ""
    literal = _literal(lines, raw + quote, quote)
    if quote in doc or not _compiles(literal):
        literal = _literal(["".join(map(_escape, line)) for line in lines], '"""', '"""')
    return literal if _compiles(literal) else None


def _literal(lines: list[str], opening: str, closing: str) -> str:
    body = "\n".join(("    " + line) if line.strip() else "" for line in lines)
    return f"    {opening}\n{body}\n    {closing}\n"


def _escape(ch: str) -> str:
    if ch in '\\"':
        return "\\" + ch
    if (ord(ch) < 32 and ch != "\t") or ord(ch) == 127:
        return f"\\x{ord(ch):02x}"
    return ch


def _compiles(literal: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile("def f():\n" + literal + "    pass\n", "<prompt>", "exec")
        except (SyntaxError, ValueError):
            return False
    return True
