"""extract_code on real-looking completions: one rule per test, never executing anything."""

import json

import pytest

from selfdistill.generate.extract import (
    Extraction,
    ExtractMethod,
    defines,
    extract_code,
)

QWEN_STYLE = """Here's a Python function that solves the problem:

```python
from typing import List


def has_close_elements(numbers: List[float], threshold: float) -> bool:
    for i, a in enumerate(numbers):
        for b in numbers[i + 1:]:
            if abs(a - b) < threshold:
                return True
    return False
```

### Explanation
1. We compare every pair of numbers.
2. If any pair is closer than `threshold`, we return `True`.

This runs in O(n^2) time.
"""


def test_qwen_style_explanation_then_block():
    got = extract_code(QWEN_STYLE, "has_close_elements")
    assert got.method == "fenced-python"
    assert got.code.startswith("from typing import List\n")
    assert got.code.endswith("    return False\n")
    assert "Explanation" not in got.code


def test_method_is_a_string_that_serializes_as_its_value():
    got = extract_code(QWEN_STYLE)
    assert got.method == ExtractMethod.FENCED_PYTHON == "fenced-python"
    assert json.dumps({"method": got.method}) == '{"method": "fenced-python"}'
    assert f"{got.method}" == "fenced-python"


def test_py_and_python3_and_capitalised_tags_count_as_python():
    for tag in ("py", "python3", "Python", "PYTHON", "python title=solution.py"):
        got = extract_code(f"Code:\n```{tag}\nx = 1\n```\nThat's it.")
        assert (got.method, got.code) == ("fenced-python", "x = 1\n"), tag


def test_python_block_wins_over_a_longer_unlabelled_one():
    text = (
        "Input format:\n```\n3\n1 2 3\n4 5 6\n7 8 9 and a long example line\n```\n"
        "Solution:\n```python\nprint(sum(map(int, input().split())))\n```\n"
    )
    got = extract_code(text)
    assert got == Extraction("print(sum(map(int, input().split())))\n", ExtractMethod.FENCED_PYTHON)


def test_several_python_blocks_first_defining_entry_point_wins():
    text = (
        "A helper first:\n```python\ndef helper(x):\n    return x * 2\n\n\n# a long comment line " + "x" * 80
        + "\n```\nNow the function:\n```python\ndef solve(n):\n    return helper(n)\n```\n"
        "And a second version:\n```python\ndef solve(n):\n    return 2 * n  # alternative\n```\n"
    )
    assert extract_code(text, "solve").code == "def solve(n):\n    return helper(n)\n"


def test_several_python_blocks_without_entry_point_longest_wins():
    short, long = "def f():\n    return 1\n", "def f():\n    x = 1\n    return x + 0\n"
    text = f"```python\n{short}```\ntext\n```python\n{long}```\n"
    assert extract_code(text).code == long
    assert extract_code(text, "missing_name").code == long  # entry point defined nowhere: longest


def test_equal_length_blocks_first_wins():
    text = "```python\na = 1\n```\n```python\nb = 2\n```\n"
    assert extract_code(text).code == "a = 1\n"


def test_entry_point_as_method_or_class_or_async_def():
    method = "```python\nclass Solution:\n    def twoSum(self, nums, target):\n        return [0, 1]\n```"
    other = "```python\n" + "def unrelated():\n    pass\n" * 5 + "```"
    assert extract_code(other + "\n" + method, "twoSum").code.startswith("class Solution:")
    assert defines("async def go(x):\n    pass\n", "go")
    assert defines("class Solution:\n    pass\n", "Solution")
    assert not defines("def gopher(x):\n    pass\n", "go")
    assert not defines("x = go(1)\n", "go")


def test_tilde_fences():
    text = "Solution:\n~~~python\ndef f(x):\n    return x\n~~~\n"
    assert extract_code(text, "f") == Extraction("def f(x):\n    return x\n", ExtractMethod.FENCED_PYTHON)


def test_a_longer_fence_holds_an_inner_triple_backtick():
    text = '````python\ns = """\n```\n"""\nprint(s)\n````\n'
    assert extract_code(text).code == 's = """\n```\n"""\nprint(s)\n'


def test_crlf_line_endings():
    text = "Here you go:\r\n```python\r\ndef f(x):\r\n    return x + 1\r\n```\r\nDone.\r\n"
    got = extract_code(text, "f")
    assert got.code == "def f(x):\n    return x + 1\n"
    assert "\r" not in got.code


def test_block_inside_a_markdown_list_is_dedented_by_its_fence_indentation():
    text = "1. Write the code:\n   ```python\n   def f():\n       return 1\n   ```\n2. Done."
    assert extract_code(text).code == "def f():\n    return 1\n"


def test_unlabelled_block_is_fenced_any():
    text = "The answer is\n```\ndef f():\n    return 1\n```\n"
    assert extract_code(text) == Extraction("def f():\n    return 1\n", ExtractMethod.FENCED_ANY)


def test_fenced_any_prefers_the_block_defining_the_entry_point():
    text = "Example:\n```text\nf(2) -> 4 and other long example text here\n```\n```\ndef f(x):\n    return x*x\n```\n"
    assert extract_code(text, "f").code == "def f(x):\n    return x*x\n"


def test_unterminated_fence_takes_everything_after_it():
    text = "Sure! Here's the code:\n\n```python\ndef f(n):\n    total = 0\n    for i in range(n):\n        total +="
    got = extract_code(text, "f")
    assert got.method == "unterminated-fence"
    assert got.code == "def f(n):\n    total = 0\n    for i in range(n):\n        total +=\n"


def test_complete_block_beats_an_unterminated_one():
    text = "```python\ndef f():\n    return 1\n```\nA faster version:\n```python\ndef f():\n    return"
    assert extract_code(text, "f") == Extraction("def f():\n    return 1\n", ExtractMethod.FENCED_PYTHON)


def test_blank_blocks_are_skipped():
    assert extract_code("```python\n\n```\n```python\nx = 1\n```").code == "x = 1\n"
    assert extract_code("```python\n   \n```").method == "none"
    assert extract_code("Here:\n```python\n\n").method == "none"  # unterminated and blank


def test_raw_code_without_fences_parses():
    text = "import sys\n\ndef main():\n    print(sum(map(int, sys.stdin.read().split())))\n\nmain()\n"
    assert extract_code(text) == Extraction(text, ExtractMethod.RAW_PARSES)


def test_raw_code_keeps_its_text_trimmed_of_blank_edges():
    assert extract_code("\n\ndef f():\n    return 1\n\n\n").code == "def f():\n    return 1\n"


@pytest.mark.parametrize(
    "text",
    [
        "Yes.",
        "Yes",
        "True",
        "42",
        "None",
        "foo.bar",
        '"just a string"',
        "",
        "   \n\n",
        "I cannot solve this problem because the constraints are contradictory.",
        "The answer is: use dynamic programming over the prefix sums.",
        "Sorry, I don't know.",
    ],
)
def test_prose_is_none_even_when_it_parses(text):
    assert extract_code(text) == Extraction(None, ExtractMethod.NONE)


def test_prose_with_backslashes_does_not_warn(recwarn):
    assert extract_code(r"Use the regex \d+ to match digits").method == "none"
    assert not [w for w in recwarn if issubclass(w.category, SyntaxWarning)]


def test_reasoning_section_is_ignored_after_think_closes():
    text = (
        "<think>\nMaybe:\n```python\ndef f():\n    return 'draft that is much longer than the answer'\n```\n"
        "Hmm, no.\n</think>\n\nFinal answer:\n```python\ndef f():\n    return 1\n```"
    )
    assert extract_code(text, "f").code == "def f():\n    return 1\n"


def test_unclosed_think_is_left_as_is():
    text = "<think>\nI will write:\n```python\ndef f():\n    return 1\n```\nand then"
    assert extract_code(text, "f").code == "def f():\n    return 1\n"


def test_code_is_never_executed(tmp_path):
    marker = tmp_path / "ran"
    payload = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('x')\n"
    for text in (f"```python\n{payload}```", payload, f"```python\n{payload}"):
        assert extract_code(text).code == payload
    assert not marker.exists()


def test_extraction_is_frozen():
    got = extract_code("x = 1")
    with pytest.raises(AttributeError):
        got.code = "y = 2"  # type: ignore[misc]
