"""WHAT is solved: the `Problem` type, the loaders (HumanEval, generic JSONL, LiveCodeBench), errata
and the contamination check. Pure stdlib: nothing here imports torch, transformers or vllm."""

from selfdistill.tasks.contamination import ContaminationReport, check_contamination, refuse_if_contaminated
from selfdistill.tasks.errata import Errata, Exclusion, apply_errata, load_errata
from selfdistill.tasks.problem import (
    AssertTests,
    CallCase,
    CallTests,
    Difficulty,
    IOCase,
    IOTests,
    Problem,
    Tests,
)
from selfdistill.tasks.registry import load_task, warn_if_small

__all__ = [
    "AssertTests",
    "CallCase",
    "CallTests",
    "ContaminationReport",
    "Difficulty",
    "Errata",
    "Exclusion",
    "IOCase",
    "IOTests",
    "Problem",
    "Tests",
    "apply_errata",
    "check_contamination",
    "load_errata",
    "load_task",
    "refuse_if_contaminated",
    "warn_if_small",
]
