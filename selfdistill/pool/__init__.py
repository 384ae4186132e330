"""The SSD prompt pool: the prompts self-distillation samples completions for and fine-tunes on, held
out from the evaluation set. `load_pool(source, ...)` -> `PromptPool` (problems + JSON-ready provenance).

Layout: load.py (sources, duplicates, seeded subset, contamination refusal), mbpp.py (the embedded
default, fetched once by `python -m selfdistill.pool.mbpp`), split.py (`split:<task>`), codebase.py
(`codebase:<dir>`). Pure stdlib, like `selfdistill.tasks`: nothing here imports torch or a backend.
Not here: sampling the pool and training (`selfdistill.ssd`). Sources and rules: docs/pool.md.
"""

from selfdistill.pool.load import PromptPool, content_digest, load_pool, prompt_hash
from selfdistill.pool.split import split_ids

__all__ = ["PromptPool", "content_digest", "load_pool", "prompt_hash", "split_ids"]
