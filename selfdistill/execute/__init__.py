"""RUNNING untrusted programs: `SandboxPool` (pool.py) runs `Job`s and yields `Outcome`s.

Layout: outcome.py (Status, Job, Outcome), pool.py (harness side), worker.py (one sandbox process per
slot), isolation.py (namespaces, mounts, uid), child.py (inside the untrusted child), guard.py
(pristine builtins/modules for tests), judge.py (verdicts), protocol.py (framing).
Exports are lazy: the worker imports this package and must stay light.
"""

__all__ = ["Job", "Outcome", "SandboxPool", "Status"]


def __getattr__(name: str):
    if name == "SandboxPool":
        from selfdistill.execute.pool import SandboxPool

        return SandboxPool
    if name in ("Job", "Outcome", "Status"):
        from selfdistill.execute import outcome

        return getattr(outcome, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
