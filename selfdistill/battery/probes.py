"""The anti-collapse probes: pure functions over completions, programs and metrics dicts.

Each function measures ONE model's outputs; `selfdistill.battery.run` compares base and arm and
applies the thresholds. Families (formulas and defaults in docs/battery.md):

  diversity        self-BLEU (Zhu et al. 2018, "Texygen", arXiv 1802.01886), distinct-n (Li et al. 2016,
                   arXiv 1510.03055), seq-rep-n within a completion (Welleck et al. 2019, arXiv 1908.04319)
  length           median and p95 of `completion_tokens`
  diversity-at-k   pass@k vs pass@1 read from metrics.json: mode collapse and gain flattening
  style            comment-line share (`tokenize`) and docstring share (`ast`) of the extracted programs
  safety           the refusal and unsafe-code detectors live in `selfdistill.battery.safety`
                   (re-exported here)

Text is split by one code tokenizer, `code_tokens`: identifiers, numbers, and every other
non-space character on its own. Whitespace and indentation are dropped, so two programs differing
only in layout count as identical; sacrebleu then runs with tokenize="none" on the space-joined
tokens (its "13a" tokenizer is built for prose and keeps `x+=1` as one token).

Not here: thresholds, verdicts, file I/O, and anything needing a model or a GPU.
"""

from __future__ import annotations

import ast
import io
import random
import re
import tokenize
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from selfdistill.battery.safety import extract_code, is_refusal, unsafe_rules
from selfdistill.errors import BackendUnavailable

__all__ = [
    "Share",
    "code_tokens",
    "comment_share",
    "distinct_by_group",
    "distinct_n",
    "docstring_share",
    "extract_code",
    "flattening",
    "gain",
    "interval",
    "is_refusal",
    "largest_common_k",
    "length_stats",
    "mode_collapse",
    "per_program",
    "repetition_rate",
    "self_bleu",
    "self_bleu_scores",
    "seq_rep",
    "unsafe_rules",
]

_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)?|\S")
MAX_REFS = 32  # references per self-BLEU hypothesis (siblings beyond this, or the arm-wide fallback)
MAX_HYPOTHESES = 600  # self-BLEU is an average: a seeded sample of hypotheses keeps it to seconds
REPETITION_N = 4  # seq-rep-4, as in Welleck et al. 2019
DISTINCT_NS = (1, 2, 3, 4)


def code_tokens(text: str) -> list[str]:
    """Identifiers, numbers, and each other non-space character; layout is dropped."""
    return _TOKEN.findall(text)


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


# ---------------------------------------------------------------- diversity


def distinct_n(texts: Sequence[str], ns: Sequence[int] = DISTINCT_NS) -> dict[int, float | None]:
    """distinct-n = unique n-grams / total n-grams over ALL completions (n-grams never cross two
    completions). None when no completion has n tokens. It shrinks as the corpus grows, so compare
    arms on the same prompts and sample counts (`run_battery` aligns them)."""
    toks = [code_tokens(t) for t in texts]
    out: dict[int, float | None] = {}
    for n in ns:
        seen: set[tuple[str, ...]] = set()
        total = 0
        for t in toks:
            grams = _ngrams(t, n)
            seen.update(grams)
            total += len(grams)
        out[n] = len(seen) / total if total else None
    return out


def seq_rep(text: str, n: int = REPETITION_N) -> tuple[float, int] | None:
    """(seq-rep-n, number of n-grams) of one completion: 1 - unique n-grams / n-grams WITHIN it;
    None when it is shorter than n tokens."""
    grams = _ngrams(code_tokens(text), n)
    return (1.0 - len(set(grams)) / len(grams), len(grams)) if grams else None


def repetition_rate(texts: Sequence[str], n: int = REPETITION_N) -> float | None:
    """Mean over completions of seq-rep-n = 1 - unique n-grams / n-grams WITHIN the completion
    (a loop `return x\nreturn x\n...` tends to 1). Completions shorter than n tokens are left out;
    None when all are."""
    rates = [r[0] for r in map(lambda t: seq_rep(t, n), texts) if r is not None]
    return float(np.mean(rates)) if rates else None


def distinct_by_group(texts: Sequence[str], groups: Sequence[str], n: int = 3) -> dict[str, tuple[int, int]]:
    """Per prompt: (unique n-grams, n-grams) over that prompt's completions (n-grams never cross two
    completions). Pooled over prompts, sum(unique) / sum(total) is "distinct-n within a prompt": it
    falls when a prompt's samples converge on one answer, and a prompt is a unit the battery can resample."""
    seen: dict[str, set] = {}
    total: dict[str, int] = {}
    for text, g in zip(texts, groups, strict=True):
        grams = _ngrams(code_tokens(text), n)
        seen.setdefault(g, set()).update(grams)
        total[g] = total.get(g, 0) + len(grams)
    return {g: (len(seen[g]), total[g]) for g in seen}


def _bleu():
    try:
        from sacrebleu.metrics import BLEU
    except ImportError:
        raise BackendUnavailable(
            "the battery's self-BLEU probe needs sacrebleu; `pip install sacrebleu==2.6.0`"
        ) from None
    return BLEU(tokenize="none", effective_order=True)


def self_bleu(
    texts: Sequence[str],
    groups: Sequence[str] | None = None,
    *,
    max_refs: int = MAX_REFS,
    max_hypotheses: int = MAX_HYPOTHESES,
    seed: int = 0,
) -> float | None:
    """Mean sentence BLEU (0..1) of each completion against the OTHER completions of the same prompt
    (`groups[i]` names completion i's prompt). A completion alone in its group is scored against up
    to `max_refs` other completions of the arm instead (a seeded sample), so one-sample-per-prompt
    runs still get a number. At most `max_hypotheses` completions are scored (a seeded sample: the
    same positions for two arms aligned the same way). None with fewer than 2 completions."""
    scores = self_bleu_scores(texts, groups, max_refs=max_refs, max_hypotheses=max_hypotheses, seed=seed)
    return float(np.mean([x for _, x in scores])) if scores else None


def self_bleu_scores(
    texts: Sequence[str],
    groups: Sequence[str] | None = None,
    *,
    max_refs: int = MAX_REFS,
    max_hypotheses: int = MAX_HYPOTHESES,
    seed: int = 0,
) -> list[tuple[int, float]]:
    """(completion index, sentence BLEU 0..1) for each scored hypothesis of `self_bleu`; [] with fewer
    than 2 completions."""
    if len(texts) < 2:
        return []
    joined = [" ".join(code_tokens(t)) for t in texts]
    groups = list(groups) if groups is not None else [str(i) for i in range(len(texts))]
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    rng = random.Random(seed)
    picked = (
        range(len(texts)) if len(texts) <= max_hypotheses else sorted(rng.sample(range(len(texts)), max_hypotheses))
    )
    bleu, scores = _bleu(), []
    for i in picked:
        refs = [j for j in members[groups[i]] if j != i]
        if not refs:  # alone in its prompt: compare against the arm instead
            refs = [j for j in rng.sample(range(len(texts)), min(max_refs + 1, len(texts))) if j != i]
        elif len(refs) > max_refs:
            refs = rng.sample(refs, max_refs)
        scores.append((i, bleu.sentence_score(joined[i], [joined[j] for j in refs[:max_refs]]).score / 100.0))
    return scores


# ---------------------------------------------------------------- length


def length_stats(lengths: Sequence[float]) -> dict[str, float | None]:
    """Median and p95 (linear interpolation) of completion lengths in tokens."""
    if not len(lengths):
        return {"median": None, "p95": None, "n": 0}
    arr = np.asarray(lengths, dtype=np.float64)
    return {"median": float(np.median(arr)), "p95": float(np.percentile(arr, 95)), "n": int(arr.size)}


# ---------------------------------------------------------------- diversity-at-k


def largest_common_k(base_metrics: Mapping, arm_metrics: Mapping) -> int | None:
    """The largest k > 1 that both metrics dicts report with a value (read from the "pass@k" keys of
    metrics["metrics"], so a missing "ks" list does not matter); None if there is none."""

    def ks(m: Mapping) -> set[int]:
        keys = [key[len("pass@") :] for key in (m.get("metrics") or {}) if str(key).startswith("pass@")]
        return {int(k) for k in keys if k.isdigit() and int(k) > 1 and interval(m, f"pass@{k}") is not None}

    common = ks(base_metrics) & ks(arm_metrics)
    return max(common) if common else None


def interval(metrics: Mapping, key: str) -> dict | None:
    """metrics["metrics"][key] as {value, ci_low, ci_high, n_problems}; None when absent or empty."""
    entry = (metrics.get("metrics") or {}).get(key)
    if not isinstance(entry, Mapping) or entry.get("value") is None:
        return None
    return dict(entry)


def gain(metrics: Mapping, k: int) -> float | None:
    """g = pass@k - pass@1: from metrics["gaps"] when present, else from the two point estimates."""
    gap = (metrics.get("gaps") or {}).get(f"pass@{k}-pass@1")
    if isinstance(gap, Mapping) and gap.get("value") is not None:
        return float(gap["value"])
    pk, p1 = interval(metrics, f"pass@{k}"), interval(metrics, "pass@1")
    return None if pk is None or p1 is None else float(pk["value"]) - float(p1["value"])


def mode_collapse(base_pass1: float, base_passk: float, arm_pass1: float, arm_passk: float) -> bool:
    """The mode-collapse pattern on point estimates: pass@1 rises while pass@k falls (the arm is surer,
    not better). With no change at all it shows in 17-30 % of runs: the battery alerts only when the
    pass@k drop's CI supports it, and calls the bare pattern a watch (`run._diversity_at_k`)."""
    return arm_pass1 > base_pass1 and arm_passk < base_passk


def flattening(g_base: float, g_arm: float) -> float | None:
    """Relative shrink of the pass@k - pass@1 gain, (g_base - g_arm) / g_base; None when g_base <= 0."""
    return (g_base - g_arm) / g_base if g_base > 0 else None


# ---------------------------------------------------------------- style


@dataclass(frozen=True)
class Share:
    """hits / total over an arm's programs; `skipped` programs could not be read (empty ones excluded)."""

    hits: int
    total: int
    skipped: int
    empty: int

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None


def _comment_lines(program: str) -> tuple[int, int]:
    """(lines holding a COMMENT token, non-blank lines). Raises on code `tokenize` cannot read."""
    lines = {
        tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(program).readline) if tok.type == tokenize.COMMENT
    }
    return len(lines), sum(1 for line in program.splitlines() if line.strip())


def comment_share(programs: Sequence[str | None]) -> Share:
    """Pooled comment-line share: lines with a COMMENT token / non-blank lines, over all programs.
    Programs `tokenize` rejects are counted in `skipped` and left out."""
    return _pooled(programs, _comment_lines, (tokenize.TokenError, SyntaxError, ValueError))


def docstring_share(programs: Sequence[str | None]) -> Share:
    """Share of function definitions (sync and async, nested included) that open with a docstring.
    Programs that do not parse are counted in `skipped` and left out."""
    return _pooled(programs, _docstring_defs, (SyntaxError, ValueError))


def _docstring_defs(program: str) -> tuple[int, int]:
    """(function defs with a docstring, function defs) of one program."""
    hits = total = 0
    for node in ast.walk(ast.parse(program)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            total += 1
            hits += ast.get_docstring(node, clean=False) is not None
    return hits, total


def per_program(programs: Sequence[str | None], which: str) -> list[tuple[int, int] | None]:
    """(hits, total) per program for `which` = "comment" (comment lines, non-blank lines) or "docstring"
    (functions with a docstring, functions); None for an empty program or one that does not parse."""
    count, errors = _STYLE[which]
    out: list[tuple[int, int] | None] = []
    for program in programs:
        if not program or not program.strip():
            out.append(None)
            continue
        try:
            out.append(count(program))
        except errors:
            out.append(None)
    return out


def _pooled(programs: Sequence[str | None], count, errors: tuple[type[BaseException], ...]) -> Share:
    """Pool `count(program) -> (hits, total)` over programs; blank ones are `empty`, failing ones `skipped`."""
    hits = total = skipped = empty = 0
    for program in programs:
        if not program or not program.strip():
            empty += 1
            continue
        try:
            c, n = count(program)
        except errors:
            skipped += 1
            continue
        hits, total = hits + c, total + n
    return Share(hits, total, skipped, empty)


_STYLE = {
    "comment": (_comment_lines, (tokenize.TokenError, SyntaxError, ValueError)),
    "docstring": (_docstring_defs, (SyntaxError, ValueError)),
}
