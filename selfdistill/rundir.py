"""Run-directory I/O: atomic JSON summaries, append-only JSONL streams that resume after a kill.

A stream is JSONL, one record per line, flushed per record (fsync'd at close), so a killed
process loses at most the line being written. On reopening, a torn last line (no newline, or not JSON) is cut off and logged;
every complete record is kept, and the caller skips the keys already present (resume = skip what is
there). Summaries (`metrics.json`) are written last with tmp + `os.replace`, so a stage is done
exactly when its summary exists.

Not here: what the records mean (each stage owns its schema).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from selfdistill.errors import DataError

log = logging.getLogger(__name__)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old file or the whole new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise DataError(f"error: {what} {path} does not exist")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"error: {what} {path} is not valid JSON ({exc})") from None


def file_sha256(path: Path) -> str:
    """sha256 hex of a file, read in 1 MiB chunks (model files are hundreds of MB)."""
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_jsonl(path: Path, what: str) -> Iterator[tuple[int, dict]]:
    """(line number, record) for each line of a user-supplied JSONL file; bad lines are DataErrors."""
    if not path.is_file():
        raise DataError(f"error: {what} {path} does not exist")
    with path.open(encoding="utf-8", errors="strict") as f:
        try:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(
                        f"error: {path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno}); "
                        f"{what} must hold one JSON object per line"
                    ) from None
                if not isinstance(record, dict):
                    raise DataError(f"error: {path}:{lineno}: expected a JSON object, got {type(record).__name__}")
                yield lineno, record
        except UnicodeDecodeError as exc:
            raise DataError(f"error: {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


class JsonlStream:
    """An append-only JSONL file that survives kills: `records` holds what was already there."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.records: list[dict] = self._recover()
        self._file: TextIO = path.open("a", encoding="utf-8")

    def _recover(self) -> list[dict]:
        if not self.path.exists():
            return []
        raw = self.path.read_bytes()
        lines = raw.splitlines(keepends=True)
        records, good_end = [], 0
        for i, line in enumerate(lines):
            try:
                if not line.endswith(b"\n"):
                    raise ValueError("no newline")
                records.append(json.loads(line))
            except (ValueError, UnicodeDecodeError):
                if i < len(lines) - 1:
                    raise DataError(
                        f"error: {self.path}:{i + 1} is corrupt in the middle of the stream; it was not "
                        "written by an interrupted run. Move the file away and rerun, or use a new --out"
                    ) from None
                break
            good_end += len(line)
        if good_end < len(raw):
            log.warning("%s: cut a torn last record of %d bytes (killed mid-write)", self.path, len(raw) - good_end)
            with self.path.open("r+b") as f:
                f.truncate(good_end)
        return records

    def append(self, record: dict) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()  # a killed process loses nothing flushed; fsync at close guards the machine
        self.records.append(record)

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def __enter__(self) -> JsonlStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
