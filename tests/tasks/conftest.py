"""Helpers to write small task files in a test's tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture
def write_jsonl(tmp_path: Path):
    """write_jsonl(records, name="tasks.jsonl") -> path; a str record is written as the raw line."""

    def write(records: list, name: str = "tasks.jsonl") -> Path:
        path = tmp_path / name
        lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write
