"""`selfdistill check SPEC`: the spec validated whole, then what depends on data: the held-out set
loads, its errata and exclusions apply, its dated problems sit inside the declared window, and it is
large enough (below 200 problems the `heldout-below-200` anti-pattern is named, as a warning; the
verdict carries the stamp). Every stage that recommends anything calls this first,
so no recommendation can come from an incomplete or inconsistent spec. A spec that contains one of
the strategy's anti-patterns (selfdistill/antipatterns.py) is refused the same way, naming each.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from selfdistill.antipatterns import find_antipatterns
from selfdistill.errors import SpecError
from selfdistill.heldout import HeldoutSet, load_heldout
from selfdistill.spec import Spec, load_spec


@dataclass(frozen=True)
class CheckReport:
    spec: Spec
    heldout: HeldoutSet

    @property
    def warnings(self) -> list[str]:
        return list(self.heldout.warnings)

    @property
    def summary(self) -> str:
        h, d = self.heldout, self.spec.diagnostics
        excluded = f", {len(h.excluded)} excluded" if h.excluded else ""
        return (
            f"held-out {self.spec.heldout.task}"
            + (f" + {self.spec.heldout.mbpp_share} MBPP" if self.spec.heldout.mbpp_share else "")
            + f": {len(h.problems)} problems{excluded}; "
            f"n={d.n}, k={d.k}, gap threshold {d.gap_threshold_pp:g} pp; "
            f"budget {self.spec.gpu_hours_total:g} GPU-hours; comparator {self.spec.comparator.kind.value}"
        )


def check_spec(path: str | Path, run_dir: Path | None = None) -> CheckReport:
    if run_dir is not None and run_dir.exists() and not run_dir.is_dir():
        raise SpecError(f"error: --run-dir {run_dir} is a file; give the run directory (or a new path for one)")
    spec = load_spec(path)
    refuse_missing_inputs(spec, Path(path))
    refuse_antipatterns(spec, Path(path), run_dir)
    h = spec.heldout
    heldout = load_heldout(
        h.task, errata=h.errata, exclude=h.exclude,
        window_start=h.release_window_start, window_end=h.release_window_end,
        mbpp_share=h.mbpp_share, mbpp_seed=h.mbpp_seed, ngram=spec.pool.ngram,
    )
    return CheckReport(spec, heldout)


def refuse_antipatterns(spec: Spec, path: Path, run_dir: Path | None) -> None:
    found = find_antipatterns(spec, run_dir)
    if found:
        raise SpecError(
            f"error: {path} contains {len(found)} anti-pattern{'s' if len(found) != 1 else ''} the SSD strategy "
            "refuses:\n" + "\n".join(a.line() for a in found)
        )


def refuse_missing_inputs(spec: Spec, path: Path) -> None:
    """What `check` can see before any stage runs: prompt-pool and round-2 sources that name nothing, and
    generation options the chosen backend does not take (or takes with another type or range)."""
    problems = _source_problems("pool.source", spec.pool.source, pool=True)
    for key in ("round2_pool", "round2_heldout"):
        value = getattr(spec.gate, key)
        if value:
            problems += _source_problems(f"gate.{key}", value, pool=key == "round2_pool")
    problems += _option_problems(spec.generation.backend.value, spec.generation.options)
    if problems:
        raise SpecError(f"error: {path}:\n" + "\n".join(problems))


def _source_problems(field: str, value: str, pool: bool) -> list[str]:
    from selfdistill.tasks.registry import NAMED

    forms = '"mbpp", "split:<task name or file>", "codebase:<directory>" or a JSONL file' if pool else \
        f"a task name ({', '.join(sorted(NAMED))}) or a task file"
    if value.lower() in NAMED or (pool and value == "mbpp"):
        return []
    if pool and value.startswith("codebase:"):
        root = Path(value.removeprefix("codebase:")).expanduser()
        if not root.exists():
            return [f"  {field} = {value!r}: no such directory; give the root of a Python codebase"]
        return [] if root.is_dir() else [f"  {field} = {value!r}: is a file; codebase: takes a directory"]
    if pool and value.startswith("split:"):
        task = value.removeprefix("split:")
        if task.lower() in NAMED or Path(task).expanduser().is_file():
            return []
        return [f"  {field} = {value!r}: {task!r} is neither a task name ({', '.join(sorted(NAMED))}) nor a file"]
    if Path(value).expanduser().is_file():
        return []
    return [f"  {field} = {value!r}: no such file; give {forms}"]


# Upper bounds on counts that start processes, threads or batches: past these a spec asks for what no machine
# runs (e.g. parallel = 1e8 llama.cpp instances), so check refuses it rather than the run failing later.
OPTION_MAX = {"parallel": 64, "batch": 1024, "batch_size": 1024, "n_batch": 65_536, "n_threads": 1024,
              "concurrency": 1024, "tensor_parallel_size": 1024, "data_parallel_size": 1024}


def _option_problems(backend: str, options: dict) -> list[str]:
    """generation.options against the backend's constructor: unknown keys, wrong types, out-of-range numbers."""
    import importlib
    import inspect
    import math

    from selfdistill.generate.backends import BACKENDS

    module_name, cls_name = BACKENDS[backend].split(":")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except ImportError:  # the engine is checked when the backend loads
        return []
    params = {n: p for n, p in inspect.signature(cls.__init__).parameters.items()
              if p.kind is p.KEYWORD_ONLY and n != "chat"}  # fmt: skip
    problems = []
    for key, value in options.items():
        if key not in params:
            problems.append(f"  generation.options.{key}: not an option of the {backend} backend; "
                            f"it takes {', '.join(sorted(params)) or 'none'}")
            continue
        annotation, default = str(params[key].annotation), params[key].default
        if "bool" in annotation:
            ok, want = isinstance(value, bool), "true or false"
        elif "int" in annotation:
            low, high = (0 if default == 0 else 1), OPTION_MAX.get(key)
            ok = (isinstance(value, int) and not isinstance(value, bool) and value >= low
                  and (high is None or value <= high))
            want = f"an integer >= {low}" if high is None else f"an integer {low} .. {high}"
        elif "float" in annotation:
            low_ok = (lambda v: v > 0) if isinstance(default, (int, float)) and default > 0 else (lambda v: v >= 0)
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                  and low_ok(value))
            want = "a finite number" + (" > 0" if isinstance(default, (int, float)) and default > 0 else " >= 0")
        elif "str" in annotation:
            ok, want = isinstance(value, str), "a string"
        else:
            continue
        if not ok:
            problems.append(f"  generation.options.{key} = {value!r}: expected {want} ({backend} backend)")
    return problems
