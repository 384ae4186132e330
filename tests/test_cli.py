"""The CLI end to end, in subprocesses: exit codes, files written, resume after kill -9."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from selfdistill.tasks.humaneval import load_humaneval

QUICKSTART = Path(__file__).parents[1] / "examples" / "quickstart.toml"


def cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "selfdistill", *args], capture_output=True, text=True, **kw)


def write_samples(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def problems():
    return load_humaneval()


@pytest.mark.slow  # whole dataset (164 programs) through a CLI subprocess; test_score_k_and_wrong_answers stays fast
def test_canonical_solutions_score_pass1_of_one_on_all_164(tmp_path, problems):
    samples = write_samples(tmp_path / "canon.jsonl",
                            [{"task_id": p.task_id, "completion": p.canonical_solution} for p in problems])
    r = cli("score", "--task", "humaneval", "--samples", str(samples), "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["metrics"]["pass@1"]["value"] == 1.0
    assert metrics["metrics"]["pass@1"]["n_problems"] == 164
    assert metrics["status_counts"]["passed"] == 164
    assert len((tmp_path / "out" / "outcomes.jsonl").read_text().splitlines()) == 164
    assert "pass@1" in r.stdout and "passed 164" in r.stdout


def test_score_k_and_wrong_answers(tmp_path, problems):
    rows = []
    for p in problems[:20]:
        rows += [{"task_id": p.task_id, "completion": p.canonical_solution}] * 3
        rows += [{"task_id": p.task_id, "completion": "    return None\n"}] * 7
    samples = write_samples(tmp_path / "mix.jsonl", rows)
    r = cli("score", "--task", "humaneval", "--samples", str(samples), "--k", "1,10", "--out", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["ks"] == [1, 10]
    assert m["metrics"]["pass@1"]["value"] == pytest.approx(0.3)
    assert m["metrics"]["pass@10"]["value"] == pytest.approx(1.0)
    assert problems[20].task_id in m["provenance"]["problems_without_samples"]
    assert len(m["provenance"]["problems_without_samples"]) == 144


def test_k_larger_than_n_is_exit_2(tmp_path, problems):
    samples = write_samples(tmp_path / "s.jsonl", [{"task_id": problems[0].task_id, "completion": "    return 1\n"}])
    r = cli("score", "--task", "humaneval", "--samples", str(samples), "--k", "1,10", "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert "pass@10" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "content, expected",
    [
        ('{"task_id": "HumanEval/0"}\n', 'needs "completion"'),
        ('{"task_id": "Nope/1", "completion": "x"}\n', "task ids that the task does not have (Nope/1)"),
        ("not json\n", "s.jsonl:1: not valid JSON"),
        ("", "holds no samples"),
    ],
)
def test_bad_samples_are_exit_2_with_a_clear_message(tmp_path, content, expected):
    (tmp_path / "s.jsonl").write_text(content)
    r = cli("score", "--task", "humaneval", "--samples", str(tmp_path / "s.jsonl"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert expected in r.stderr
    assert "Traceback" not in r.stderr


def test_missing_samples_file_and_task_file(tmp_path):
    r = cli("score", "--task", "humaneval", "--samples", str(tmp_path / "absent.jsonl"))
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = cli("score", "--task", str(tmp_path / "nope.jsonl"), "--samples", str(tmp_path / "absent.jsonl"))
    assert r.returncode == 2 and "nope.jsonl" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow  # kill -9 of a scoring CLI mid-run, end to end
def test_kill_mid_score_then_resume_loses_and_duplicates_nothing(tmp_path, problems):
    slow = "\nimport time\ntime.sleep(0.05)\n"  # module level: runs once per program
    rows = [{"task_id": p.task_id, "completion": p.canonical_solution + slow} for p in problems] * 2
    samples = write_samples(tmp_path / "s.jsonl", rows)
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "selfdistill", "score", "--task", "humaneval", "--samples", str(samples),
           "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    outcomes = out / "outcomes.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not outcomes.exists() or len(outcomes.read_bytes().splitlines()) < 40):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(outcomes.read_bytes().splitlines())
    assert 40 <= done_before < len(rows), "the kill must land mid-stage"
    assert not (out / "metrics.json").exists()

    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in outcomes.read_text().splitlines()]
    keys = [(x["task_id"], x["sample_idx"]) for x in records]
    assert len(keys) == len(set(keys)) == len(rows)
    m = json.loads((out / "metrics.json").read_text())
    assert m["metrics"]["pass@1"]["value"] == 1.0


def test_resume_refuses_a_different_samples_file(tmp_path, problems):
    out = tmp_path / "o"
    a = write_samples(tmp_path / "a.jsonl",
                      [{"task_id": problems[0].task_id, "completion": problems[0].canonical_solution}])
    assert cli("score", "--task", "humaneval", "--samples", str(a), "--out", str(out)).returncode == 0
    b = write_samples(tmp_path / "b.jsonl", [{"task_id": problems[0].task_id, "completion": "    return 0\n"}])
    r = cli("score", "--task", "humaneval", "--samples", str(b), "--out", str(out))
    assert r.returncode == 2 and "does not match these samples" in r.stderr


def test_check_exit_codes(tmp_path):
    assert cli("check", str(QUICKSTART)).returncode == 0
    (tmp_path / "bad.toml").write_text("[model]\nname = 'x'\n")
    r = cli("check", str(tmp_path / "bad.toml"))
    assert r.returncode == 2
    assert "failure_cost.rollback" in r.stderr and "budget.team_size" in r.stderr


def write_metrics(path: Path, counts: list[tuple[int, int]], ks: list[int]) -> Path:
    """A metrics.json as `score` writes it, from (passed, samples) per problem: no sandbox run needed here."""
    from selfdistill.metrics.summary import summarize

    records = [{"task_id": f"HumanEval/{i}", "status": "passed" if j < c else "failed"}
               for i, (c, n) in enumerate(counts) for j in range(n)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summarize(records, ks, n_resamples=1000)))
    return path


def test_decide_refuses_an_incomplete_spec_and_decides_on_a_complete_one(tmp_path):
    # half the 164 problems always right, half right in 4 of 16 samples: a wide pass@1 - pass@16 gap
    metrics = write_metrics(tmp_path / "o" / "metrics.json", [(16, 16) if i % 2 else (4, 16) for i in range(164)],
                            [1, 4, 8, 16])
    out = metrics.parent
    (tmp_path / "bad.toml").write_text("[model]\nname = 'x'\n")
    r = cli("decide", str(tmp_path / "bad.toml"), "--metrics", str(metrics))
    assert r.returncode == 2 and "recommends nothing" in r.stderr
    assert not (out / "verdict.json").exists()

    r = cli("decide", str(QUICKSTART), "--metrics", str(metrics))
    assert r.returncode == 0, r.stderr
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["overall"]["kind"] == "GO-SSD"
    assert "GO-SSD" in (out / "verdict.md").read_text()


def test_decide_needs_the_specs_largest_k(tmp_path):
    metrics = write_metrics(tmp_path / "o" / "metrics.json", [(1, 1)] * 5, [1])
    r = cli("decide", str(QUICKSTART), "--metrics", str(metrics))
    assert r.returncode == 2 and "needs pass@16" in r.stderr


def test_contamination_command(tmp_path, problems):
    pool = tmp_path / "pool.jsonl"
    pool.write_text(json.dumps({"task_id": "pool/1", "prompt": problems[0].prompt, "tests": "assert True"}) + "\n")
    r = cli("contamination", "--pool", str(pool), "--heldout", "humaneval", "--out", str(tmp_path / "c.json"))
    assert r.returncode == 1
    assert problems[0].task_id in r.stdout
    assert problems[0].task_id in json.loads((tmp_path / "c.json").read_text())["contaminated_ids"]


@pytest.mark.slow  # a real llama.cpp eval through the CLI
def test_eval_then_decide_end_to_end_on_a_tiny_gguf(tmp_path):
    """The real llamacpp backend on a tiny model built here: eval writes every artifact, resumes as a
    no-op, and decide reads its metrics. The tiny model writes no code: every sample fails, honestly."""
    from tests.generate.tiny_models import write_tiny_gguf

    model = write_tiny_gguf(tmp_path / "tiny.gguf")
    text = QUICKSTART.read_text().replace('path = "embedded-default"', f'path = "{model}"')
    text = text.replace("max_new_tokens = 512", "max_new_tokens = 16").replace(
        "options = { batch = 16 }", "options = { n_ctx = 2048 }")
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    run = tmp_path / "run"
    r = cli("eval", str(spec), "--limit", "2", "--run-dir", str(run))
    assert r.returncode == 0, r.stderr
    arm = run / "base"
    samples = [json.loads(x) for x in (arm / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 32 and len({(s["task_id"], s["sample_idx"]) for s in samples}) == 32
    metrics = json.loads((arm / "metrics.json").read_text())
    assert metrics["generation"]["backend"] == "llamacpp" and metrics["generation"]["comparable"] is False
    assert metrics["status_counts"]["passed"] == 0 and sum(metrics["status_counts"].values()) == 32
    assert "NOT comparable" in r.stdout and (run / "manifest.json").exists()

    again = cli("eval", str(spec), "--limit", "2", "--run-dir", str(run))
    assert again.returncode == 0, again.stderr
    assert (arm / "samples.jsonl").read_text().count("\n") == 32

    d = cli("decide", str(spec), "--metrics", str(arm / "metrics.json"))
    assert d.returncode == 0, d.stderr
    assert "Not comparable" in d.stdout
    assert json.loads((arm / "verdict.json").read_text())["comparable"] is False


def test_eval_with_a_missing_backend_option_value_is_exit_2(tmp_path):
    text = QUICKSTART.read_text().replace('path = "embedded-default"', f'path = "{tmp_path / "absent.gguf"}"')
    (tmp_path / "spec.toml").write_text(text)
    r = cli("eval", str(tmp_path / "spec.toml"), "--limit", "1", "--run-dir", str(tmp_path / "run"))
    assert r.returncode == 2 and "model.path" in r.stderr and "Traceback" not in r.stderr
