"""The shared pool for sandbox tests.

A pool starts in ~0.2 s, so each test module shares one single-worker pool (jobs then run on the same
slot, which lets a test look at what the previous job left behind). Tests that kill workers or set
environment variables start their own.
"""

from __future__ import annotations

import pytest

from selfdistill.execute.pool import SandboxPool


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(workers=1) as p:
        yield p
