"""The pure probe functions on hand-checked inputs: diversity, length, diversity-at-k, style."""

import pytest

from selfdistill.battery import probes as P


def test_code_tokens_split_operators_and_drop_layout():
    assert P.code_tokens("x+=1\n    return  foo_bar(2.5)") == ["x", "+", "=", "1", "return", "foo_bar", "(", "2.5", ")"]
    assert P.code_tokens("a  =  b") == P.code_tokens("a=b")


def test_distinct_n_counts_unique_over_total_without_crossing_completions():
    d = P.distinct_n(["a b c", "a b d"], ns=(1, 2, 3))
    assert d[1] == pytest.approx(4 / 6)  # a b c d of 6 unigrams
    assert d[2] == pytest.approx(3 / 4)  # (a b) twice, (b c), (b d); never (c a)
    assert d[3] == pytest.approx(2 / 2)
    assert P.distinct_n(["a"], ns=(2,)) == {2: None}


def test_distinct_n_falls_when_completions_repeat():
    varied = P.distinct_n([f"def f{i}(x): return x * {i}" for i in range(8)])
    same = P.distinct_n(["def f(x): return x * 2"] * 8)
    assert same[3] == pytest.approx(1 / 8)  # eight copies: each 3-gram seen eight times
    assert varied[3] > 0.4


def test_repetition_rate_catches_a_loop_and_not_plain_code():
    loop = "def f(x):\n" + "    return x\n" * 20
    plain = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
    assert P.repetition_rate([loop]) > 0.8
    assert P.repetition_rate([plain]) == 0.0
    assert P.repetition_rate([loop, plain]) == pytest.approx(P.repetition_rate([loop]) / 2)
    assert P.repetition_rate(["a b"]) is None  # shorter than 4 tokens: left out


def test_self_bleu_is_one_for_identical_siblings_and_low_for_different_ones():
    same = ["def f(x): return x + 1"] * 3
    assert P.self_bleu(same, ["t"] * 3) == pytest.approx(1.0)
    different = ["def f(x): return x + 1", "while True: pass", "import os; print(os.sep)"]
    assert P.self_bleu(different, ["t"] * 3) < 0.2
    assert P.self_bleu(["only one"]) is None


def test_self_bleu_compares_within_a_prompt_not_across():
    texts = ["alpha beta gamma delta epsilon"] * 2 + ["one two three four five"] * 2
    assert P.self_bleu(texts, ["a", "a", "b", "b"]) == pytest.approx(1.0)


def test_self_bleu_falls_back_to_the_arm_for_single_samples():
    texts = ["same tokens here in order"] * 4  # four prompts, one sample each
    assert P.self_bleu(texts, ["a", "b", "c", "d"]) == pytest.approx(1.0)
    assert P.self_bleu(texts, ["a", "b", "c", "d"], max_refs=1) == pytest.approx(1.0)


def test_self_bleu_sample_is_seeded():
    texts = [f"x{i % 7} y{i % 5} z{i % 3} w" for i in range(40)]
    groups = [str(i % 10) for i in range(40)]
    a = P.self_bleu(texts, groups, max_hypotheses=10, seed=3)
    assert a == P.self_bleu(texts, groups, max_hypotheses=10, seed=3)


def test_length_stats_median_and_p95():
    s = P.length_stats(list(range(1, 101)))
    assert s["median"] == pytest.approx(50.5) and s["p95"] == pytest.approx(95.05) and s["n"] == 100
    assert P.length_stats([]) == {"median": None, "p95": None, "n": 0}


def _m(p1, pk, k=8, gap=True):
    def iv(v):
        return {"value": v, "ci_low": v - 0.1, "ci_high": v + 0.1, "n_problems": 10}

    m = {"ks": [1, 4, k], "metrics": {"pass@1": iv(p1), "pass@4": iv(pk), f"pass@{k}": iv(pk)}}
    if gap:
        m["gaps"] = {f"pass@{k}-pass@1": iv(pk - p1 + 0.01)}
    return m


def test_largest_common_k_and_gain():
    assert P.largest_common_k(_m(0.2, 0.5, k=8), _m(0.2, 0.5, k=16)) == 4
    assert P.largest_common_k({"ks": [1], "metrics": {}}, _m(0.2, 0.5)) is None
    assert P.gain(_m(0.2, 0.5), 8) == pytest.approx(0.31)  # the paired gap when present
    assert P.gain(_m(0.2, 0.5, gap=False), 8) == pytest.approx(0.3)  # else the point estimates


@pytest.mark.parametrize(
    "b1,bk,a1,ak,want",
    [
        (0.4, 0.7, 0.5, 0.65, True),
        (0.4, 0.7, 0.5, 0.75, False),
        (0.4, 0.7, 0.35, 0.6, False),
        (0.4, 0.7, 0.4, 0.6, False),
    ],
)
def test_mode_collapse_needs_pass1_up_and_passk_down(b1, bk, a1, ak, want):
    assert P.mode_collapse(b1, bk, a1, ak) is want


def test_flattening_is_the_relative_shrink_of_the_gain():
    assert P.flattening(0.3, 0.1) == pytest.approx(2 / 3)
    assert P.flattening(0.3, 0.4) == pytest.approx(-1 / 3)
    assert P.flattening(0.0, 0.1) is None


def test_comment_share_pools_lines_and_skips_what_tokenize_rejects():
    progs = ["# one\nx = 1  # two\n\ny = 2\n", "z = 3\n", "", 'x = """never closed\n']
    s = P.comment_share(progs)
    assert (s.hits, s.total, s.skipped, s.empty) == (2, 4, 1, 1)
    assert s.value == pytest.approx(0.5)
    assert P.comment_share(["", None]).value is None


def test_comment_share_ignores_hash_inside_strings():
    assert P.comment_share(['s = "# not a comment"\n']).value == 0.0


def test_docstring_share_counts_functions_and_skips_unparsable():
    progs = [
        'def a():\n    """Doc."""\n    return 1\n\nasync def b():\n    return 2\n',
        "class C:\n    def m(self):\n        '''doc'''\n",
        "def broken(:\n",
        "x = 1\n",
    ]
    s = P.docstring_share(progs)
    assert (s.hits, s.total, s.skipped) == (2, 3, 1)
    assert P.docstring_share(["x = 1\n"]).value is None
