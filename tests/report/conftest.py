import pytest

from tests.report.fixtures import write_precondition_only, write_run


@pytest.fixture(scope="session")
def full_run(tmp_path_factory):
    """A finished round with both arms; tests that change files copy it first."""
    return write_run(tmp_path_factory.mktemp("full") / "run")


@pytest.fixture(scope="session")
def pre_only(tmp_path_factory):
    return write_precondition_only(tmp_path_factory.mktemp("pre") / "run")
