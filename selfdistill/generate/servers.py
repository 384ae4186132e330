"""OpenAI-compatible servers' dialects: what each one needs to be sent so that it samples exactly what
selfdistill records, what it cannot honour, and how many requests it serves at once.

    dialect = detect(base_url, declared="auto")      # GET {base_url}/models (and llama.cpp's /props)
    dialect.refusals(params)                         # [] or the settings it cannot honour
    dialect.body(params)                             # the extra body (non-OpenAI fields) of every request

Per server (checked against their request models / source; llama-cpp-python against its real server in
tests/generate/test_llamacpp_server.py):
- vLLM (`owned_by: "vllm"`): top_k -1 = off, min_p, repetition_penalty 1.0 (otherwise taken from the
  model's generation_config). Order: temperature -> min-p -> top-k/top-p, so min-p AND top-p together
  would cut a different nucleus than recorded: refused. Batches requests (max_num_seqs, 256+).
- SGLang (`owned_by: "sglang"`): top_k -1 = off (0 is rejected), min_p, repetition_penalty 1.0. Its
  samplers filter top-k and top-p JOINTLY on the temperature-scaled distribution (the pytorch backend
  masks both from one cumulative sum; flashinfer's is called with filter_apply_order="joint"), so top-p's
  nucleus is not recomputed after top-k's cut: top-k with top-p is refused. Min-p is relative to the most
  likely token, which no renormalisation changes, so it agrees with the SSD order. Batches requests, up
  to `max_running_requests` (GET /get_server_info) when it reports one.
- llama.cpp's llama-server (`owned_by: "llamacpp"`): top_k 0 = off, min_p, `repeat_penalty` 1.0 (the
  key it reads), typical_p 1.0, and `samplers` = ["temperature", "top_k", "top_p", "min_p"], the SSD order
  (its own default applies temperature last). Serves `total_slots` requests at once (GET /props).
- llama-cpp-python's server (`owned_by: "me"`): top_k 0 = off (-1 fails its validation, HTTP 500 on
  every request), min_p (its default is 0.05), `repeat_penalty` 1.0 (its default 1.1; `repetition_penalty`
  is ignored), mirostat_mode 0. Its chain is fixed, top-k -> typical -> top-p -> min-p -> temperature,
  and takes no `samplers` key: with temperature != 1 (and not greedy), top-p or min-p filter a different
  distribution than the SSD order's, so that combination is refused. It serves ONE request at a time
  (a lock around the model): in-flight requests are bounded to 1 so queue time never counts as
  generation time.

A declared `server` that the server itself contradicts (its /models says otherwise) is refused.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from selfdistill.errors import SpecError
from selfdistill.generate.params import SamplingParams

log = logging.getLogger(__name__)

SERVERS = ("vllm", "sglang", "llama.cpp", "llama-cpp-python")
OWNED_BY = {"vllm": "vllm", "sglang": "sglang", "llamacpp": "llama.cpp", "me": "llama-cpp-python"}
SSD_SAMPLERS = ("temperature", "top_k", "top_p", "min_p")  # the SSD paper's order, llama-server's names
PROBE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Dialect:
    server: str  # one of SERVERS
    slots: int | None  # requests the server runs at once; None = it batches (bounded by `concurrency`)
    detected: bool  # True when the server said what it is (GET /models)

    def refusals(self, params: SamplingParams) -> list[str]:
        """The settings this server cannot honour as recorded, each with why and what to do instead."""
        if params.greedy:
            return []
        if self.server == "vllm" and params.min_p > 0 and params.top_p < 1:
            return [
                f"generation.min_p = {params.min_p} with top_p = {params.top_p}: vLLM cuts min-p BEFORE top-p, "
                "so top-p's nucleus is taken from another distribution than the SSD order's; set one of them "
                "off, or use backend 'llamacpp' / a llama.cpp server"
            ]
        if self.server == "sglang" and params.top_k > 0 and params.top_p < 1:
            return [
                f"generation.top_k = {params.top_k} with top_p = {params.top_p}: SGLang filters top-k and top-p "
                "jointly (top-p over the whole distribution, not over the top-k renormalised); set one of them "
                "off, or use a vLLM or llama.cpp server"
            ]
        if self.server == "llama-cpp-python" and params.temperature != 1 and (params.top_p < 1 or params.min_p > 0):
            return [
                f"generation.temperature = {params.temperature} with top_p = {params.top_p}, min_p = "
                f"{params.min_p}: llama-cpp-python's server applies temperature AFTER top-p/min-p and has no "
                "sampler-order setting; use backend 'llamacpp' (same GGUF, in-process, SSD order) or "
                "llama.cpp's llama-server, or set top_p = 1.0 and min_p = 0.0"
            ]
        return []

    def body(self, params: SamplingParams) -> dict[str, Any]:
        """The non-OpenAI request fields that pin every stage of this server's sampling chain."""
        if self.server in ("vllm", "sglang"):
            return {"top_k": params.top_k or -1, "min_p": params.min_p, "repetition_penalty": 1.0}
        common = {"top_k": params.top_k, "min_p": params.min_p, "repeat_penalty": 1.0}
        if self.server == "llama.cpp":
            return common | {"typical_p": 1.0, "samplers": list(SSD_SAMPLERS)}
        return common | {"mirostat_mode": 0}

    def describe(self) -> dict:
        return {"server": self.server, "server_detected": self.detected, "server_slots": self.slots}


def detect(base_url: str, declared: str = "auto", api_key: str | None = None,
           timeout_s: float = PROBE_TIMEOUT_S) -> Dialect:
    """Ask the server what it is; a declared server is checked against the answer (when there is one)."""
    if declared != "auto" and declared not in SERVERS:
        raise SpecError(
            f"error: generation.options.server = {declared!r} is not a server selfdistill speaks to; "
            f"choose auto | {' | '.join(SERVERS)}"
        )
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    models = _get_json(base_url.rstrip("/") + "/models", timeout_s, headers)
    if declared == "auto" and models is None:
        raise SpecError(
            f"error: no answer from {base_url}/models; start the server (or fix generation.options.base_url), "
            "or declare generation.options.server to skip the check"
        )
    owners = {m.get("owned_by") for m in (models or {}).get("data", []) if isinstance(m, dict)}
    found = next((OWNED_BY[o] for o in owners if o in OWNED_BY), None)
    if declared == "auto" and found is None:
        raise SpecError(
            f"error: cannot tell which server answers at {base_url} (GET /models owned_by: "
            f"{sorted(map(str, owners)) or 'no answer'}); declare it: generation.options.server = "
            f"{' | '.join(repr(s) for s in SERVERS)}"
        )
    if declared != "auto" and found is not None and found != declared:
        raise SpecError(
            f"error: generation.options.server = {declared!r} but the server at {base_url} is {found} "
            f"(GET /models owned_by); fix options.server or base_url"
        )
    server = found or declared
    return Dialect(server, _slots(server, base_url, timeout_s, headers), detected=found is not None)


def _slots(server: str, base_url: str, timeout_s: float, headers: dict) -> int | None:
    if server == "llama-cpp-python":
        return 1  # one lock around the model: requests queue
    root = base_url.rstrip("/").removesuffix("/v1")
    if server == "llama.cpp":
        slots = (_get_json(root + "/props", timeout_s, headers) or {}).get("total_slots")
        return slots if isinstance(slots, int) and slots > 0 else 1
    if server == "sglang":  # a cap on running requests, when it reports one (GET /get_server_info)
        slots = (_get_json(root + "/get_server_info", timeout_s, headers) or {}).get("max_running_requests")
        return slots if isinstance(slots, int) and slots > 0 else None
    return None  # vLLM runs up to max_num_seqs (256+) at once: `concurrency` bounds it


def _get_json(url: str, timeout_s: float, headers: dict) -> Any:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s) as response:  # noqa: S310 (the user's server)
            return json.loads(response.read().decode("utf-8", errors="replace"))
    except (OSError, ValueError, urllib.error.URLError) as exc:
        log.info("GET %s: %s", url, exc)
        return None
