"""The gap at every k, and which k a verdict rests on.

The strategy's hypothesis is that pass@k "for some *small* k" sits meaningfully above pass@1, and it
asks to say so when "pass@k - pass@1 < ~5 pp on any feasible k". Read as a rule (docs/decision-rule.md):

  clears     the gap's CI lower bound is at or above the threshold at this k
  below      the gap's CI upper bound is below the threshold at this k
  straddles  neither

The verdict is GO only if the gap clears at some k, and it rests on the SMALLEST such k (a small k is
the hypothesis; a gap that appears only at the largest k is weaker evidence and is said to be). It is
"consistent" (R5) only if the gap is below the threshold at EVERY k. Anything else is INCONCLUSIVE.
The gap grows with k (pass@k is non-decreasing in k), so the largest k is the most generous test of
"below at every k" and the smallest clearing k is the strictest statement of "clears".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CLEARS, STRADDLES, BELOW = "clears", "straddles", "below"


@dataclass(frozen=True)
class GapAtK:
    """pass@k and the gap pass@k - pass@1 at one k, with their CIs, and where the gap CI lies."""

    k: int
    gap: Any  # Estimate
    passk: Any  # Estimate
    n_problems: int | None
    side: str  # clears | straddles | below

    def to_json(self) -> dict:
        return {"k": self.k, "gap": self.gap._asdict(), "passk": self.passk._asdict(),
                "n_problems": self.n_problems, "side": self.side}


def side_of(gap, threshold: float) -> str:
    if gap.ci_low >= threshold:
        return CLEARS
    if gap.ci_high < threshold:
        return BELOW
    return STRADDLES


def smallest_clearing(table: tuple[GapAtK, ...]) -> GapAtK | None:
    return next((row for row in table if row.side == CLEARS), None)


def only_at_largest(table: tuple[GapAtK, ...]) -> bool:
    """The gap clears only at the largest k, and smaller k were measured: weaker evidence."""
    first = smallest_clearing(table)
    return first is not None and len(table) > 1 and first.k == table[-1].k


def describe(table: tuple[GapAtK, ...], pp) -> str:
    """'gap@4 3.2 pp [2.5, 3.9] (below), gap@16 14.3 pp [...] (clears)'."""
    return ", ".join(
        f"gap@{row.k} {pp(row.gap.value)} pp [{pp(row.gap.ci_low)}, {pp(row.gap.ci_high)}] ({row.side})"
        for row in table
    )
