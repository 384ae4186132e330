"""The eval stage with a fake backend: records, live scoring, resume after a crash, settings guard."""

import json

import pytest

from selfdistill.checks import check_spec
from selfdistill.errors import DataError
from selfdistill.evaluate import EvalConfig, evaluate
from selfdistill.generate import backends
from selfdistill.generate.base import GenResult
from selfdistill.generate.params import sample_seed
from tests.eval_fixtures import NullProgress, make_spec


class FakeBackend:
    """Answers like a chat model: the canonical solution in a fenced block for even samples, a wrong one for odd."""

    name = "fake"

    def __init__(self, problems, fail_after=None):
        self.problems = {p.task_id: p for p in problems}
        self.fail_after = fail_after
        self.requests = []

    def generate(self, requests, params):
        for i, r in enumerate(requests):
            if self.fail_after is not None and i == self.fail_after:
                raise RuntimeError("killed")
            self.requests.append(r)
            p = self.problems[r.task_id]
            body = p.canonical_solution if r.sample_idx % 2 == 0 else "    return None\n"
            text = f"Here you go:\n```python\n{p.prompt}{body}```\n"
            yield GenResult(r.task_id, r.sample_idx, r.seed, text, "stop", 42, 100)

    def describe(self):
        return {"engine": "fake"}

    def close(self):
        pass


@pytest.fixture
def fake(monkeypatch):
    holder = {}

    def load(name, model, *, chat, options=None):
        return holder["backend"]

    monkeypatch.setattr(backends, "load_backend", load)
    return holder


def run(spec_path, run_dir, limit=3):
    report = check_spec(spec_path)
    return evaluate(EvalConfig.from_spec(report.spec), report.heldout, run_dir, "base", limit, NullProgress(),
                    run_spec=report.spec)


def test_eval_writes_samples_outcomes_and_metrics(tmp_path, fake):
    report = check_spec(make_spec(tmp_path))
    fake["backend"] = FakeBackend(report.heldout.problems)
    metrics = run(make_spec(tmp_path), tmp_path / "run")
    arm = tmp_path / "run" / "base"
    samples = [json.loads(x) for x in (arm / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 12
    s = samples[0]
    assert s["seed"] == sample_seed(0, s["task_id"], s["sample_idx"])
    assert s["raw"].startswith("Here you go") and s["extraction"] != "none"
    assert {"program", "finish_reason", "completion_tokens", "prompt_tokens"} <= set(s)
    assert len((arm / "outcomes.jsonl").read_text().splitlines()) == 12
    assert metrics["metrics"]["pass@1"]["value"] == pytest.approx(0.5)
    assert metrics["metrics"]["pass@4"]["value"] == pytest.approx(1.0)
    assert metrics["generation"]["comparable"] is False and metrics["generation"]["limit"] == 3
    assert metrics["provenance"]["comparable"] is False
    assert metrics["generation"]["no_code_share"] == 0.0
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["spec"]["generation"]["temperature"] == 0.8


def killed_after_five_samples(tmp_path, fake):
    """An eval run killed after its fifth sample: (spec path, problems, arm dir)."""
    spec = make_spec(tmp_path)
    problems = check_spec(spec).heldout.problems
    fake["backend"] = FakeBackend(problems, fail_after=5)
    with pytest.raises(RuntimeError, match="killed"):
        run(spec, tmp_path / "run")
    return spec, problems, tmp_path / "run" / "base"


def test_crash_mid_generation_then_resume_generates_only_what_is_missing(tmp_path, fake):
    spec, problems, arm = killed_after_five_samples(tmp_path, fake)
    assert len((arm / "samples.jsonl").read_text().splitlines()) == 5
    assert not (arm / "metrics.json").exists()

    fake["backend"] = second = FakeBackend(problems)
    metrics = run(spec, tmp_path / "run")
    assert len(second.requests) == 7
    samples = [json.loads(x) for x in (arm / "samples.jsonl").read_text().splitlines()]
    keys = [(s["task_id"], s["sample_idx"]) for s in samples]
    assert len(keys) == len(set(keys)) == 12
    outcomes = [json.loads(x) for x in (arm / "outcomes.jsonl").read_text().splitlines()]
    assert len({(o["task_id"], o["sample_idx"]) for o in outcomes}) == len(outcomes) == 12
    assert metrics["metrics"]["pass@1"]["value"] == pytest.approx(0.5)


def test_other_sampling_settings_are_refused_for_the_same_arm(tmp_path, fake):
    problems = check_spec(make_spec(tmp_path)).heldout.problems
    fake["backend"] = FakeBackend(problems)
    run(make_spec(tmp_path), tmp_path / "run")
    with pytest.raises(DataError, match="sampling"):
        run(make_spec(tmp_path, temperature=1.1), tmp_path / "run")


def test_a_resume_under_other_sandbox_limits_is_refused_before_any_sample_is_drawn(tmp_path, fake):
    spec, problems, arm = killed_after_five_samples(tmp_path, fake)
    outcomes_before = (arm / "outcomes.jsonl").read_text()
    spec.write_text(spec.read_text().replace("timeout_s = 10.0 ", "timeout_s = 3.5 ", 1))
    fake["backend"] = second = FakeBackend(problems)
    with pytest.raises(DataError, match="sandbox settings"):
        run(spec, tmp_path / "run")
    assert second.requests == [] and (arm / "outcomes.jsonl").read_text() == outcomes_before
    sandbox = json.loads((arm / "sandbox.json").read_text())
    assert sandbox["isolation"], "the live scorer records the isolation it achieved"
