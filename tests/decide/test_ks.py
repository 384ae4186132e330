"""The gap at every k: which k the verdict rests on (docs/decision-rule.md, "Which k")."""

import json

import pytest

from selfdistill.decide.verdict import OtherMove, Rules, VerdictKind, verdict_over_ks

PASS1 = (0.40, 0.35, 0.45)


def _passk(gap):
    return tuple(min(1.0, PASS1[0] + g) for g in (gap[0], gap[0] - 0.02, gap[0] + 0.02))


def verdict(gaps: dict, rules=None, n_problems=None):
    return verdict_over_ks(gaps, PASS1, {k: _passk(g) for k, g in gaps.items()}, rules or Rules(),
                           n_problems=n_problems)


# gaps at k = 4, 8, 16 -> rule, the k the verdict rests on, clearing k, only-at-largest caveat
TABLE = [
    ("clears at every k: rests on the smallest",
     {4: (0.09, 0.06, 0.12), 8: (0.15, 0.11, 0.19), 16: (0.20, 0.16, 0.24)}, "R3", 4, 4, False),
    ("clears from k=8", {4: (0.05, 0.03, 0.07), 8: (0.12, 0.08, 0.16), 16: (0.20, 0.16, 0.24)}, "R3", 8, 8, False),
    ("the issue's example: gap@4 3.2 pp, gap@16 14.3 pp",
     {4: (0.032, 0.025, 0.039), 16: (0.143, 0.11, 0.17)}, "R3", 16, 16, True),
    ("below at every k", {4: (0.01, 0.0, 0.02), 8: (0.02, 0.01, 0.03), 16: (0.03, 0.01, 0.049)}, "R5e", 16, None,
     False),
    ("below at small k, straddles at 16",
     {4: (0.01, 0.0, 0.02), 8: (0.02, 0.01, 0.03), 16: (0.05, 0.03, 0.07)}, "R6", 16, None, False),
    ("straddles at every k", {4: (0.04, 0.02, 0.06), 16: (0.06, 0.02, 0.10)}, "R6", 16, None, False),
    ("one k only, clearing: no caveat", {16: (0.2, 0.15, 0.25)}, "R3", 16, 16, False),
]


@pytest.mark.parametrize("name,gaps,rule,k,clearing,caveat", TABLE, ids=[t[0] for t in TABLE])
def test_which_k(name, gaps, rule, k, clearing, caveat):
    v = verdict(gaps)
    assert (v.rule_id, v.k, v.clearing_k, v.only_at_largest_k) == (rule, k, clearing, caveat)
    assert [row.k for row in v.gaps_by_k] == sorted(gaps)


def test_justification_names_the_smallest_clearing_k_and_every_gap():
    v = verdict({4: (0.05, 0.03, 0.07), 8: (0.12, 0.08, 0.16), 16: (0.20, 0.16, 0.24)})
    assert "first at k = 8, the smallest k at which it clears" in v.justification
    assert "gap@4 5.0 pp [3.0, 7.0] (straddles), gap@8 12.0 pp [8.0, 16.0] (clears)" in v.justification
    assert "weaker evidence" not in v.justification


def test_a_gap_only_at_the_largest_k_is_called_weaker_evidence():
    v = verdict({4: (0.032, 0.025, 0.039), 16: (0.143, 0.11, 0.17)})
    assert v.kind is VerdictKind.GO_SSD and v.gap.value == pytest.approx(0.143)
    assert "clears only at the largest k measured (16), not at any smaller k: weaker evidence" in v.justification
    assert "gap@4 3.2 pp [2.5, 3.9] (below)" in v.justification


def test_floor_uses_the_largest_k():
    v = verdict_over_ks({4: (0.0, 0.0, 0.01), 16: (0.02, 0.0, 0.04)}, (0.0, 0.0, 0.01),
                        {4: (0.01, 0.0, 0.02), 16: (0.03, 0.0, 0.045)})
    assert (v.rule_id, v.other, v.k) == ("R1", OtherMove.SFT_EXTERNAL, 16)


def test_inconclusive_rests_on_the_k_fewest_problems_would_settle():
    # k=8 is 3 pp above the threshold with a 4 pp half-width; k=16 only 1 pp above with the same width.
    v = verdict({8: (0.08, 0.04, 0.12), 16: (0.06, 0.02, 0.10)}, n_problems=100)
    assert (v.rule_id, v.k) == ("R6", 8)
    assert v.problems_needed == 178  # ceil(100 * (4/3)^2)
    assert "at k = 8" in v.justification and "not started" in v.justification


def test_gap_table_is_in_the_json():
    d = verdict({4: (0.032, 0.025, 0.039), 16: (0.143, 0.11, 0.17)}, n_problems={4: 164, 16: 160}).to_json()
    assert json.loads(json.dumps(d)) == d
    assert [(r["k"], r["side"], r["n_problems"]) for r in d["gaps_by_k"]] == [(4, "below", 164), (16, "clears", 160)]
    assert d["clearing_k"] == 16 and d["only_at_largest_k"] is True and d["n_problems"] == 160
