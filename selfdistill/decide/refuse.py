"""Which precondition verdicts start the SSD round, and the message when one does not.

The strategy: "Before any sampling, confirm pass@k - pass@1 >= 5 pp". Only a GO verdict confirms it.
GO-OTHER (another move is better) and INCONCLUSIVE (the gap CI straddles the threshold: not confirmed)
refuse the round the same way; `--force` overrides either, and the round records which verdict it was
forced past (`forced_past`). Pure functions of verdict.json; round 1 (ssd/round.py) raises.

A GO-OTHER verdict names a move and the comparator arm that measures it (verdict.json `measure_with`,
decide/verdict.py MEASURE_WITH). When that arm is in the spec's `comparator.measure`, the same command runs a
comparator-only round instead of refusing (`measures_refused_move`): the base and the comparator arm(s), no
SSD arm, SSD still refused. INCONCLUSIVE names no move (its fix is more held-out problems, or --force to run
SSD beside the comparators), so it never starts a comparator-only round. `measure_advice` is the sentence
verdict.md and the refusal message give.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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


NEEDS = {"sft-external": 'and comparator.data = "your.jsonl" (prompt/completion pairs, docs/comparators.md)'}


def move_arm(overall: Mapping) -> str | None:
    """verdict.json's `measure_with`; for a verdict written before it was recorded, from the move's name."""
    if "measure_with" in overall:
        return overall["measure_with"]
    from selfdistill.decide.verdict import OtherMove

    try:
        return OtherMove(overall.get("other")).measure_with
    except ValueError:
        return None


def measures_refused_move(verdict: Mapping, measure: list[str]) -> str | None:
    """The arm of a GO-OTHER verdict's move when `measure` (comparator.measure) names it: the round then runs
    that comparator beside the base instead of refusing. None otherwise (INCONCLUSIVE, GO-*, do nothing)."""
    overall = verdict["overall"]
    arm = move_arm(overall)
    return arm if overall.get("kind") == "GO-OTHER" and arm is not None and arm in measure else None


def measure_advice(overall: Mapping, measured: Sequence[str] = ()) -> str | None:
    """How to measure a GO-OTHER verdict's move with this tool: the arm, and the exact way to run it (or, when
    `measured` (comparator.measure) already names the arm, that the run measures it)."""
    if overall.get("kind") != "GO-OTHER":
        return None
    from selfdistill.spec import MEASURABLE

    arm, move = move_arm(overall), overall.get("other") or "the other move"
    if arm is None:
        return f"No arm measures {move!r}: there is nothing to train; keep the base model."
    if arm not in {m.value for m in MEASURABLE}:
        return (f"The arm that measures {move!r} is `{arm}`, which this version cannot run yet: declare its "
                "numbers measured elsewhere (comparator.kind, pass_at_1, gpu_hours) to compare SSD with it.")
    if arm in measured:
        return (f"{move!r} is measured by the `{arm}` arm, which comparator.measure names: `selfdistill run SPEC` "
                f"runs a comparator-only round (the base and {arm}, no SSD arm; SSD stays refused) and reports it.")
    needs = f" {NEEDS[arm]}" if arm in NEEDS else ""
    return (f"Measure {move!r} with the `{arm}` arm: add it to the spec's [comparator] measure "
            f'(measure = ["{arm}"]{needs}) and run the same command again (`selfdistill run SPEC`, same '
            f"--run-dir): it trains and evaluates the base and {arm} only (SSD stays refused) at the same T_eval "
            "sweep with the same engine, with paired deltas vs the base (95% CIs), their costs in the ledger, "
            "and the report.")


def refusal(verdict: Mapping, where: str) -> str:
    """The error message for a refused round: the verdict, why, (INCONCLUSIVE) what would settle it, and
    (GO-OTHER) the arm that measures the move and how to run it."""
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
        advice = measure_advice(overall)
        head += f"\n{advice}" if advice else ""
    return (f"{head}\nSSD is not started. See {where}. To run it anyway, pass --force (every result is then "
            f"stamped forced past {kind}).")
