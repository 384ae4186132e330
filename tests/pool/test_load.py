"""`load_pool` on JSONL files, and what every source goes through: duplicates, the seeded limit, the
content hashes, and the contamination refusal."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from selfdistill.errors import DataError
from selfdistill.pool import PromptPool, content_digest, load_pool, prompt_hash
from selfdistill.tasks.contamination import normalize
from selfdistill.tasks.problem import AssertTests, Problem


def prompt(i: int) -> str:
    return f"def f{i}(x):\n    \"\"\"Return function {i} of x: " + " ".join(f"w{i}y{j}" for j in range(20)) + '"""\n'


POOL = [{"task_id": f"p/{i}", "prompt": prompt(i)} for i in range(12)]


def held(task_id: str, text: str) -> Problem:
    return Problem(task_id, text, AssertTests("assert True\n"), "held")


# --- JSONL pools -----------------------------------------------------------------------------------


def test_jsonl_pool_without_tests_loads(write_jsonl):
    pool = load_pool(str(write_jsonl(POOL)))
    assert [p.task_id for p in pool.problems] == [f"p/{i}" for i in range(12)]
    assert all(p.tests is None for p in pool.problems) and pool.n_with_tests == 0
    assert pool.provenance["kind"] == "file" and pool.provenance["format"] == "jsonl"


def test_jsonl_pool_mixing_prompts_with_and_without_tests(write_jsonl):
    records = [POOL[0] | {"tests": "assert True\n"}, POOL[1], POOL[2] | {"entry_point": "f2"}]
    pool = load_pool(str(write_jsonl(records)))
    assert pool.n_with_tests == 1 and pool.problems[2].entry_point == "f2"
    assert pool.provenance["n_with_tests"] == 1


def test_jsonl_pool_still_validates_every_other_field(write_jsonl):
    with pytest.raises(DataError) as e:
        load_pool(str(write_jsonl([POOL[0] | {"entry_point": "not a name"}, {"prompt": "x", "test": "y"}])))
    msg = str(e.value)
    assert "line 1: field entry_point must be a Python function name" in msg
    assert "line 2: missing field task_id" in msg and '"test" (did you mean "tests"?)' in msg


def test_provenance_pins_the_file_and_is_json_ready(write_jsonl):
    path = write_jsonl(POOL)
    prov = load_pool(str(path)).provenance
    assert prov["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert prov["n_problems"] == prov["n_loaded"] == 12 and prov["duplicates_dropped"] == 0
    assert prov["contamination"] == {"checked": False, "heldout_task": None}
    assert json.loads(json.dumps(prov)) == prov


def test_a_source_that_is_no_form_names_the_forms(tmp_path):
    with pytest.raises(DataError) as e:
        load_pool(str(tmp_path / "missing.jsonl"))
    assert "no such file" in str(e.value)
    assert '"mbpp", "split:<task name or file>", "codebase:<directory>"' in str(e.value)


# --- duplicates, limit, hashes ---------------------------------------------------------------------


def test_duplicate_prompts_are_dropped_and_counted(write_jsonl):
    reworded = {"task_id": "p/dup", "prompt": POOL[3]["prompt"].upper().replace("    ", "\t")}
    pool = load_pool(str(write_jsonl(POOL + [reworded])))
    assert "p/dup" not in {p.task_id for p in pool.problems} and len(pool.problems) == 12
    assert pool.provenance["duplicates"] == [{"dropped": "p/dup", "kept": "p/3"}]


def test_limit_takes_a_seeded_subset_in_pool_order(write_jsonl):
    path = str(write_jsonl(POOL))
    ids = [p.task_id for p in load_pool(path, limit=5, seed=1).problems]
    assert ids == [p.task_id for p in load_pool(path, limit=5, seed=1).problems]
    assert len(ids) == 5 and ids == sorted(ids, key=lambda i: int(i.split("/")[1]))
    assert ids != [p.task_id for p in load_pool(path, limit=5, seed=2).problems]
    assert len(load_pool(path, limit=50).problems) == 12
    assert load_pool(path, limit=5, seed=1).provenance["limit"] == 5


@pytest.mark.parametrize("limit", [0, -1, 2.5, True])
def test_limit_must_be_a_positive_whole_number(write_jsonl, limit):
    with pytest.raises(DataError, match="limit"):
        load_pool(str(write_jsonl(POOL)), limit=limit)


def test_content_hashes_are_stable_and_ignore_layout(write_jsonl):
    pool = load_pool(str(write_jsonl(POOL)))
    hashes = pool.content_hashes()
    assert hashes["p/0"] == hashlib.sha256(normalize(POOL[0]["prompt"]).encode()).hexdigest()
    assert hashes["p/0"] == prompt_hash(POOL[0]["prompt"].replace("\n", "\r\n   "))
    assert hashes == load_pool(str(write_jsonl(list(reversed(POOL)), name="rev.jsonl"))).content_hashes()
    assert pool.provenance["content_digest"] == content_digest(hashes)
    assert pool.provenance["content_digest"] == load_pool(str(write_jsonl(POOL[::-1], name="r.jsonl"))).provenance[
        "content_digest"
    ]


def test_pool_ids_must_be_unique():
    p = held("x", "a prompt")
    with pytest.raises(ValueError):
        PromptPool([p, p], {})


# --- contamination ---------------------------------------------------------------------------------


def test_a_heldout_prompt_in_the_pool_is_refused_naming_both_ids(write_jsonl):
    heldout = [held("HE/1", "Something else entirely."), held("HE/2", POOL[7]["prompt"])]
    with pytest.raises(DataError) as e:
        load_pool(str(write_jsonl(POOL)), heldout=heldout, heldout_task="he.jsonl")
    msg = str(e.value)
    assert "overlaps the held-out set (he.jsonl)" in msg
    assert "HE/2: same prompt as pool p/7" in msg and "HE/1" not in msg


def test_a_shared_13_gram_is_refused_and_ngram_sets_the_length(write_jsonl):
    words = POOL[4]["prompt"].split()[3:19]  # 16 consecutive words of p/4
    heldout = [held("HE/3", "Unrelated opening. " + " ".join(words) + " unrelated ending.")]
    with pytest.raises(DataError, match="HE/3: shares 13-grams with pool p/4"):
        load_pool(str(write_jsonl(POOL)), heldout=heldout)
    pool = load_pool(str(write_jsonl(POOL)), heldout=heldout, ngram=20)  # no shared 20-gram
    assert pool.provenance["contamination"] == {
        "checked": True, "heldout_task": None, "heldout_size": 1, "ngram": 20, "clean": True, "excused_split_ids": 0
    }


def test_ngram_must_be_a_positive_whole_number(write_jsonl):
    with pytest.raises(DataError, match="n-gram length"):
        load_pool(str(write_jsonl(POOL)), heldout=[held("h", "x")], ngram=0)


def test_dropping_the_contaminating_prompt_by_limit_makes_the_pool_clean(write_jsonl):
    path = str(write_jsonl(POOL))
    kept = {p.task_id for p in load_pool(path, limit=3, seed=0).problems}
    outside = next(r for r in POOL if r["task_id"] not in kept)
    pool = load_pool(path, limit=3, seed=0, heldout=[held("HE/9", outside["prompt"])])
    assert pool.provenance["contamination"]["clean"] is True


def test_the_pool_package_imports_no_heavy_backend():
    code = (
        "import sys, selfdistill.pool, selfdistill.pool.mbpp, selfdistill.pool.codebase; "
        "heavy = {'torch', 'transformers', 'vllm', 'llama_cpp'} & set(sys.modules); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
