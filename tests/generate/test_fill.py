"""generate/fill.py: the one resumable "generate what is missing" loop (eval stage, T_train sampling, probes)."""

from contextlib import contextmanager

import pytest

from selfdistill.generate.base import GenRequest, GenResult
from selfdistill.generate.fill import fill_missing
from selfdistill.generate.params import SamplingParams, sample_seed

PARAMS = SamplingParams(temperature=1.0, n=2, seed=7)


class FakeBackend:
    def __init__(self, fail_after=None):
        self.asked, self.closed, self.fail_after = [], False, fail_after

    def generate(self, requests, params):
        for i, q in enumerate(requests):
            if self.fail_after is not None and i == self.fail_after:
                raise RuntimeError("killed")
            self.asked.append((q.task_id, q.sample_idx, q.seed))
            yield GenResult(q.task_id, q.sample_idx, q.seed, f"{q.task_id}/{q.sample_idx}", "stop", 3, 5)

    def close(self):
        self.closed = True


def requests():
    return [GenRequest(t, i, "p", sample_seed(PARAMS.seed, t, i)) for t in ("a", "b") for i in range(PARAMS.n)]


def record(res):
    return {"task_id": res.task_id, "sample_idx": res.sample_idx, "seed": res.seed, "raw": res.text}


def test_a_killed_fill_resumes_with_exactly_the_missing_samples_and_the_same_records(tmp_path):
    full = fill_missing(tmp_path / "full.jsonl", requests(), PARAMS, FakeBackend, record)
    first = FakeBackend(fail_after=3)
    with pytest.raises(RuntimeError):
        fill_missing(tmp_path / "s.jsonl", requests(), PARAMS, lambda: first, record)
    assert first.closed and len(first.asked) == 3
    second = FakeBackend()
    resumed = fill_missing(tmp_path / "s.jsonl", requests(), PARAMS, lambda: second, record)
    assert second.asked == [("b", 1, sample_seed(7, "b", 1))]  # only the missing one, with its own seed
    assert resumed == full and len(full) == 4


def test_nothing_missing_loads_no_backend_and_progress_and_sink_see_every_new_record(tmp_path):
    seen, events = [], []

    class Progress:
        def start(self, total, done):
            events.append(("start", total, done))

        def generated(self, rec):
            events.append(("generated", rec["task_id"], rec["sample_idx"]))

    @contextmanager
    def started(backend):
        events.append(("started",))
        yield seen.append
        events.append(("ended",))

    out = fill_missing(tmp_path / "s.jsonl", requests(), PARAMS, FakeBackend, record, progress=Progress(),
                       started=started)
    assert seen == out and events[0] == ("start", 4, 0) and events[1] == ("started",) and events[-1] == ("ended",)
    assert [e for e in events if e[0] == "generated"] == [("generated", r["task_id"], r["sample_idx"]) for r in out]

    def no_backend():
        raise AssertionError("loaded a backend with nothing missing")

    events.clear()
    again = fill_missing(tmp_path / "s.jsonl", requests(), PARAMS, no_backend, record, progress=Progress(),
                         started=started)
    assert again == out and events == [("start", 4, 4)]


def test_the_id_field_names_the_done_key(tmp_path):
    def probe_record(res):
        return {"probe_id": res.task_id, "sample_idx": res.sample_idx, "seed": res.seed}

    fill_missing(tmp_path / "p.jsonl", requests()[:2], PARAMS, FakeBackend, probe_record, id_field="probe_id")
    backend = FakeBackend()
    out = fill_missing(tmp_path / "p.jsonl", requests(), PARAMS, lambda: backend, probe_record, id_field="probe_id")
    assert [(a, i) for a, i, _ in backend.asked] == [("b", 0), ("b", 1)] and len(out) == 4
