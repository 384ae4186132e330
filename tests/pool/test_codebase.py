"""`codebase:<dir>` pools: which functions become prompts, what a prompt looks like, what is skipped
and counted."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from selfdistill.errors import DataError
from selfdistill.pool import load_pool
from selfdistill.pool.codebase import docstring_block, mine_codebase

GEOMETRY = '''\
from __future__ import annotations
import math
from typing import (
    Sequence,
)


def area(r: float) -> float:
    """Area of a circle of radius r, in square units."""
    return math.pi * r * r


@functools.cache
def perimeter(
    r: float,
    *, scale: float = 1.0,
) -> float:  # trailing comment
    """
    Perimeter of a circle of radius r.

    >>> perimeter(1.0)
    6.283185307179586
    """
    return 2 * math.pi * r * scale


def _helper(x):
    """A private helper that is long enough to count."""
    return x


def short(x):
    """Too short."""
    return x


def undocumented(x):
    return x


class Shape:
    """A shape."""

    @property
    def sides(self) -> int:
        """How many straight sides the shape has, as an integer."""
        return 0

    def _secret(self):
        """Private, though well documented and long enough."""


class _Hidden:
    def visible(self):
        """Public name inside a private class: skipped."""
'''

DUPLICATE = '''\
import math


def area(r: float) -> float:
    """Area of a circle of radius r, in square units."""
    return 3.14 * r * r
'''

TREE = {
    "pkg/geometry.py": GEOMETRY,
    "pkg/copy_of_geometry.py": DUPLICATE.replace("import math",
                                                 "from __future__ import annotations\nimport math\n"
                                                 "from typing import (\n    Sequence,\n)"),
    "pkg/broken.py": "def oops(:\n    pass\n",
    "pkg/test_geometry.py": 'def check_area():\n    """A test file that must not become a prompt."""\n',
    "tests/test_more.py": 'def helper_in_tests():\n    """A tests/ directory that must not be mined."""\n',
    "tests/helpers.py": 'def helper_in_tests():\n    """A tests/ directory that must not be mined."""\n',
    ".venv/lib/mod.py": 'def vendored():\n    """A hidden directory that must not be mined."""\n',
    "env/pyvenv.cfg": "home = /usr/bin\n",
    "env/lib/mod.py": 'def vendored():\n    """A virtualenv that must not be mined at all."""\n',
    "build/site-packages/dep.py": 'def vendored():\n    """Installed packages that must not be mined."""\n',
    "pkg/notes.txt": "def not_python():\n",
}


@pytest.fixture
def codebase(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    for rel, text in TREE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_public_documented_functions_and_methods_become_prompts(codebase):
    problems, _ = mine_codebase(codebase)
    ids = [p.task_id for p in problems]
    assert ids == [
        "pkg/copy_of_geometry.py::area",
        "pkg/geometry.py::area",
        "pkg/geometry.py::perimeter",
        "pkg/geometry.py::Shape.sides",
    ]
    assert [p.entry_point for p in problems] == ["area", "area", "perimeter", "sides"]
    assert all(p.tests is None and p.source == "codebase" and p.prefix == p.prompt for p in problems)


def test_skipped_files_and_functions_are_counted(codebase):
    _, stats = mine_codebase(codebase)
    assert stats.files_scanned == 3 and stats.files_unparsable == 1 and stats.unparsable == ["pkg/broken.py"]
    # geometry: area, perimeter, _helper, short, undocumented, sides, _secret, visible; the copy: area
    assert stats.functions_found == 9 and stats.skipped_private == 3 and stats.skipped_docstring == 2
    assert stats.kept == 4


def test_prompt_is_imports_then_signature_then_docstring(codebase):
    problems, _ = mine_codebase(codebase)
    perimeter = next(p for p in problems if p.entry_point == "perimeter")
    assert perimeter.prompt == (
        "from __future__ import annotations\nimport math\nfrom typing import (\n    Sequence,\n)\n\n\n"
        "def perimeter(\n    r: float,\n    *, scale: float = 1.0,\n) -> float:\n"
        '    """\n    Perimeter of a circle of radius r.\n\n    >>> perimeter(1.0)\n    6.283185307179586\n    """\n'
    )


def test_method_is_dedented_without_its_decorator(codebase):
    problems, _ = mine_codebase(codebase)
    sides = next(p for p in problems if p.entry_point == "sides")
    body = sides.prompt.split("\n\n\n", 1)[1]
    assert body == ('def sides(self) -> int:\n    """\n    How many straight sides the shape has, as an integer.\n'
                    '    """\n')


def test_every_prompt_ends_with_its_docstring_and_compiles_with_a_body(codebase):
    problems, _ = mine_codebase(codebase)
    for p in problems:
        assert p.prompt.endswith('    """\n')
        tree = ast.parse(p.prompt + "    pass\n")
        fn = tree.body[-1]
        assert fn.name == p.entry_point and len(ast.get_docstring(fn)) >= 20


def test_load_pool_drops_the_duplicate_prompt_and_records_the_mining(codebase):
    pool = load_pool(f"codebase:{codebase}")
    assert [p.task_id for p in pool.problems] == [
        "pkg/copy_of_geometry.py::area",
        "pkg/geometry.py::perimeter",
        "pkg/geometry.py::Shape.sides",
    ]
    prov = pool.provenance
    assert prov["duplicates_dropped"] == 1
    assert prov["duplicates"] == [{"dropped": "pkg/geometry.py::area", "kept": "pkg/copy_of_geometry.py::area"}]
    assert prov["mining"]["files_unparsable"] == 1 and prov["mining"]["kept"] == 4
    assert prov["kind"] == "codebase" and pool.n_with_tests == 0


def test_the_same_qualname_twice_in_a_file_gets_distinct_ids(tmp_path):
    (tmp_path / "m.py").write_text(textwrap.dedent('''\
        import sys
        if sys.platform == "win32":
            pass
        def run(x):
            """Run on this platform, the first definition."""
        def run(x):
            """Run on this platform, the second definition."""
        '''))
    problems, _ = mine_codebase(tmp_path)
    assert [p.task_id for p in problems] == ["m.py::run", "m.py::run#2"]


@pytest.mark.parametrize(
    "doc",
    [
        r"Match \d+ digits, \N{BULLET} and a trailing backslash \\",
        'Both """ and \'\'\' quotes appear, and a \\ too.',
        "A NUL \x00 and a bell \x07 in a docstring.",
    ],
)
def test_awkward_docstrings_render_as_a_compiling_prompt_with_the_same_text(doc):
    tree = ast.parse("def f():\n" + docstring_block(doc) + "    pass\n")
    assert ast.get_docstring(tree.body[0]) == doc


def test_missing_directory_and_empty_codebase_are_errors(tmp_path):
    with pytest.raises(DataError, match="no such directory"):
        load_pool(f"codebase:{tmp_path / 'nope'}")
    (tmp_path / "m.py").write_text("def f():\n    pass\n")
    with pytest.raises(DataError, match=r"yields no prompts \(1 \.py files scanned, 1 functions"):
        load_pool(f"codebase:{tmp_path}")
