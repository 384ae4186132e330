"""The score stage as a library: resume semantics and provenance."""

import json

from selfdistill.execute.outcome import Status
from selfdistill.score import Sample, ScoreConfig, score
from selfdistill.tasks.humaneval import load_humaneval


def test_rerun_retries_infra_and_the_new_record_supersedes(tmp_path):
    problems = load_humaneval()[:3]
    samples = tmp_path / "s.jsonl"
    samples.write_text("".join(json.dumps({"task_id": p.task_id, "completion": p.canonical_solution}) + "\n" for p in problems))
    out = tmp_path / "o"
    out.mkdir()
    first = problems[0]
    faulted = Sample(first.task_id, 0, first.program(first.canonical_solution))
    (out / "outcomes.jsonl").write_text(json.dumps({
        "task_id": first.task_id, "sample_idx": 0, "status": Status.INFRA.value, "detail": "worker died",
        "duration_s": 0.0, "program_sha256": faulted.program_sha256}) + "\n")

    metrics = score(problems, samples, out, ScoreConfig(k=(1,), bootstrap_resamples=200))

    lines = [json.loads(x) for x in (out / "outcomes.jsonl").read_text().splitlines()]
    assert [x["status"] for x in lines if x["task_id"] == first.task_id] == ["infra", "passed"]
    assert len(lines) == 4
    assert metrics["status_counts"]["infra"] == 0 and metrics["status_counts"]["passed"] == 3
    assert metrics["provenance"]["infra_retried"] == 1
    assert metrics["metrics"]["pass@1"]["value"] == 1.0


def test_finished_outcomes_are_not_run_again(tmp_path):
    problems = load_humaneval()[:2]
    samples = tmp_path / "s.jsonl"
    samples.write_text("".join(json.dumps({"task_id": p.task_id, "completion": "    return None\n"}) + "\n" for p in problems))
    out = tmp_path / "o"
    score(problems, samples, out, ScoreConfig(k=(1,), bootstrap_resamples=200))
    before = (out / "outcomes.jsonl").read_text()
    again = score(problems, samples, out, ScoreConfig(k=(1,), bootstrap_resamples=200))
    assert (out / "outcomes.jsonl").read_text() == before
    assert again["provenance"]["sandbox_isolation"].startswith("resumed")
    assert again["metrics"]["pass@1"]["value"] == 0.0
