"""Training examples for the fine-tuning tests: chat prompt-completion pairs, one function each."""

import json
from pathlib import Path


def write_examples(path: Path, n: int = 8) -> Path:
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({
                "prompt": [{"role": "system", "content": "You write code."},
                           {"role": "user", "content": f"Write f{i}"}],
                "completion": [{"role": "assistant", "content": f"def f{i}(x):\n    return x + {i}\n"}],
            }) + "\n")
    return path
