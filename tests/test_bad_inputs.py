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
    # bounded up front, before any program runs (not a MemoryError after scoring, not all-infra "fix the sandbox")
    "resamples-huge": (lambda t: _score(t, "--resamples", "10000000000"), "--resamples"),
    "resamples-just-over": (lambda t: _score(t, "--resamples", "1000001"), "--resamples"),
    "workers-huge": (lambda t: _score(t, "--workers", "100000"), "--workers"),
    "memory-huge": (lambda t: _score(t, "--memory-mb", "99999999999999"), "--memory-mb"),
    "memory-just-over-1tib": (lambda t: _score(t, "--memory-mb", "1048577"), "--memory-mb"),
    "timeout-below-floor": (lambda t: _score(t, "--timeout-s", "0.01"), "--timeout-s"),
    "timeout-tiny": (lambda t: _score(t, "--timeout-s", "1e-300"), "--timeout-s"),
    "sample-idx-true": (
        lambda t: _score(t, samples='{"task_id": "HumanEval/0", "completion": "x", "sample_idx": true}\n'),
        "samples.jsonl:1",
    ),
    "sample-idx-false": (
        lambda t: _score(t, samples='{"task_id": "HumanEval/0", "completion": "x", "sample_idx": false}\n'),
        "samples.jsonl:1",
    ),
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
    # metrics.json: wrongly typed nested fields name the file and the field
    "decide-metrics-a-directory": (lambda t: _decide(t, metrics=t), "is a directory"),
    "decide-metrics-list": (lambda t: _decide(t, metrics=[]), "metrics is []"),
    "decide-gaps-list": (lambda t: _decide(t, gaps=[1]), "gaps is [1]"),
    "decide-gap-null": (lambda t: _decide(t, gaps={"pass@16-pass@1": None}), "gaps.pass@16-pass@1 is null"),
    "decide-gap-no-value": (lambda t: _decide(t, gaps={"pass@16-pass@1": {"ci_low": 0}}), "gaps.pass@16-pass@1"),
    "decide-estimate-value-str": (
        lambda t: _decide(t, metrics={"pass@1": {"value": "x", "ci_low": 0, "ci_high": 1}}), "metrics.pass@1.value"),
    "decide-per-problem-null": (lambda t: _decide(t, per_problem=None), "per_problem is null"),
    "decide-per-problem-row-list": (lambda t: _decide(t, per_problem={"a": []}), "per_problem.a"),
    "decide-per-problem-n-str": (lambda t: _decide(t, per_problem={"a": {"n": "2"}}), "per_problem.a.n"),
    "decide-halves-estimate-null-n": (
        lambda t: _decide(t, per_problem={"a": {"n": 2, "halves": {"estimate": {"n": None}}}}),
        "per_problem.a.halves.estimate"),
    "decide-slices-str": (lambda t: _decide(t, slices="x"), 'slices is "x"'),
    "decide-slice-gaps-null": (lambda t: _decide(t, slices={"easy": {"n_problems": 1, "metrics": {}, "gaps": None}}),
                               "slices.easy.gaps"),
    "decide-ks-strings": (lambda t: _decide(t, ks=["1"]), "ks is"),
    "decide-provenance-list": (lambda t: _decide(t, provenance=[1]), "provenance is [1]"),
    "decide-provenance-excluded-null": (
        lambda t: _decide(t, provenance={"excluded": [None]}), "provenance.excluded"),
    "decide-status-counts-str": (lambda t: _decide(t, status_counts="x"), "status_counts"),
    "decide-status-counts-missing": (lambda t: _decide(t, drop="status_counts"), "lacks the field 'status_counts'"),
    "decide-n-resamples-missing": (lambda t: _decide(t, drop="n_resamples"), "lacks the field 'n_resamples'"),
    "decide-slice-n-problems-missing": (lambda t: _decide(t, slices={"easy": {"metrics": {}, "gaps": {}}}),
                                        "slices.easy lacks the field 'n_problems'"),
    # eval --arm: a plain name under the run directory
    "eval-arm-absolute": (lambda t: _eval_arm(t, str(t / "elsewhere")), "--arm"),
    "eval-arm-dotdot": (lambda t: _eval_arm(t, "../../x"), "--arm"),
    "eval-arm-parent": (lambda t: _eval_arm(t, ".."), "--arm"),
    "eval-arm-dot": (lambda t: _eval_arm(t, "."), "--arm"),
    "eval-arm-empty": (lambda t: _eval_arm(t, ""), "--arm"),
    "eval-arm-separator": (lambda t: _eval_arm(t, "a/b"), "--arm"),
    # check: values that would only fail later are refused by check
    "check-memory-huge": (lambda t: _check(t, **{"^memory.mb EQ 1024": "memory_mb = 99999999999999999"}),
                          "diagnostics.memory_mb"),
    "check-resamples-huge": (
        lambda t: _check(t, **{"^bootstrap.resamples EQ 10000": "bootstrap_resamples = 10000000000"}),
        "diagnostics.bootstrap_resamples"),
    "check-timeout-below-floor": (lambda t: _check(t, **{"^timeout.s EQ .*$": "timeout_s = 0.001"}),
                                  "diagnostics.timeout_s"),
    "check-diagnostics-seed-negative": (lambda t: _check(t, **{"^seed EQ 0$": "seed = -1"}), "diagnostics.seed"),
    "check-pool-seed-negative": (lambda t: _check(t, **{r"^\[pool\]": "[pool]\nseed = -1"}), "pool.seed"),
    "check-ssd-seed-negative": (lambda t: _check(t, **{r"^\[ssd\]": "[ssd]\nseed = -1"}), "ssd.seed"),
    "check-train-seed-negative": (lambda t: _check(t, **{r"^\[train\]": "[train]\nseed = -1"}), "train.seed"),
    "check-mbpp-seed-negative": (lambda t: _check(t, **{"^mbpp.seed EQ 0": "mbpp_seed = -1"}), "heldout.mbpp_seed"),
    "check-budget-inf": (lambda t: _check(t, **{"^gpu.hours.training EQ 4.0": "gpu_hours_training = inf"}),
                         "budget.gpu_hours_training"),
    "check-budget-nan": (lambda t: _check(t, **{"^gpu.hours.eval EQ 2.0": "gpu_hours_eval = nan"}),
                         "budget.gpu_hours_eval"),
    "check-floor-above-ceiling": (lambda t: _check(t, **{"^floor.pp EQ 5.0": "floor_pp = 99.0"}), "floor_pp"),
    "check-floor-equals-ceiling": (lambda t: _check(t, **{"^floor.pp EQ 5.0": "floor_pp = 95.0"}), "floor_pp"),
    "check-parallel-huge": (lambda t: _check(t, **{r"^options EQ .*$": "options = { parallel = 100000000 }"}),
                            "generation.options.parallel"),
    "check-batch-huge": (lambda t: _check(t, **{r"^options EQ .*$": "options = { batch = 1000000 }"}),
                         "generation.options.batch"),
}

METRICS_OK = {"ks": [1, 4, 8, 16], "n_problems": 1, "n_resamples": 100, "status_counts": {"passed": 1},
              "metrics": {}, "gaps": {}, "slices": {}, "per_problem": {}, "provenance": {}}


def _decide(tmp: Path, metrics: object = None, drop: str | None = None, **fields: object) -> list[str]:
    if isinstance(metrics, Path):
        path = metrics
    else:
        doc = METRICS_OK | ({"metrics": metrics} if metrics is not None else {}) | fields
        doc.pop(drop, None)
        path = _write(tmp, "metrics.json", json.dumps(doc))
    return ["decide", str(REPO / "examples" / "quickstart.toml"), "--metrics", str(path), "--out", str(tmp)]


def _eval_arm(tmp: Path, arm: str) -> list[str]:
    return ["eval", str(REPO / "examples" / "quickstart.toml"), "--arm", arm, "--run-dir", str(tmp / "run")]


def _check(tmp: Path, **replace: str) -> list[str]:
    return ["check", str(_spec(tmp, **replace))]


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


def test_an_ngram_longer_than_every_held_out_prompt_is_said_not_reported_clean(tmp_path, caplog):
    from selfdistill.tasks.contamination import check_contamination
    from selfdistill.tasks.registry import load_task

    pool, heldout = load_task(str(_tasks(tmp_path))), load_task(str(_tasks(tmp_path, "b")))
    with caplog.at_level("WARNING"):
        check_contamination(pool, heldout, n=100_000_000)
    assert "longer than every held-out prompt" in caplog.text and "the longest has 5 words" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        check_contamination(pool, heldout, n=2)
    assert "longer than every" not in caplog.text
