"""Tiny models for backend tests, built once per session in a temp dir (no hub, no downloads).

Each fixture skips when the package that writes its format is missing, so the core suite still runs
without the `hf` / `llamacpp` extras.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.generate.tiny_models import write_tiny_gguf, write_tiny_hf


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory) -> Path:
    """A llama-architecture GGUF with a chat template in its metadata."""
    pytest.importorskip("gguf")
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf")


@pytest.fixture(scope="session")
def tiny_gguf_no_template(tmp_path_factory) -> Path:
    pytest.importorskip("gguf")
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf-plain") / "tiny-plain.gguf", chat_template=None)


@pytest.fixture(scope="session")
def tiny_hf(tmp_path_factory) -> Path:
    """A Qwen2 model directory (save_pretrained) with a byte-level BPE tokenizer and a chat template."""
    pytest.importorskip("transformers")
    return write_tiny_hf(tmp_path_factory.mktemp("hf") / "tiny-qwen2")


@pytest.fixture(scope="session")
def tiny_hf_no_template(tiny_hf: Path, tmp_path_factory) -> Path:
    """The same model with its chat template removed."""
    plain = tmp_path_factory.mktemp("hf-plain") / "tiny-qwen2-plain"
    shutil.copytree(tiny_hf, plain)
    (plain / "chat_template.jinja").unlink()
    return plain
