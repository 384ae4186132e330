"""Which precondition verdicts start the SSD round, and the message when one does not.

The strategy: "Before any sampling, confirm pass@k - pass@1 >= 5 pp". Only a GO verdict confirms it.
GO-OTHER (another move is better) and INCONCLUSIVE (the gap CI straddles the threshold: not confirmed)
refuse the round the same way; `--force` overrides either, and the round records which verdict it was
forced past (`forced_past`). Pure functions of verdict.json; round 1 (ssd/round.py) raises.
"""

from __future__ import annotations

from collections.abc import Mapping

REFUSING = ("GO-OTHER", "INCONCLUSIVE")


def refuses(kind: str | None) -> bool:
    """True when a verdict of this kind does not start the round (an unknown verdict does not either)."""
    return kind is None or kind in REFUSING


def forced_past(kind: str | None, force: bool) -> str | None:
    """The verdict a --force run went past, or None when the round did not need --force."""
    return (kind or "unknown") if force and refuses(kind) else None


def a(kind: str) -> str:
    """'a GO-OTHER', 'an INCONCLUSIVE'."""
    return f"{'an' if kind[:1].upper() in 'AEIOU' else 'a'} {kind}"


def refusal(verdict: Mapping, where: str) -> str:
    """The error message for a refused round: the verdict, why, and (INCONCLUSIVE) what would settle it."""
    overall = verdict["overall"]
    kind, rule = overall["kind"], overall.get("rule_id")
    if kind == "INCONCLUSIVE":
        needed = overall.get("problems_needed")
        n = overall.get("n_problems")
        settle = (f"About {needed} held-out problems in total ({needed - n} more than the {n} measured) would likely "
                  f"settle the gap at k = {overall.get('k')}." if needed is not None and n is not None else
                  "No practical number of problems is likely to settle it (see the verdict): SSD's expected lift is "
                  "marginal.")
        head = (f"error: the precondition verdict is INCONCLUSIVE (rule {rule}): the gap's CI straddles the "
                f"threshold, so the precondition is not confirmed. {settle}")
    else:
        other = overall.get("other") or "another move"
        head = f"error: the precondition verdict is {kind} ({other}; rule {rule}): {verdict.get('summary', '')}"
    return (f"{head}\nSSD is not started. See {where}. To run it anyway, pass --force (every result is then "
            f"stamped forced past {kind}).")
