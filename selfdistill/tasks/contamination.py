"""Contamination checks between a prompt pool (what self-distillation samples and trains on) and a
held-out set (what the verdict is measured on). Three checks, each reported separately:

  exact    the held-out prompt equals a pool prompt after normalization.
  n-gram   the held-out prompt shares word n-grams (default n=13, as in GPT-3's overlap analysis)
           with a pool prompt, at least `min_shared` of them (default 1); reported per
           (held-out id, pool id) with the number shared. A held-out
           prompt shorter than n words is flagged when its whole word sequence occurs in a pool prompt.
  date     held-out problems dated outside [window_start, window_end] (both inclusive, either open),
           e.g. released before the model's training cutoff. Undated problems are listed, not flagged.

Normalization (both text checks): Unicode NFKC, casefold, then the text is its sequence of words,
a word being a run of letters, digits or underscores. Punctuation and whitespace only separate words,
so re-indentation, re-wrapping, case and quoting changes do not hide a copy.

Pool n-grams are hashed into one dict (hash -> pool indexes) once; each held-out prompt is then a
set of lookups: 400 x 164 prompts take milliseconds. Does not look at tests or solutions, and does not
detect paraphrases.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from selfdistill.errors import DataError
from selfdistill.tasks.problem import Problem

log = logging.getLogger(__name__)

DEFAULT_N = 13
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """The normalized word sequence of a text (see the module docstring)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())


def normalize(text: str) -> str:
    """The normalized text: its words joined by single spaces."""
    return " ".join(words(text))


@dataclass(frozen=True)
class ExactMatch:
    heldout_id: str
    pool_id: str


@dataclass(frozen=True)
class NgramOverlap:
    heldout_id: str
    pool_id: str
    shared: int  # distinct held-out n-grams that also occur in the pool prompt
    heldout_ngrams: int  # distinct n-grams in the held-out prompt (1 for a prompt shorter than n)


@dataclass(frozen=True)
class DateFlag:
    task_id: str
    release_date: dt.date


@dataclass(frozen=True)
class ContaminationReport:
    n: int
    min_shared: int
    pool_size: int
    heldout_size: int
    exact: tuple[ExactMatch, ...]
    ngram: tuple[NgramOverlap, ...]
    window_start: dt.date | None
    window_end: dt.date | None
    outside_window: tuple[DateFlag, ...]
    undated: tuple[str, ...]  # held-out ids with no release date (listed only when a window is given)
    contaminated_ids: tuple[str, ...]  # flagged by any check, in held-out order

    @property
    def is_clean(self) -> bool:
        return not self.contaminated_ids

    @property
    def pairs(self) -> tuple[tuple[str, str], ...]:
        """(held-out id, pool id) for every exact or n-gram match, sorted, each pair once."""
        found = {(m.heldout_id, m.pool_id) for m in self.exact} | {
            (o.heldout_id, o.pool_id) for o in self.ngram
        }
        return tuple(sorted(found))

    def reasons(self, task_id: str) -> list[str]:
        """Why a held-out id is flagged, one short line per check."""
        out = [f"same prompt as pool {m.pool_id}" for m in self.exact if m.heldout_id == task_id]
        hits = [o for o in self.ngram if o.heldout_id == task_id]
        if hits:
            shown = ", ".join(f"{o.pool_id} ({o.shared})" for o in hits[:5])
            more = f" and {len(hits) - 5} more" if len(hits) > 5 else ""
            out.append(f"shares {self.n}-grams with pool {shown}{more}")
        for f in self.outside_window:
            if f.task_id == task_id:
                out.append(f"released {f.release_date}, outside the window {self._window()}")
        return out

    def _window(self) -> str:
        return f"[{self.window_start or '...'}, {self.window_end or '...'}]"

    def to_json(self) -> dict:
        d = asdict(self)
        for key in ("window_start", "window_end"):
            d[key] = d[key].isoformat() if d[key] else None
        d["outside_window"] = [
            {"task_id": f.task_id, "release_date": f.release_date.isoformat()} for f in self.outside_window
        ]
        d["is_clean"] = self.is_clean
        return d


def check_contamination(
    pool: Sequence[Problem],
    heldout: Sequence[Problem],
    *,
    n: int = DEFAULT_N,
    min_shared: int = 1,
    window_start: dt.date | None = None,
    window_end: dt.date | None = None,
) -> ContaminationReport:
    """Run the exact, n-gram and (when a window is given) date checks of `heldout` against `pool`.
    A (held-out, pool) pair is an n-gram hit when it shares at least `min_shared` distinct n-grams."""
    if n < 1 or min_shared < 1:
        raise DataError(f"error: the n-gram length (--ngram, pool.ngram) and min_shared must be >= 1, got n={n}, "
                        f"min_shared={min_shared}")
    if window_start and window_end and window_start > window_end:
        raise DataError(f"release-date window starts {window_start} after it ends {window_end}; swap them")
    pool_words = [words(p.prompt) for p in pool]
    held_words = [words(p.prompt) for p in heldout]
    longest = max(map(len, held_words), default=0)
    if longest and n > longest:  # no n-gram fits: every overlap below is a whole-prompt containment test
        log.warning("n-gram length %d is longer than every held-out prompt (the longest has %d words): "
                    "no %d-gram can match, so the n-gram check only finds held-out prompts contained whole in a "
                    "pool prompt; give an n at most %d (default %d) for a real n-gram check",
                    n, longest, n, longest, DEFAULT_N)
    exact = _exact(pool, pool_words, heldout, held_words)
    ngram = _ngram(pool, pool_words, heldout, held_words, n, min_shared)
    outside, undated = _dates(heldout, window_start, window_end)
    flagged = {m.heldout_id for m in exact} | {o.heldout_id for o in ngram} | {f.task_id for f in outside}
    return ContaminationReport(
        n=n,
        min_shared=min_shared,
        pool_size=len(pool),
        heldout_size=len(heldout),
        exact=exact,
        ngram=ngram,
        window_start=window_start,
        window_end=window_end,
        outside_window=outside,
        undated=undated,
        contaminated_ids=tuple(p.task_id for p in heldout if p.task_id in flagged),
    )


def _exact(pool, pool_words, heldout, held_words) -> tuple[ExactMatch, ...]:
    by_text: dict[str, list[str]] = {}
    for problem, ws in zip(pool, pool_words, strict=True):
        by_text.setdefault(" ".join(ws), []).append(problem.task_id)
    return tuple(
        ExactMatch(h.task_id, pool_id)
        for h, ws in zip(heldout, held_words, strict=True)
        if ws
        for pool_id in by_text.get(" ".join(ws), [])
    )


def _grams(ws: list[str], n: int) -> set[int]:
    return {hash(tuple(ws[i : i + n])) for i in range(len(ws) - n + 1)}


def _ngram(pool, pool_words, heldout, held_words, n, min_shared) -> tuple[NgramOverlap, ...]:
    index: dict[int, list[int]] = {}
    for j, ws in enumerate(pool_words):
        for g in _grams(ws, n):
            index.setdefault(g, []).append(j)
    padded_pool = [f" {' '.join(ws)} " for ws in pool_words]
    found: list[NgramOverlap] = []
    for h, ws in zip(heldout, held_words, strict=True):
        if not ws:
            continue
        if len(ws) < n:  # too short for one n-gram: look for the whole word sequence instead
            needle = f" {' '.join(ws)} "
            counts = Counter(j for j, text in enumerate(padded_pool) if needle in text)
            total = 1
        else:
            grams = _grams(ws, n)
            counts = Counter(j for g in grams for j in index.get(g, ()))
            total = len(grams)
        ranked = sorted(counts.items(), key=lambda jc: (-jc[1], jc[0]))
        found += [
            NgramOverlap(h.task_id, pool[j].task_id, c, total)
            for j, c in ranked
            if c >= min(min_shared, total)
        ]
    return tuple(found)


def _dates(heldout, start, end) -> tuple[tuple[DateFlag, ...], tuple[str, ...]]:
    if start is None and end is None:
        return (), ()
    outside = tuple(
        DateFlag(p.task_id, p.release_date)
        for p in heldout
        if p.release_date is not None
        and ((start is not None and p.release_date < start) or (end is not None and p.release_date > end))
    )
    undated = tuple(p.task_id for p in heldout if p.release_date is None)
    return outside, undated


def refuse_if_contaminated(report: ContaminationReport, excluded_ids: Iterable[str] = ()) -> None:
    """DataError listing each flagged held-out id not in `excluded_ids`, and a ready-to-paste errata block."""
    excluded = set(excluded_ids)
    remaining = [i for i in report.contaminated_ids if i not in excluded]
    if not remaining:
        return
    lines = [
        f"{len(remaining)} held-out problem{'s' * (len(remaining) != 1)} may be contaminated "
        f"(checked against {report.pool_size} pool prompts); selfdistill will not score a contaminated "
        "held-out set:"
    ]
    lines += [f"  {i}: {'; '.join(report.reasons(i))}" for i in remaining]
    lines.append(
        "to go on, exclude them: add these entries to an errata file (see examples/humaneval-errata.toml) "
        "or put the ids in the exclude list; or remove the overlapping prompts from the pool:"
    )
    for i in remaining:
        reason = "contamination check: " + "; ".join(report.reasons(i))
        lines += ["  [[exclude]]", f"  task_id = {_toml_str(i)}", f"  reason = {_toml_str(reason)}"]
    raise DataError("\n".join(lines))


def _toml_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid TOML basic string
