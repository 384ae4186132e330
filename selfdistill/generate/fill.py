"""Generate what is missing: the one resumable sampling loop of the eval stage, the T_train sampling and the
safety/refusal probe completions.

Each planned sample is a GenRequest with its own seed (derived from the run seed, the id and sample_idx), so
the samples a resumed run draws are exactly those a full run would have drawn; the ones already in the JSONL
file (by (id, sample_idx)) are skipped. The backend is loaded only when something is missing, and closed
whatever happens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from selfdistill.generate.base import GenRequest, GenResult
from selfdistill.generate.params import SamplingParams
from selfdistill.rundir import JsonlStream

Sink = Callable[[dict], None]


def fill_missing(path: Path, requests: Iterable[GenRequest], params: SamplingParams, load: Callable[[], object],
                 make_record: Callable[[GenResult], dict], *, id_field: str = "task_id", progress=None,
                 started: Callable[[object], AbstractContextManager[Sink | None]] | None = None) -> list[dict]:
    """Append to `path` a record (`make_record(result)`) for every planned request not already there; return
    all its records. `load()` opens the backend; `started(backend)` (a context manager around generation) may
    yield a sink that sees every appended record (the live scorer); `progress` gets start/generated."""
    requests = list(requests)
    with JsonlStream(path) as stream:
        done = {(r[id_field], r["sample_idx"]) for r in stream.records}
        todo = [q for q in requests if (q.task_id, q.sample_idx) not in done]
        if progress is not None:
            progress.start(total=len(requests), done=len(done))
        if todo:
            backend = load()
            try:
                with (started(backend) if started else nullcontext()) as sink:
                    for result in backend.generate(todo, params):
                        record = make_record(result)
                        stream.append(record)
                        if sink is not None:
                            sink(record)
                        if progress is not None:
                            progress.generated(record)
            finally:
                backend.close()
        return list(stream.records)
