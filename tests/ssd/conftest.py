"""The fake engine and the fake training job, registered for one test like the real ones are."""

import pytest

from selfdistill.generate import backends
from selfdistill.spec import load_spec
from selfdistill.train import jobs
from tests.ssd.records import QUICKSTART


class NullProgress:
    """A progress bar that shows nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


@pytest.fixture
def fakes(monkeypatch):
    """generation.backend = "hf" loads tests.fakes.FakeBackend; an "sft" job runs tests.fakes.main in this
    process. Returns the progress factory the stages take."""
    monkeypatch.setitem(backends.BACKENDS, "hf", "tests.fakes:FakeBackend")
    monkeypatch.setitem(backends.ENGINES, "hf", ("json", "hf"))
    monkeypatch.setitem(jobs.RUNNERS, "sft", jobs.JobRunner("tests.fakes", own_process=False))
    return NullProgress


@pytest.fixture
def spec():
    """The quickstart spec, as shipped."""
    return load_spec(QUICKSTART)
