"""Fixtures for the prompt-pool tests: a small MBPP file in MultiPL-E's format (three real records,
copied verbatim from mbpp-py-reworded.json), a cache that holds it, and JSONL writers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from selfdistill.pool import mbpp


def _record(number: int, name: str, prompt: str, check: str) -> dict:
    tests = f"{check}\ndef test_check():\n    check({name})\n\ntest_check()\n"
    return {
        "name": f"mbpp_{number}_{name}", "language": "py", "prompt": prompt, "doctests": "transform",
        "original": f"/datasets/mbpp-typed/mbpp_{number}_{name}.py", "prompt_terminology": "reworded",
        "tests": tests, "stop_tokens": ["\ndef", "\n#", "\nif", "\nclass"],
    }


MBPP_RECORDS = [
    _record(
        464, "check_value",
        'from typing import Dict\n\ndef check_value(dict: Dict[str, int], n: int) -> bool:\n    """\n'
        '\tWrite a function to check if all values are same in a dictionary.\n\t"""\n',
        "def check(candidate):\n"
        "    assert candidate({ 'Cierra Vega': 12, 'Alden Cantrell': 12, 'Kierra Gentry': 12, 'Pierre Cox': 12 }, 10) "
        "== False\n"
        "    assert candidate({ 'Cierra Vega': 12, 'Alden Cantrell': 12, 'Kierra Gentry': 12, 'Pierre Cox': 12 }, 12) "
        "== True\n"
        "    assert candidate({ 'Cierra Vega': 12, 'Alden Cantrell': 12, 'Kierra Gentry': 12, 'Pierre Cox': 12 }, 5) "
        "== False\n",
    ),
    _record(
        389, "find_lucas",
        'def find_lucas(n: int) -> int:\n    """\n\tWrite a function to find the n\'th lucas number.\n\t"""\n',
        "def check(candidate):\n    assert candidate(9) == 76\n    assert candidate(4) == 7\n"
        "    assert candidate(3) == 4\n",
    ),
    _record(
        268, "find_star_num",
        'def find_star_num(n: int) -> int:\n    """\n\tWrite a function to find the n\'th star number.\n\t"""\n',
        "def check(candidate):\n    assert candidate(3) == 37\n    assert candidate(4) == 73\n"
        "    assert candidate(5) == 121\n",
    ),
]


@pytest.fixture
def mbpp_file(tmp_path: Path) -> Path:
    path = tmp_path / "mbpp-fixture.json"
    path.write_text(json.dumps(MBPP_RECORDS), encoding="utf-8")
    return path


@pytest.fixture
def mbpp_cache(tmp_path: Path, monkeypatch) -> Path:
    """A user cache (SELFDISTILL_CACHE) holding the fixture as the MBPP file, its hash pinned in its place."""
    cache = tmp_path / "cache"
    cache.mkdir()
    data = json.dumps(MBPP_RECORDS).encode()
    (cache / mbpp.FILENAME).write_bytes(data)
    monkeypatch.setenv("SELFDISTILL_CACHE", str(cache))
    monkeypatch.setattr(mbpp, "SHA256", hashlib.sha256(data).hexdigest())
    return cache


@pytest.fixture
def write_jsonl(tmp_path: Path):
    """write_jsonl(records, name="pool.jsonl") -> path."""

    def write(records: list[dict], name: str = "pool.jsonl") -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        return path

    return write
