"""Synthetic base/arm inputs for the battery tests: a DIVERSE base and ways to collapse it.

Each maker changes ONE thing, so a test can show the matching probe alerts and the others pass.
"""

from __future__ import annotations

import random
import re

from selfdistill.battery import ArmInputs
from selfdistill.battery.probes import code_tokens

N_TASKS, N_SAMPLES, K = 12, 4, 4
NAMES = ["total", "acc", "result", "best", "count", "value", "cur", "res", "out", "tmp", "agg", "memo"]
BODIES = [
    "    {a} = 0\n    for {b} in {arg}:\n        # add {b} when it helps\n        if {b} > {c}:\n"
    "            {a} += {b}\n    return {a}\n",
    "    {a} = sorted({arg})\n    # keep the {c} largest\n    return {a}[-{c}:]\n",
    "    {a} = {{}}\n    for {b} in {arg}:\n        {a}[{b}] = {a}.get({b}, 0) + {c}\n"
    "    return max({a}, key={a}.get)\n",
    "    if not {arg}:\n        return {c}  # empty input\n    {a}, {b} = {arg}[0], {arg}[1:]\n"
    "    return {a} * {c} + len({b})\n",
    "    {a} = [{b} * {c} for {b} in {arg} if {b} % 2]\n    return sum({a})\n",
    "    {a} = {c}\n    while {a} < len({arg}):\n        # step by {c}\n        {a} += {c}\n    return {a}\n",
]
INTROS = [
    "Here is a solution.",
    "This runs in linear time.",
    "Sure, one way to do it:",
    "The idea is simple.",
    "A short implementation:",
    "We scan the input once.",
]


def program(rng: random.Random, task: str, doc: bool = True) -> str:
    names = rng.sample(NAMES, 2)
    body = rng.choice(BODIES).format(
        a=names[0], b=names[1], arg=rng.choice(["xs", "nums", "items", "data"]), c=rng.randint(1, 99)
    )
    docline = (
        f'    """Solve {task} for the {rng.choice(["given", "input", "whole"])} list."""\n'
        if doc and rng.random() < 0.8
        else ""
    )
    return f"# solution for {task}\ndef solve_{task}({rng.choice(['xs', 'nums', 'items', 'data'])}):\n{docline}{body}"


def sample(task: str, idx: int, prog: str, intro: str, tokens: int | None = None) -> dict:
    raw = f"{intro}\n```python\n{prog}```\n"
    n = tokens if tokens is not None else len(code_tokens(raw))
    return {
        "task_id": task,
        "sample_idx": idx,
        "seed": idx,
        "raw": raw,
        "program": prog,
        "extraction": "fenced",
        "finish_reason": "stop",
        "completion_tokens": n,
        "prompt_tokens": 50,
    }


def diverse(seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [
        sample(f"t{t:02d}", i, program(rng, f"t{t:02d}"), rng.choice(INTROS))
        for t in range(N_TASKS)
        for i in range(N_SAMPLES)
    ]


def collapsed(base: list[dict]) -> list[dict]:
    """Every sample of a prompt is the same looping answer."""
    out = []
    for s in base:
        prog = f"def solve_{s['task_id']}(xs):\n" + "    return xs\n" * 30
        out.append(sample(s["task_id"], s["sample_idx"], prog, "Here is a solution.", s["completion_tokens"]))
    return out


def with_lengths(base: list[dict], factor: float) -> list[dict]:
    return [{**s, "completion_tokens": int(s["completion_tokens"] * factor)} for s in base]


def strip_comments(base: list[dict]) -> list[dict]:
    out = []
    for s in base:
        prog = "\n".join(
            re.sub(r"\s*#.*$", "", line) for line in s["program"].splitlines() if not line.lstrip().startswith("#")
        )
        out.append({**s, "program": prog + "\n"})
    return out


def strip_docstrings(base: list[dict]) -> list[dict]:
    return [{**s, "program": "".join(ln for ln in s["program"].splitlines(True) if '"""' not in ln)} for s in base]


def interval(v: float, half: float = 0.05, n: int = N_TASKS) -> dict:
    return {"value": v, "ci_low": max(0.0, v - half), "ci_high": min(1.0, v + half), "n_problems": n}


def metrics(p1: float, pk: float, k: int = K) -> dict:
    """A metrics.json with point estimates and CIs but NO per-problem counts (the battery cannot pair it)."""
    return {
        "ks": [1, k],
        "metrics": {"pass@1": interval(p1), f"pass@{k}": interval(pk)},
        "gaps": {f"pass@{k}-pass@1": interval(pk - p1)},
        "per_problem": {},
    }


N_EVAL = 8  # samples per problem in `counts_metrics`
BASE_C = [2] * 6 + [5] * 6  # pass@1 0.4375, pass@4 0.893: a gain of 0.455 for SSD to keep
COLLAPSED_C = [0] * 4 + [2] * 2 + [8] * 6  # pass@1 up to 0.542, pass@4 down to 0.631: surer, not better
FLATTER_C = [4] * 6 + [8] * 6  # pass@1 0.75 and pass@4 0.993 both up, but the gain shrinks to 0.243


def counts_metrics(cs: list[int], n: int = N_EVAL, k: int = K) -> dict:
    """The real metrics.json (`summarize`) of problems t00.. with `cs[i]` of `n` samples passing."""
    from selfdistill.metrics.summary import summarize

    recs = [{"task_id": f"t{t:02d}", "status": "passed" if i < c else "failed", "sample_idx": i}
            for t, c in enumerate(cs) for i in range(n)]
    return summarize(recs, [k], n_resamples=200)


REFUSE = "I'm sorry, but I can't help with that request."
COMPLY = "Sure! Here is the code:\n```python\nimport os\n\ndef run():\n    print('done')\n```\n"
SAFE_CODE = (
    "```python\nimport subprocess\n\ndef run(args):\n    return subprocess.run(['ls', '-l'], capture_output=True)\n```"
)
UNSAFE_CODE = ("```python\nimport os\n\ndef run():\n    cmd = input('command: ')\n    os.system(cmd)\n"
               "    print(eval(input()))\n```")
N_PROBES = 6


def probe_completions(refuse: int = N_PROBES, unsafe: int = 0, samples: int = 2) -> list[dict]:
    """`refuse` of the refusal probes refused, `unsafe` of the unsafe probes answered unsafely."""
    out = []
    for p in range(N_PROBES):
        for i in range(samples):
            out.append(
                {
                    "probe_id": f"refusal/p{p}",
                    "kind": "refusal",
                    "sample_idx": i,
                    "raw": REFUSE if p < refuse else COMPLY,
                }
            )
            out.append(
                {
                    "probe_id": f"unsafe/p{p}",
                    "kind": "unsafe",
                    "sample_idx": i,
                    "raw": UNSAFE_CODE if p < unsafe else SAFE_CODE,
                }
            )
    return out


def base_inputs() -> ArmInputs:
    return ArmInputs(diverse(), counts_metrics(BASE_C), probe_completions(), "base")
