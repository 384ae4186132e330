"""LiveCodeBench release records for the loader tests: a stdin problem, a functional one with compressed
private tests, and the release files' encoding."""

import base64
import json
import pickle
import zlib


def compress(cases: list[dict]) -> str:
    """The release files' encoding: base64(zlib(pickle(JSON string)))."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode()


def stdin_record(**overrides) -> dict:
    record = {
        "question_title": "Sum",
        "question_content": "Given N integers, print their sum.",
        "platform": "atcoder",
        "question_id": "abc999_a",
        "contest_id": "abc999",
        "contest_date": "2024-03-02T00:00:00",
        "starter_code": "",
        "difficulty": "easy",
        "public_test_cases": json.dumps([{"input": "2\n1 2\n", "output": "3\n", "testtype": "stdin"}]),
        "private_test_cases": json.dumps([{"input": "1\n5\n", "output": "5\n", "testtype": "stdin"}]),
        "metadata": "{}",
    }
    return {**record, **overrides}


def functional_record(**overrides) -> dict:
    public = [{"input": "[1, 2, 3]\n2", "output": "1", "testtype": "functional"}]
    private = [
        {"input": "[4, 4]\n4", "output": "2", "testtype": "functional"},
        {"input": "[]\n0\n", "output": "0", "testtype": "functional"},
        {"input": '["a", "b"]\n"a"', "output": "[true, false]", "testtype": "functional"},
    ]
    record = {
        "question_title": "Count",
        "question_content": "Return how many times k occurs in nums.",
        "platform": "leetcode",
        "question_id": "3000",
        "contest_id": "weekly-contest-400",
        "contest_date": "2024-06-02T00:00:00",
        "starter_code": "class Solution:\n    def countK(self, nums: List[int], k: int) -> int:\n        ",
        "difficulty": "medium",
        "public_test_cases": json.dumps(public),
        "private_test_cases": compress(private),
        "metadata": json.dumps({"func_name": "countK"}),
    }
    return {**record, **overrides}
