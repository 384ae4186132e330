"""Prompts per model kind and test kind, and the program a completion stands for."""

import ast

from selfdistill.generate.extract import ExtractMethod
from selfdistill.generate.prompts import (
    BASE_STOP,
    SYSTEM_PROMPT,
    build_prompt,
    program_from_completion,
    truncate_continuation,
)
from selfdistill.tasks.problem import (
    AssertTests,
    CallCase,
    CallTests,
    IOCase,
    IOTests,
    Problem,
)

HE_PROMPT = '''from typing import List


def below_zero(operations: List[int]) -> bool:
    """ Return True if the balance ever falls below zero.
    >>> below_zero([1, -2])
    True
    """
'''
HUMANEVAL = Problem(
    "HumanEval/3", HE_PROMPT, AssertTests("def check(candidate):\n    assert candidate([1, -2])\n"),
    "humaneval", entry_point="below_zero", prefix=HE_PROMPT,
)
LCB_IO = Problem(
    "abc001_a", "Read N and print N squared.", IOTests((IOCase("3\n", "9\n"),)), "livecodebench",
)
LCB_CALL = Problem(
    "lc1", "Return the indices of two numbers adding up to target.\n\n```python\nclass Solution:\n"
    "    def twoSum(self, nums: List[int], target: int) -> List[int]:\n        \n```\n",
    CallTests("twoSum", (CallCase("[[2, 7], 9]", "[0, 1]"),)), "livecodebench",
)
MBPP_LIKE = Problem("m/1", "Write a function to add two numbers.", AssertTests("assert add(1, 2) == 3"),
                    "jsonl", entry_point="add")


def roles(messages):
    return [m["role"] for m in messages]


def test_chat_prompt_is_system_then_user_and_mentions_one_python_block():
    messages = build_prompt(LCB_IO, chat=True)
    assert isinstance(messages, tuple) and roles(messages) == ["system", "user"]
    assert messages[0]["content"].startswith(SYSTEM_PROMPT)
    assert "```python" in SYSTEM_PROMPT and "ONE" in SYSTEM_PROMPT and "self-contained" in SYSTEM_PROMPT
    assert messages[1]["content"] == "Read N and print N squared."


def test_io_problems_ask_for_stdin_and_stdout():
    system = build_prompt(LCB_IO, chat=True)[0]["content"]
    assert "standard input" in system and "standard output" in system


def test_call_problems_ask_for_the_starter_code_method():
    system, user = (m["content"] for m in build_prompt(LCB_CALL, chat=True))
    assert "`twoSum`" in system and "class Solution" in system and "stdin" in system
    assert "def twoSum" in user  # the starter code stays in the problem text


def test_function_problems_name_the_entry_point():
    system = build_prompt(MBPP_LIKE, chat=True)[0]["content"]
    assert "`add`" in system and "standard input" not in system


def test_prefix_problem_shows_the_code_in_a_fence_and_asks_to_complete_it():
    user = build_prompt(HUMANEVAL, chat=True)[1]["content"]
    assert user.startswith("Complete the following Python function:\n```python\nfrom typing import List")
    assert user.endswith('    """\n```')
    assert user.count("```") == 2


def test_prefix_problem_with_its_own_text_shows_text_then_code():
    problem = Problem("j/1", "Finish the stub.", AssertTests("assert f() == 1"), "jsonl",
                      entry_point="f", prefix="def f():\n")
    user = build_prompt(problem, chat=True)[1]["content"]
    assert user.startswith("Finish the stub.\n\nComplete the following Python function:\n```python\ndef f():\n```")


def test_base_prompt_is_the_prompt_string_itself():
    assert build_prompt(HUMANEVAL, chat=False) == HE_PROMPT
    assert build_prompt(LCB_IO, chat=False) == "Read N and print N squared."


def test_base_continuation_is_prefix_plus_completion_cut_at_a_new_top_level_block():
    raw = "    balance = 0\n    for op in operations:\n        balance += op\n        if balance < 0:\n" \
          "            return True\n    return False\n\n\ndef check():\n    pass\n"
    got = program_from_completion(HUMANEVAL, raw, chat=False)
    assert got.method == ExtractMethod.CONTINUATION
    assert got.code == HE_PROMPT + raw[: raw.index("\ndef check")]
    ast.parse(got.code)


def test_every_base_stop_cuts_and_the_earliest_wins():
    body = "    return 1\n"
    for stop in BASE_STOP:
        assert truncate_continuation(body + stop + "rest\n") == body, stop
    assert truncate_continuation(body + "\n#c\nclass A: pass\n") == body
    indented = body + "    # an indented comment stays\n"
    assert truncate_continuation(indented) == indented
    assert truncate_continuation(body) == body


def test_base_model_without_prefix_uses_extraction():
    got = program_from_completion(LCB_IO, "```python\nprint(int(input()) ** 2)\n```", chat=False)
    assert (got.code, got.method) == ("print(int(input()) ** 2)\n", "fenced-python")


def test_chat_program_puts_the_prefix_before_the_extracted_code():
    raw = ("Here is the solution:\n```python\nfrom typing import List\n\ndef below_zero(operations: List[int]) -> bool:"
           "\n    balance = 0\n    for op in operations:\n        balance += op\n        if balance < 0:\n"
           "            return True\n    return False\n```\n")
    got = program_from_completion(HUMANEVAL, raw, chat=True)
    assert got.method == "fenced-python"
    assert got.code.startswith(HE_PROMPT.rstrip("\n") + "\n\nfrom typing import List\n")
    tree = ast.parse(got.code)
    # the model's definition is the LAST one of the entry point, so it wins at run time
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "below_zero"]
    assert len(defs) == 2 and len(defs[-1].body) > 1


def test_chat_answer_that_is_only_the_body_still_makes_a_program():
    raw = "```python\n    return any(sum(operations[:i + 1]) < 0 for i in range(len(operations)))\n```"
    got = program_from_completion(HUMANEVAL, raw, chat=True)
    ast.parse(got.code)
    assert got.code.startswith(HE_PROMPT.rstrip("\n"))


def test_chat_prefix_stub_without_body_falls_back_to_the_code_alone():
    problem = Problem("j/2", "stub", AssertTests("assert f() == 1"), "jsonl", entry_point="f",
                      prefix="import math\n\ndef f():\n")
    got = program_from_completion(problem, "```python\ndef f():\n    return 1\n```", chat=True)
    assert got.code == "def f():\n    return 1\n"


def test_chat_without_prefix_is_the_extracted_code():
    got = program_from_completion(LCB_CALL, "```python\nclass Solution:\n    def twoSum(self, nums, target):\n"
                                            "        return [0, 1]\n```", chat=True)
    assert got.code.startswith("class Solution:") and got.method == "fenced-python"


def test_call_problems_use_fn_name_to_choose_among_blocks():
    raw = ("```python\ndef parse(s):\n    return [int(x) for x in s.split()]  # a long helper line here\n```\n"
           "```python\nclass Solution:\n    def twoSum(self, nums, target):\n        return [0, 1]\n```")
    assert program_from_completion(LCB_CALL, raw, chat=True).code.startswith("class Solution:")


def test_no_code_stays_none_even_with_a_prefix():
    got = program_from_completion(HUMANEVAL, "I am not able to help with that.", chat=True)
    assert (got.code, got.method) == (None, "none")
