"""`split:<task>` pools: the split is reproducible, disjoint and sized by the fraction; the pool side is
handed back for exclusion from the same task's held-out set, and only that side is excused."""

from __future__ import annotations

import pytest

from selfdistill.errors import DataError
from selfdistill.pool import load_pool, split_ids
from selfdistill.pool.split import ids_digest, same_task
from selfdistill.tasks.registry import load_task

IDS = [f"t/{i}" for i in range(100)]


def test_same_seed_same_split_whatever_the_input_order():
    pool, rest = split_ids(IDS, 0.3, seed=7)
    again_pool, again_rest = split_ids(list(reversed(IDS)), 0.3, seed=7)
    assert set(pool) == set(again_pool) and set(rest) == set(again_rest)
    assert (pool, rest) == split_ids(IDS, 0.3, seed=7)


def test_split_is_disjoint_complete_in_input_order_and_sized_by_the_fraction():
    for fraction, expected in ((0.3, 30), (0.5, 50), (0.125, 12), (0.99, 99)):
        pool, rest = split_ids(IDS, fraction, seed=0)
        assert len(pool) == expected and len(rest) == 100 - expected
        assert not set(pool) & set(rest) and set(pool) | set(rest) == set(IDS)
        assert pool == sorted(pool, key=IDS.index) and rest == sorted(rest, key=IDS.index)


def test_different_seed_different_split():
    assert split_ids(IDS, 0.5, seed=0)[0] != split_ids(IDS, 0.5, seed=1)[0]


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5, float("nan"), True, "0.5"])
def test_fraction_must_lie_strictly_between_0_and_1(fraction):
    with pytest.raises(DataError, match="strictly between 0 and 1"):
        split_ids(IDS, fraction, seed=0)


def test_a_split_that_leaves_one_side_empty_is_refused():
    with pytest.raises(DataError, match="leaves no pool"):
        split_ids(["a", "b", "c"], 0.1, seed=0)
    with pytest.raises(DataError, match="leaves nothing held out"):
        split_ids(["a", "b", "c"], 0.9, seed=0)


def _task(write_jsonl, n: int = 10):
    records = [
        {"task_id": f"t/{i}", "prompt": f"Write function {i}: " + " ".join(f"w{i}x{j}" for j in range(20)),
         "tests": "assert True\n"}
        for i in range(n)
    ]  # fmt: skip
    return write_jsonl(records, name="task.jsonl")


def test_split_of_the_heldout_task_hands_back_the_pool_side_for_exclusion(write_jsonl):
    path = _task(write_jsonl)
    heldout = load_task(path)
    pool = load_pool(f"split:{path}", split_fraction=0.4, seed=3, heldout=heldout, heldout_task=str(path))
    pool_ids, rest_ids = split_ids([p.task_id for p in heldout], 0.4, 3)
    assert [p.task_id for p in pool.problems] == pool_ids and pool.exclude_from_heldout == pool_ids
    assert pool.n_with_tests == 4
    split = pool.provenance["split"]
    assert split["pool_ids_sha256"] == ids_digest(pool_ids) and split["rest_ids_sha256"] == ids_digest(rest_ids)
    assert split["fraction"] == 0.4 and split["seed"] == 3 and split["n_task"] == 10
    assert pool.provenance["contamination"]["excused_split_ids"] == 4


def test_split_of_another_task_excludes_nothing_and_the_overlap_is_refused(write_jsonl, tmp_path):
    path = _task(write_jsonl)
    copy = tmp_path / "copy.jsonl"
    copy.write_text(path.read_text())
    with pytest.raises(DataError, match="may be contaminated"):
        load_pool(f"split:{path}", heldout=load_task(copy), heldout_task=str(copy))
    assert load_pool(f"split:{path}").exclude_from_heldout == []


def test_a_near_copy_is_kept_on_the_side_of_its_original(write_jsonl):
    """A plain split would put the copy on the held-out side and the contamination check would refuse the
    pool; the split groups near-duplicates (13-gram overlap) so both land on one side."""
    ids = [f"t/{i}" for i in range(10)]
    pool_ids, rest_ids = split_ids(ids, 0.5, seed=0)  # the ungrouped split
    prompts = {i: f"Write function {i}: " + " ".join(f"w{i}x{j}" for j in range(20)) for i in ids}
    prompts[rest_ids[0]] = "Restated. " + prompts[pool_ids[0]]
    path = write_jsonl([{"task_id": i, "prompt": prompts[i], "tests": "assert True\n"} for i in ids])
    pool = load_pool(f"split:{path}", seed=0, heldout=load_task(path), heldout_task=str(path))
    assert pool.provenance["split"]["near_duplicate_groups"] == [sorted([pool_ids[0], rest_ids[0]])]
    side = set(pool.exclude_from_heldout)
    assert (pool_ids[0] in side) == (rest_ids[0] in side)


def test_same_task_compares_names_case_blind_and_paths_resolved(tmp_path):
    assert same_task("humaneval", "HumanEval") and not same_task("humaneval", None)
    assert same_task(str(tmp_path / "a" / ".." / "t.jsonl"), str(tmp_path / "t.jsonl"))
    assert not same_task(str(tmp_path / "t.jsonl"), "humaneval")


def test_split_names_no_task():
    with pytest.raises(DataError, match="names no task"):
        load_pool("split:")


def test_near_duplicate_groups_stay_on_one_side():
    from selfdistill.pool.split import split_ids

    ids = [f"t{i}" for i in range(20)]
    groups = [["t1", "t2", "t3"], ["t10", "t11"]]
    for seed in range(25):
        pool, rest = split_ids(ids, 0.5, seed, groups)
        for g in groups:
            assert set(g) <= set(pool) or set(g) <= set(rest), (seed, g)
        assert 8 <= len(pool) <= 10


def test_split_humaneval_against_humaneval_is_not_refused_for_its_own_near_duplicates():
    """HumanEval holds six pairs of prompts sharing a 13-gram; a plain split nearly always separated a pair
    and the contamination check refused it. Grouped, every seed gives a clean split."""
    from selfdistill.pool import load_pool
    from selfdistill.tasks.humaneval import load_humaneval

    heldout = load_humaneval()
    for seed in range(3):
        pool = load_pool("split:humaneval", seed=seed, heldout=heldout, heldout_task="humaneval")
        groups = pool.provenance["split"]["near_duplicate_groups"]
        assert ["HumanEval/33", "HumanEval/37"] in groups
        side = set(pool.exclude_from_heldout)  # the pool side, before duplicates are dropped
        assert all(set(g) <= side or not set(g) & side for g in groups)
        assert {p.task_id for p in pool.problems} <= side
