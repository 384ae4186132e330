"""Backends, loaded lazily by name from a plain dict (core modules never import torch or an engine).

    load_backend("llamacpp", model="/path/model.gguf", chat=True, options={"n_threads": 2})

Each backend class takes `(model: str, *, chat: bool, **options)` and refuses unknown options with a
`SpecError` naming them. A missing engine package is a `BackendUnavailable` naming the extra to install.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from selfdistill.errors import BackendUnavailable, SpecError
from selfdistill.generate.base import Backend

BACKENDS: dict[str, str] = {
    "llamacpp": "selfdistill.generate.llamacpp:LlamaCppBackend",
    "hf": "selfdistill.generate.hf:HFBackend",
    "vllm": "selfdistill.generate.vllm_backend:VLLMBackend",
    "openai": "selfdistill.generate.openai_backend:OpenAIBackend",
}
# backend -> (the import that proves the engine is there, the extra that installs it)
ENGINES: dict[str, tuple[str, str]] = {
    "llamacpp": ("llama_cpp", "llamacpp"),
    "hf": ("transformers", "hf"),
    "vllm": ("vllm", "vllm"),
    "openai": ("openai", "openai"),
}

# backend -> loads weights from this machine's disk, so it can serve a fine-tuned checkpoint (SSD needs that)
LOCAL_WEIGHTS: dict[str, bool] = {"llamacpp": True, "hf": True, "vllm": True, "openai": False}
CPU_ONLY = frozenset({"llamacpp"})  # llama.cpp here is built for the CPU


def require_local_weights(name: str) -> None:
    """SSD fine-tunes local weights and evaluates the result: a backend that cannot load them is refused."""
    if not LOCAL_WEIGHTS.get(name, False):
        local = ", ".join(n for n, ok in LOCAL_WEIGHTS.items() if ok)
        raise SpecError(
            f"error: generation.backend = {name!r}: SSD fine-tunes local weights, and a remote endpoint cannot "
            f"serve the distilled model; use {local} with model.path naming local weights"
        )


def stage_device(name: str, options: Mapping[str, Any]) -> tuple[str, int]:
    """Where a generation stage on backend `name` runs, for the cost ledger: ("cpu", 1), or ("cuda", devices)
    when CUDA is visible and the options do not ask for the CPU (tensor x data parallel sizes)."""
    if name in CPU_ONLY:
        return "cpu", 1
    try:
        import torch

        if torch.cuda.is_available() and options.get("device", "auto") != "cpu":
            tp = int(options.get("tensor_parallel_size", 1))
            dp = int(options.get("data_parallel_size", 1))
            return "cuda", max(1, tp * dp)
    except ImportError:
        pass
    return "cpu", 1


def require_engine(name: str) -> None:
    module, extra = ENGINES[name]
    try:
        importlib.import_module(module)
    except ImportError as exc:
        hint = " (scripts/install.sh builds it portably)" if name == "llamacpp" else ""
        raise BackendUnavailable(
            f"error: backend {name!r} needs the {module} package ({exc.msg}); "
            f"`pip install 'selfdistill[{extra}]'`{hint}, or choose another generation.backend"
        ) from None


def load_backend(name: str, model: str, *, chat: bool, options: Mapping[str, Any] | None = None) -> Backend:
    if name not in BACKENDS:
        raise SpecError(f"error: generation.backend = {name!r} is not a backend; choose one of {', '.join(BACKENDS)}")
    require_engine(name)
    module_name, cls_name = BACKENDS[name].split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls(model, chat=chat, **dict(options or {}))
