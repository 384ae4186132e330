"""The score stage as a library: resume semantics and provenance."""

import json

import pytest

from selfdistill.errors import DataError, SandboxError
from selfdistill.execute.outcome import Status
from selfdistill.score import Sample, ScoreConfig, score
from selfdistill.tasks.humaneval import load_humaneval


def test_rerun_retries_infra_and_the_new_record_supersedes(tmp_path):
    problems = load_humaneval()[:3]
    samples = tmp_path / "s.jsonl"
    samples.write_text("".join(json.dumps({"task_id": p.task_id, "completion": p.canonical_solution}) + "\n"
                               for p in problems))
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
    samples.write_text("".join(json.dumps({"task_id": p.task_id, "completion": "    return None\n"}) + "\n"
                               for p in problems))
    out = tmp_path / "o"
    score(problems, samples, out, ScoreConfig(k=(1,), bootstrap_resamples=200))
    before = (out / "outcomes.jsonl").read_text()
    again = score(problems, samples, out, ScoreConfig(k=(1,), bootstrap_resamples=200))
    assert (out / "outcomes.jsonl").read_text() == before
    first = json.loads((out / "metrics.json").read_text())  # the no-op rerun rewrote it
    assert isinstance(again["provenance"]["sandbox_isolation"], dict)  # kept from the invocation that ran them
    assert again["provenance"]["sandbox_isolation"]["network"] in ("netns", "none")
    assert first["provenance"]["sandbox_isolation"] == again["provenance"]["sandbox_isolation"]
    assert again["metrics"]["pass@1"]["value"] == 0.0


@pytest.mark.parametrize("change", [{"timeout_s": 3.0}, {"memory_mb": 512}])
def test_resume_under_other_sandbox_settings_is_refused(tmp_path, change):
    problems = load_humaneval()[:2]
    samples = tmp_path / "s.jsonl"
    samples.write_text("".join(json.dumps({"task_id": p.task_id, "completion": "    return None\n"}) + "\n"
                               for p in problems[:1]))
    out = tmp_path / "o"
    score(problems, samples, out, ScoreConfig(k=(1,), bootstrap_resamples=200))
    before = (out / "outcomes.jsonl").read_text()
    with pytest.raises(DataError, match=f"other sandbox settings.*{next(iter(change))}"):
        score(problems, samples, out, ScoreConfig(k=(1,), bootstrap_resamples=200, **change))
    assert (out / "outcomes.jsonl").read_text() == before
    score(problems, samples, out, ScoreConfig(k=(1,), bootstrap_resamples=200, workers=2))  # workers may change


def test_lone_surrogates_in_completions_are_scored_and_stored_losslessly(tmp_path):
    """Model text can hold lone surrogates: the program hashes, its error detail is stored, resume matches."""
    problems = load_humaneval()[:1]
    p = problems[0]
    samples = tmp_path / "s.jsonl"
    completions = ["    raise ValueError(chr(0xD800) + ' bad')\n", "    return None  # \udfff\n"]
    samples.write_text("".join(json.dumps({"task_id": p.task_id, "completion": c}) + "\n" for c in completions))
    out = tmp_path / "o"
    metrics = score(problems, samples, out, ScoreConfig(k=(1,), bootstrap_resamples=200))
    assert metrics["status_counts"]["infra"] == 0
    records = sorted((json.loads(x) for x in (out / "outcomes.jsonl").read_text(encoding="utf-8").splitlines()),
                     key=lambda r: r["sample_idx"])
    assert [r["status"] for r in records] == ["error", "error"]  # the second does not even compile
    assert "ValueError: \ud800 bad" in records[0]["detail"]  # the exception message, surrogate kept
    before = (out / "outcomes.jsonl").read_bytes()
    score(problems, samples, out, ScoreConfig(k=(1,), bootstrap_resamples=200))  # hashes match: nothing rerun
    assert (out / "outcomes.jsonl").read_bytes() == before


def test_a_run_where_every_program_is_infra_fails_and_writes_no_metrics(tmp_path, monkeypatch):
    from selfdistill import score as score_mod
    from selfdistill.execute.outcome import Outcome

    def broken(todo, problems, cfg, stream, progress=None, record_dir=None):
        for s in todo:
            stream.append(score_mod.outcome_record(s, Outcome(s.key, Status.INFRA, "worker died")))

    monkeypatch.setattr(score_mod, "run_programs", broken)
    problems = load_humaneval()[:2]
    samples = tmp_path / "s.jsonl"
    samples.write_text("".join(json.dumps({"task_id": p.task_id, "completion": "    return 1\n"}) + "\n"
                               for p in problems))
    with pytest.raises(SandboxError, match="every one of the 2 programs ended as infra"):
        score(problems, samples, tmp_path / "o", ScoreConfig(k=(1,), bootstrap_resamples=200))
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_lone_surrogates_end_to_end_through_the_score_command(tmp_path, capsys):
    from selfdistill import cli

    samples = tmp_path / "s.jsonl"
    lines = [{"task_id": "HumanEval/0", "completion": "    raise ValueError(chr(0xD800) + ' and \\udfff')\n"},
             {"task_id": "HumanEval/0", "completion": "    return True  # \ud800\n"}]
    samples.write_text("".join(json.dumps(x) + "\n" for x in lines))  # \ud800 escapes, as json writes them
    out = tmp_path / "o"
    argv = ["score", "--task", "humaneval", "--samples", str(samples), "--out", str(out), "--k", "1", "--resamples",
            "100"]
    assert cli.main(argv) == 0
    records = [json.loads(x) for x in (out / "outcomes.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(r["status"] for r in records) == ["error", "error"]
    assert any("\ud800 and \udfff" in r["detail"] for r in records)  # lone surrogates, kept as they were
    assert cli.main(argv) == 0  # the rerun matches every program by its hash: nothing is run again
    assert len((out / "outcomes.jsonl").read_text().splitlines()) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_reference_timeouts_cut_a_hanging_program_to_the_floor_and_are_recorded(tmp_path):
    problems = load_humaneval()[:2]
    samples = tmp_path / "s.jsonl"
    hang = "    import time\n    time.sleep(30)\n"
    samples.write_text("".join(json.dumps({"task_id": p.task_id, "completion": c}) + "\n"
                               for p in problems for c in (p.canonical_solution, hang)))
    out = tmp_path / "o"
    cfg = ScoreConfig(k=(1,), bootstrap_resamples=100, timeout_s=20.0, reference_timeouts=True, reference_floor_s=1.0)
    metrics = score(problems, samples, out, cfg)
    refs = json.loads((out / "reference_times.json").read_text())
    assert set(refs) == {p.task_id for p in problems}
    assert all(r["reference_status"] == "passed" and r["timeout_s"] == 1.0 for r in refs.values())  # the floor
    records = [json.loads(x) for x in (out / "outcomes.jsonl").read_text().splitlines()]
    assert all(r["timeout_s"] == 1.0 for r in records)
    assert sorted(r["status"] for r in records) == ["passed", "passed", "timeout", "timeout"]
    assert all("1s" in r["detail"] for r in records if r["status"] == "timeout")
    assert metrics["provenance"]["per_problem_timeouts"]["floor_s"] == 1.0
    with pytest.raises(DataError, match="other sandbox settings"):  # another floor: refused like another timeout
        score(problems, samples, out, ScoreConfig(k=(1,), bootstrap_resamples=100, timeout_s=20.0,
                                                   reference_timeouts=True, reference_floor_s=2.0))


def _hold_lock(out):
    """Hold out/LOCK_FILE the way a second process would: its own open file, flock'd exclusively."""
    import fcntl
    import os

    from selfdistill.score import LOCK_FILE

    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, b"scoring: pid 4242 on elsewhere since then\n")
    return fd


def test_a_second_score_on_a_locked_out_dir_exits_2_naming_the_holder(tmp_path, capsys):
    import os

    from selfdistill import cli

    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"task_id": "HumanEval/0", "completion": "    return None\n"}) + "\n")
    out = tmp_path / "o"
    fd = _hold_lock(out)
    try:
        code = cli.main(["score", "--task", "humaneval", "--samples", str(samples), "--out", str(out)])
    finally:
        os.close(fd)
    err = capsys.readouterr().err
    assert code == 2
    assert "in use by another selfdistill run" in err and "pid 4242 on elsewhere" in err
    assert "Traceback" not in err
    assert not (out / "outcomes.jsonl").exists() and not (out / "metrics.json").exists()  # nothing was run
    # released: the same command now scores
    assert cli.main(["score", "--task", "humaneval", "--samples", str(samples), "--out", str(out),
                     "--resamples", "200", "--workers", "1"]) == 0
    assert len((out / "outcomes.jsonl").read_text().splitlines()) == 1


def test_a_locked_eval_arm_is_refused_before_any_work(tmp_path):
    import os
    from pathlib import Path

    from selfdistill.evaluate import EvalConfig, evaluate
    from selfdistill.spec import load_spec

    spec = load_spec(Path(__file__).resolve().parents[1] / "examples" / "quickstart.toml")
    fd = _hold_lock(tmp_path / "run" / "base")
    try:
        with pytest.raises(DataError, match="in use by another selfdistill run"):
            evaluate(EvalConfig.from_spec(spec), None, tmp_path / "run", "base", None, None, run_spec=spec)
    finally:
        os.close(fd)
    for arm in ("", "..", "../x", "/abs", "a/b"):
        with pytest.raises(DataError, match="plain name"):
            evaluate(EvalConfig.from_spec(spec), None, tmp_path / "run", arm, None, None, run_spec=spec)


def test_the_lock_is_reentrant_in_one_process_and_released_after(tmp_path):
    from selfdistill.score import exclusive_lock

    with exclusive_lock(tmp_path, "outer"), exclusive_lock(tmp_path, "inner"):  # eval's lock covers its scoring
        pass
    with exclusive_lock(tmp_path, "again"):
        pass


@pytest.mark.parametrize("bad", [
    {"bootstrap_resamples": 1_000_001}, {"memory_mb": 1_048_577}, {"timeout_s": 0.01}, {"seed": -1},
])
def test_score_config_bounds_are_checked_before_any_work(bad):
    with pytest.raises(DataError, match=next(iter(bad))):
        ScoreConfig(**bad)


def test_a_boolean_sample_idx_is_not_an_index(tmp_path):
    from selfdistill.score import read_samples

    problems = {p.task_id: p for p in load_humaneval()[:1]}
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({"task_id": "HumanEval/0", "completion": "x", "sample_idx": True}) + "\n")
    with pytest.raises(DataError, match="s.jsonl:1: sample_idx True"):
        read_samples(path, problems)
