"""Bad input, command by command: each exits 2 with one message naming what is wrong, never a traceback.

Run in-process through `cli.main` (argparse's own refusals raise SystemExit(2)); nothing here reaches the
sandbox, so the table stays fast. An all-infra run is a failure of the run: tests/test_score.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from selfdistill import cli

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = (REPO / "examples" / "quickstart.toml").read_text()
NESTED = "[" * 100_000 + "]" * 100_000
HUGE_INT = "1" * 5000


def _run(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = cli.main(argv)
    except SystemExit as e:  # argparse refuses before any command runs
        code = e.code
    out = capsys.readouterr()
    return code, out.out + out.err


def _samples(tmp: Path, text: str | None = None) -> Path:
    path = tmp / "samples.jsonl"
    path.write_text(text if text is not None
                    else json.dumps({"task_id": "HumanEval/0", "completion": "    return 1\n"}) + "\n")
    return path


def _spec(tmp: Path, **replace: str) -> Path:
    text = QUICKSTART
    for old, new in replace.items():
        old = old.replace("_", " ").replace("EQ", "=")
        assert re.search(old, text, flags=re.M), old
        text = re.sub(old, new, text, count=1, flags=re.M)
    path = tmp / "spec.toml"
    path.write_text(text)
    return path


def _score(tmp: Path, *extra: str, samples: str | None = None) -> list[str]:
    return ["score", "--task", "humaneval", "--samples", str(_samples(tmp, samples)), *extra]


SCORE_CASES = {
    "nested-json-line": (lambda t: _score(t, samples=NESTED + "\n"), "samples.jsonl:1"),
    "nested-json-object": (lambda t: _score(t, samples='{"task_id": ' + NESTED + "}\n"), "samples.jsonl:1"),
    "5000-digit-int": (
        lambda t: _score(t, samples='{"task_id": "HumanEval/0", "completion": "x", "sample_idx": ' + HUGE_INT + "}\n"),
        "samples.jsonl:1",
    ),
    "out-is-a-file": (lambda t: _score(t, "--out", str(_file(t))), "is a file"),
    "out-under-a-file": (lambda t: _score(t, "--out", str(_file(t) / "sub")), "is under"),
    "out-unwritable": (lambda t: _score(t, "--out", "/proc/selfdistill-out"), "--out"),
    "seed-negative": (lambda t: _score(t, "--seed", "-1"), "--seed"),
    "timeout-zero": (lambda t: _score(t, "--timeout-s", "0"), "--timeout-s"),
    "timeout-negative": (lambda t: _score(t, "--timeout-s", "-1"), "--timeout-s"),
    "timeout-nan": (lambda t: _score(t, "--timeout-s", "nan"), "--timeout-s"),
    "timeout-inf": (lambda t: _score(t, "--timeout-s", "inf"), "--timeout-s"),
    "memory-zero": (lambda t: _score(t, "--memory-mb", "0"), "--memory-mb"),
    "memory-8": (lambda t: _score(t, "--memory-mb", "8"), "--memory-mb"),
    "workers-negative": (lambda t: _score(t, "--workers", "-3"), "--workers"),
    "workers-zero": (lambda t: _score(t, "--workers", "0"), "--workers"),
    "resamples-zero": (lambda t: _score(t, "--resamples", "0"), "--resamples"),
    "task-file-nested": (
        lambda t: ["score", "--task", str(_write(t, "tasks.jsonl", NESTED + "\n")), "--samples", str(_samples(t))],
        "tasks.jsonl:1",
    ),
    "task-file-huge-int": (
        lambda t: ["score", "--task", str(_write(t, "tasks.jsonl", '{"task_id": ' + HUGE_INT + "}\n")), "--samples",
                   str(_samples(t))],
        "tasks.jsonl:1",
    ),
    "lcb-tests-nested": (
        lambda t: ["score", "--task", str(_lcb(t, public_test_cases=NESTED)), "--samples", str(_samples(t))],
        "public_test_cases",
    ),
    "lcb-metadata-nested": (
        lambda t: ["score", "--task", str(_lcb(t, metadata=NESTED)), "--samples", str(_samples(t))],
        "metadata",
    ),
    "lcb-functional-huge-int": (
        lambda t: ["score", "--task",
                   str(_lcb(t, public_test_cases=json.dumps([{"input": HUGE_INT, "output": "1",
                                                              "testtype": "functional"}]),
                            metadata='{"func_name": "f"}')),
                   "--samples", str(_samples(t))],
        "functional test case 0",
    ),
    "outcomes-nested": (lambda t: _score(t, "--out", str(_outdir(t, NESTED + "\n{}\n"))), "outcomes.jsonl:1"),
}

OTHER_CASES = {
    "decide-metrics-a-list": (
        lambda t: ["decide", str(REPO / "examples" / "quickstart.toml"), "--metrics",
                   str(_write(t, "m.json", "[1, 2]"))],
        "metrics file",
    ),
    "decide-metrics-nested": (
        lambda t: ["decide", str(REPO / "examples" / "quickstart.toml"), "--metrics", str(_write(t, "m.json", NESTED))],
        "metrics file",
    ),
    "decide-metrics-huge-int": (
        lambda t: ["decide", str(REPO / "examples" / "quickstart.toml"), "--metrics",
                   str(_write(t, "m.json", '{"ks": ' + HUGE_INT + "}"))],
        "metrics file",
    ),
    "contamination-ngram-zero": (
        lambda t: ["contamination", "--pool", "humaneval", "--heldout", "humaneval", "--ngram", "0"],
        "--ngram",
    ),
    "contamination-ngram-negative": (
        lambda t: ["contamination", "--pool", "humaneval", "--heldout", "humaneval", "--ngram", "-2"],
        "--ngram",
    ),
    "contamination-out-a-directory": (
        lambda t: ["contamination", "--pool", str(_tasks(t)), "--heldout", str(_tasks(t, "b")), "--out", str(t)],
        "is a directory",
    ),
    "check-codebase-missing": (
        lambda t: ["check", str(_spec(t, **{'source EQ "mbpp"': 'source = "codebase:/nonexistent/src"'}))],
        "pool.source",
    ),
    "check-codebase-a-file": (
        lambda t: ["check", str(_spec(t, **{'source EQ "mbpp"': f'source = "codebase:{_file(t)}"'}))],
        "pool.source",
    ),
    "check-split-unknown-task": (
        lambda t: ["check", str(_spec(t, **{'source EQ "mbpp"': 'source = "split:nosuchtask"'}))],
        "pool.source",
    ),
    "check-pool-file-missing": (
        lambda t: ["check", str(_spec(t, **{'source EQ "mbpp"': 'source = "/nonexistent/pool.jsonl"'}))],
        "pool.source",
    ),
    "check-round2-pool-missing": (
        lambda t: ["check", str(_spec(t, **{r"\[gate\]": '[gate]\nround2_pool = "missing-pool.jsonl"'}))],
        "gate.round2_pool",
    ),
    "check-round2-heldout-missing": (
        lambda t: ["check", str(_spec(t, **{r"\[gate\]": '[gate]\nround2_heldout = "missing.jsonl"'}))],
        "gate.round2_heldout",
    ),
    "check-option-negative": (
        lambda t: ["check", str(_spec(t, **{r"^options EQ .*$": "options = { parallel = -3 }"}))],
        "generation.options.parallel",
    ),
    "check-option-unknown": (
        lambda t: ["check", str(_spec(t, **{r"^options EQ .*$": "options = { bogus = 1 }"}))],
        "generation.options.bogus",
    ),
    "check-option-wrong-type": (
        lambda t: ["check", str(_spec(t, **{r"^options EQ .*$": 'options = { parallel = "two" }'}))],
        "generation.options.parallel",
    ),
    "check-spec-nested": (lambda t: ["check", str(_write(t, "spec.toml", "a = " + NESTED + "\n"))], "spec.toml"),
    "check-spec-huge-int": (lambda t: ["check", str(_write(t, "spec.toml", "a = " + HUGE_INT + "\n"))], "spec.toml"),
    "score-errata-huge-int": (
        lambda t: _score(t, "--errata", str(_write(t, "errata.toml", "a = " + HUGE_INT + "\n"))),
        "errata.toml",
    ),
    "score-errata-nested": (
        lambda t: _score(t, "--errata", str(_write(t, "errata.toml", "a = " + NESTED + "\n"))),
        "errata.toml",
    ),
    "check-run-dir-a-file": (
        lambda t: ["check", str(REPO / "examples" / "quickstart.toml"), "--run-dir", str(_file(t))],
        "--run-dir",
    ),
    "eval-run-dir-a-file": (
        lambda t: ["eval", str(REPO / "examples" / "quickstart.toml"), "--run-dir", str(_file(t))],
        "--run-dir",
    ),
    "run-run-dir-a-file": (
        lambda t: ["run", str(REPO / "examples" / "quickstart.toml"), "--run-dir", str(_file(t))],
        "--run-dir",
    ),
    "demo-out-a-file": (lambda t: ["demo", "--out", str(_file(t))], "is a file"),
}


def _lcb(tmp: Path, **fields: str) -> Path:
    record = {"question_id": "q1", "question_content": "x", "question_title": "t", "platform": "x",
              "contest_date": "2024-01-01T00:00:00", "difficulty": "easy", "starter_code": "",
              "public_test_cases": json.dumps([{"input": "1", "output": "1", "testtype": "stdin"}]),
              "private_test_cases": "[]", "metadata": "{}"}
    return _write(tmp, "lcb.jsonl", json.dumps(record | fields) + "\n")


def _file(tmp: Path) -> Path:
    return _write(tmp, "a-file", "x")


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def _outdir(tmp: Path, outcomes: str) -> Path:
    out = tmp / "out"
    out.mkdir(exist_ok=True)
    (out / "outcomes.jsonl").write_text(outcomes)
    return out


def _tasks(tmp: Path, name: str = "a") -> Path:
    record = {"task_id": f"{name}/0", "prompt": "def f(x):\n    'Return x.'\n", "entry_point": "f",
              "tests": "def check(candidate):\n    assert candidate(1) == 1\n"}
    return _write(tmp, f"{name}.jsonl", json.dumps(record) + "\n")


@pytest.mark.parametrize("case", sorted(SCORE_CASES) + sorted(OTHER_CASES))
def test_bad_input_is_exit_2_with_one_message_and_no_traceback(tmp_path, capsys, case):
    build, names = {**SCORE_CASES, **OTHER_CASES}[case]
    code, output = _run(build(tmp_path), capsys)
    assert code == 2, output[-2000:]
    assert "Traceback" not in output
    assert names in output, output[-2000:]
    assert len(output) < 3000, "one message, not a dump"
