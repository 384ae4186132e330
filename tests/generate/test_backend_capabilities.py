"""What a backend can do for SSD, stated in the backends registry: serve local (fine-tuned) weights, and on
which device its stages run (the cost ledger)."""

import pytest

from selfdistill.errors import SpecError
from selfdistill.generate.backends import BACKENDS, LOCAL_WEIGHTS, require_local_weights, stage_device


def test_every_backend_states_whether_it_serves_local_weights():
    assert set(LOCAL_WEIGHTS) == set(BACKENDS)


def test_a_remote_endpoint_is_refused_for_ssd_naming_the_backends_that_can_serve_it():
    refused = r"backend = 'openai'.*cannot serve the distilled model; use llamacpp, hf, vllm"
    with pytest.raises(SpecError, match=refused):
        require_local_weights("openai")
    for name in ("llamacpp", "hf", "vllm"):
        require_local_weights(name)


def test_llamacpp_stages_run_on_the_cpu_and_a_cpu_option_is_followed():
    assert stage_device("llamacpp", {"n_threads": 2}) == ("cpu", 1)
    assert stage_device("hf", {"device": "cpu"}) == ("cpu", 1)
