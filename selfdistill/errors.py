"""The error hierarchy. A `SelfdistillError` is a user error: the CLI prints its message and exits 2,
with no traceback. Anything else is a bug and keeps its traceback."""


class SelfdistillError(Exception):
    """A user-facing error: bad input, missing file, missing extra. Message says where, what, how to fix."""


class SpecError(SelfdistillError):
    """The spec file is incomplete or invalid."""


class DataError(SelfdistillError):
    """A data file (tasks, samples, errata, metrics) is missing or malformed."""


class BackendUnavailable(SelfdistillError):
    """An optional dependency (backend, extra) is not installed."""


class SandboxError(SelfdistillError):
    """The sandbox cannot start on this machine (not a model failure: never scored)."""
