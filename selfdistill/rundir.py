"""Run-directory I/O: atomic JSON summaries, append-only JSONL streams that resume after a kill.

A stream is JSONL, one record per line, flushed per record (fsync'd at close), so a killed
process loses at most the line being written. On reopening, a torn last line (no newline, or not JSON) is cut off
and logged; every complete record is kept, and the caller skips the keys already present (resume = skip what is
there). Summaries (`metrics.json`) are written last with tmp + `os.replace`, so a stage is done
exactly when its summary exists.

Not here: what the records mean (each stage owns its schema).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from selfdistill.errors import DataError

log = logging.getLogger(__name__)


def dumps_line(record: Any) -> str:
    """One JSON line, non-ASCII text kept readable; a record holding lone surrogates (model output can:
    "\\ud800") is written with \\u escapes instead, so it round-trips and the file stays UTF-8. (JSON itself
    cannot tell a high surrogate followed by a low one from the astral character they encode: readers join
    that one case.)"""
    line = json.dumps(record, ensure_ascii=False)
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(record, ensure_ascii=True)
    return line


def ensure_out_dir(path: Path, what: str = "output directory") -> Path:
    """Create `path` as a directory, or say (as a DataError) why it cannot be one and how to fix it."""
    for parent in (path, *path.parents):
        if parent.exists() and not parent.is_dir():
            where = "is" if parent == path else f"is under {parent}, which is"
            raise DataError(f"error: {what} {path} {where} a file, not a directory; pass a directory path (--out)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"error: cannot create {what} {path} ({exc.strerror}); pass a writable --out") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataError(f"error: {what} {path} is not writable; pass a writable --out")
    return path


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to: when the block ends normally it replaces `path` in one
    step (readers see the old file or the whole new one, never half); when it raises, it is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_ident()}")  # writers in threads: own tmps
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (see `atomic_path`), fsync'd before the rename."""
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old file or the whole new one, never half."""
    if path.is_dir():
        raise DataError(f"error: {path} is a directory; name a file to write the JSON to")
    ensure_out_dir(path.parent)
    text = json.dumps(data, indent=2, sort_keys=False) + "\n"  # ensure_ascii: lone surrogates survive as escapes
    try:
        write_bytes_atomic(path, text.encode("utf-8"))
    except OSError as exc:
        raise DataError(f"error: cannot write {path} ({exc.strerror}); check the path and its permissions") from None


def _loads(text: str | bytes) -> Any:
    """json.loads, with what it raises besides JSONDecodeError (a 5,000-digit integer: ValueError; a line
    nested 100,000 deep: RecursionError) turned into ValueError."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # CPython's int limit: "Exceeds the limit (4300 digits) ..."
        if "digits" in str(exc):
            raise ValueError(f"an integer longer than {sys.get_int_max_str_digits()} digits") from None
        raise


def read_json(path: Path, what: str) -> dict:
    """A JSON object from a file; anything else (a list, bad JSON, not UTF-8) is a DataError."""
    if path.is_dir():
        raise DataError(f"error: {what} {path} is a directory, not a file; give the JSON file itself")
    if not path.is_file():
        raise DataError(f"error: {what} {path} does not exist")
    try:
        data = _loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"error: {what} {path} is not valid JSON ({str(exc)[:200]})") from None
    except OSError as exc:
        raise DataError(f"error: cannot read {what} {path} ({exc.strerror})") from None
    if not isinstance(data, dict):
        raise DataError(f"error: {what} {path} holds a JSON {type(data).__name__}, expected an object {{...}}")
    return data


def file_sha256(*paths: Path) -> str:
    """sha256 hex of a file (or of several, their bytes in the order given), read in 1 MiB chunks (model
    files are hundreds of MB)."""
    import hashlib

    digest = hashlib.sha256()
    for path in paths:
        with Path(path).open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def read_jsonl(path: Path, what: str, torn_tail: bool = False) -> Iterator[tuple[int, dict]]:
    """(line number, record) for each non-blank line of a JSONL file (`*.gz` un-gzipped); bad lines are
    DataErrors naming file:line. `torn_tail`: a last line without its newline is what a killed writer
    leaves (a record is written whole with its newline) and is skipped, not refused."""
    if not path.is_file():
        raise DataError(f"error: {what} {path} does not exist")
    try:
        with _open_text(path) as f:
            for lineno, line in enumerate(f, 1):
                if torn_tail and not line.endswith("\n"):
                    log.info("%s:%d: a torn last record (killed mid-write) is not read", path, lineno)
                    break
                if line.strip():
                    yield lineno, _record(path, lineno, line, what)
    except UnicodeDecodeError as exc:
        raise DataError(f"error: {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"error: cannot read {what} {path} ({exc}); expected a UTF-8 JSONL file") from None


def _open_text(path: Path) -> TextIO:
    if path.suffix == ".gz":
        import gzip

        return gzip.open(path, "rt", encoding="utf-8", errors="strict")
    return path.open(encoding="utf-8", errors="strict")


def _record(path: Path, lineno: int, line: str, what: str) -> dict:
    try:
        record = _loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"error: {path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno}): {_clip(line)}\n"
            f"  {what} must hold one JSON object per line; fix or remove that line"
        ) from None
    except ValueError as exc:
        raise DataError(
            f"error: {path}:{lineno}: JSON this tool does not read ({str(exc)[:120]}): {_clip(line)}\n"
            f"  fix or remove that line of the {what}"
        ) from None
    if not isinstance(record, dict):
        raise DataError(
            f"error: {path}:{lineno}: a line must be a JSON object {{...}}, got {type(record).__name__}: "
            f"{_clip(line)}"
        )
    return record


def _clip(text: str, limit: int = 80) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


class JsonlStream:
    """An append-only JSONL file that survives kills: `records` holds what was already there."""

    def __init__(self, path: Path):
        self.path = path
        ensure_out_dir(path.parent)
        self.records: list[dict] = self._recover()
        try:
            self._file: TextIO = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise DataError(f"error: cannot append to {path} ({exc.strerror}); pass a writable --out") from None

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
                record = _loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not a JSON object")
                records.append(record)
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
        self._file.write(dumps_line(record) + "\n")
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
