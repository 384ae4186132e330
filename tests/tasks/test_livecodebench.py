import base64
import datetime as dt
import json
import os
import pickle
import zlib

import pytest

from selfdistill.errors import DataError
from selfdistill.tasks import livecodebench
from selfdistill.tasks.livecodebench import decode_private_tests, load_livecodebench
from selfdistill.tasks.problem import CallCase, CallTests, Difficulty, IOCase, IOTests
from tests.tasks.lcb_records import compress, functional_record, stdin_record


def test_stdin_problem(write_jsonl):
    (p,) = load_livecodebench(write_jsonl([stdin_record()]))
    assert p.task_id == "abc999_a" and p.source == "livecodebench"
    assert p.prompt == "Given N integers, print their sum." and p.prefix == ""
    assert p.difficulty is Difficulty.EASY and p.release_date == dt.date(2024, 3, 2)
    assert p.tests == IOTests((IOCase("2\n1 2\n", "3\n"), IOCase("1\n5\n", "5\n")))


def test_functional_problem_with_compressed_private_tests(write_jsonl):
    (p,) = load_livecodebench(write_jsonl([functional_record()]))
    assert isinstance(p.tests, CallTests) and p.tests.fn_name == "countK"
    assert p.tests.cases == (
        CallCase("[[1, 2, 3], 2]", "1"),
        CallCase("[[4, 4], 4]", "2"),
        CallCase("[[], 0]", "0"),
        CallCase('[["a", "b"], "a"]', "[true, false]"),
    )
    assert p.prompt.startswith("Return how many times k occurs in nums.\n\n```python\nclass Solution:")
    assert p.prompt.endswith("def countK(self, nums: List[int], k: int) -> int:\n```\n")
    assert p.difficulty is Difficulty.MEDIUM and p.release_date == dt.date(2024, 6, 2)


def test_decode_private_tests_accepts_both_encodings():
    cases = [{"input": "1", "output": "1", "testtype": "stdin"}]
    assert decode_private_tests(json.dumps(cases)) == cases
    assert decode_private_tests(compress(cases)) == cases


class _Exploit:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_malicious_pickle_is_refused_not_run(write_jsonl, tmp_path):
    marker = tmp_path / "pwned"
    payload = base64.b64encode(zlib.compress(pickle.dumps(_Exploit(str(marker))))).decode()
    with pytest.raises(
        DataError, match=r"line 1: field private_test_cases cannot be decoded: unsafe or broken pickle"
    ):
        load_livecodebench(write_jsonl([stdin_record(private_test_cases=payload)]))
    assert not marker.exists()


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_every_protocol_global_is_refused(tmp_path, protocol):
    marker = tmp_path / "pwned"
    payload = base64.b64encode(zlib.compress(pickle.dumps(_Exploit(str(marker)), protocol=protocol))).decode()
    with pytest.raises(ValueError, match="refused: the payload asks for"):
        decode_private_tests(payload)
    assert not marker.exists()


def test_pickle_of_a_non_string_is_refused():
    payload = base64.b64encode(zlib.compress(pickle.dumps([{"input": "1"}]))).decode()
    with pytest.raises(ValueError, match="the pickle holds a list, expected a JSON string"):
        decode_private_tests(payload)


def test_truncated_and_oversized_payloads(monkeypatch):
    packed = base64.b64decode(compress([{"input": "1", "output": "1", "testtype": "stdin"}] * 50))
    with pytest.raises(ValueError, match="truncated"):
        decode_private_tests(base64.b64encode(packed[:-4]).decode())
    monkeypatch.setattr(livecodebench, "MAX_PRIVATE_BYTES", 100)
    with pytest.raises(ValueError, match="more than 100 bytes"):
        decode_private_tests(base64.b64encode(packed).decode())


def _error(write_jsonl, record) -> str:
    with pytest.raises(DataError) as e:
        load_livecodebench(write_jsonl([record]))
    return str(e.value)


def test_missing_field(write_jsonl):
    record = stdin_record()
    del record["contest_date"]
    assert "line 1: missing field contest_date" in _error(write_jsonl, record)


def test_bad_difficulty_and_date(write_jsonl):
    msg = _error(write_jsonl, stdin_record(difficulty="EASY", contest_date="last week"))
    assert 'field difficulty is "EASY"' in msg and 'field contest_date is "last week"' in msg


def test_functional_without_func_name(write_jsonl):
    assert "must name the function" in _error(write_jsonl, functional_record(metadata="{}"))


def test_mixed_test_types(write_jsonl):
    mixed = json.dumps([{"input": "1", "output": "1", "testtype": "stdin"}])
    assert "mixes test types" in _error(write_jsonl, functional_record(public_test_cases=mixed))


def test_functional_input_not_json(write_jsonl):
    bad = json.dumps([{"input": "[1, 2\n3", "output": "1", "testtype": "functional"}])
    assert "not one JSON value per line" in _error(write_jsonl, functional_record(public_test_cases=bad))


def test_bad_test_case_shape(write_jsonl):
    bad = json.dumps([{"input": "1", "output": "1", "testtype": "interactive"}])
    assert "public_test_cases[0] must be" in _error(write_jsonl, stdin_record(public_test_cases=bad))


def test_no_test_cases(write_jsonl):
    assert "has no test cases" in _error(
        write_jsonl, stdin_record(public_test_cases="[]", private_test_cases="[]")
    )


def test_duplicate_question_id(write_jsonl):
    with pytest.raises(DataError, match='line 2: question_id "abc999_a" duplicates line 1'):
        load_livecodebench(write_jsonl([stdin_record(), stdin_record()]))
