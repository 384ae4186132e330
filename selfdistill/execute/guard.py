"""Pristine state for the tests: what a program may have patched, and how it is put back.

A program runs in the same process as the tests that judge it (assert tests need its namespace). So,
before the tests run, the child puts back what a program can rebind with ordinary Python:
- the real builtins dict (`import builtins; builtins.abs = ...`);
- the dicts of the stdlib modules tests use (`GUARDED_MODULES`: `math.isclose = ...`,
  `random.randint = ...`) and of the Python classes defined in them (`random.Random.randint = ...`);
- `sys.modules` entries that existed in the worker (`sys.modules["math"] = fake`);
- trace/profile hooks and gc callbacks.
The snapshot is taken ONCE in the worker, before any fork. To keep a fork cheap, a dict is compared
and restored only when its CPython version tag (`ma_version_tag`, bumped by every modification)
changed while the program ran; where that tag cannot be read, everything is compared.

Not covered: state inside objects (a list's contents, `random` state, class attributes of C types),
modules outside `GUARDED_MODULES`, classes defined in `typing`, and a program that knows these
internals and tampers with them (e.g. through ctypes): see child.py for the threat model.
"""

from __future__ import annotations

import builtins
import ctypes
import gc
import sys

GUARDED_MODULES = (
    "math", "cmath", "random", "string", "re", "itertools", "functools", "collections", "operator",
    "heapq", "bisect", "fractions", "decimal", "statistics", "hashlib", "copy", "datetime", "json",
    "numbers", "typing", "selfdistill.execute.child", "selfdistill.execute.guard",
)  # fmt: skip
CLASSES_SKIPPED_IN = ("typing",)  # dozens of classes, none a test compares with
HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class whose attributes Python code can set
_DICT_VERSION_OFFSET = 24  # PyDictObject: ob_refcnt, ob_type, ma_used, then ma_version_tag (3.11, 3.12)


class Snapshot:
    """Pristine builtins, guarded dicts and `sys.modules`, plus a tamper-resistant `restore`."""

    def __init__(self) -> None:
        self.builtins = dict(builtins.__dict__)
        self.modules = dict(sys.modules)
        modules = [sys.modules[name] for name in GUARDED_MODULES if name in sys.modules]
        entries = [(builtins.__dict__, self.builtins, None)]
        entries += [(m.__dict__, dict(m.__dict__), None) for m in modules]
        entries += [(_class_dict(c), dict(c.__dict__), c) for c in _python_classes(modules)]
        self.entries = entries
        self.read_version = _version_reader()
        self.restore = make_restorer(self)

    def versions(self) -> tuple[list, int] | None:
        """Version tags of every guarded dict and of `sys.modules`, or None where unreadable.

        Taken once in the worker, after it has set up everything a child inherits.
        """
        read = self.read_version
        if read is None:
            return None
        return tuple(read(live) for live, _, _ in self.entries), read(sys.modules)


def _python_classes(modules) -> list[type]:
    """Heap types defined in these modules: the classes a program can monkeypatch."""
    found = []
    for module in modules:
        if module.__name__ in CLASSES_SKIPPED_IN:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, type) and value.__flags__ & HEAPTYPE and value.__module__ == module.__name__:
                found.append(value)
    return found


def _class_dict(cls: type) -> dict:
    """The real dict behind `cls.__dict__` (a read-only proxy), for its version tag."""
    return next(r for r in gc.get_referents(cls.__dict__) if isinstance(r, dict))


def _version_reader():
    """`read(d) -> int`, the dict's modification counter, if this interpreter has one where we expect."""
    if sys.implementation.name != "cpython" or sys.version_info[:2] not in ((3, 11), (3, 12)):
        return None

    def read(d: dict) -> int:
        return _read_at(id(d))

    probe: dict = {}
    v0 = read(probe)
    probe["k"] = 1
    v1 = read(probe)
    probe["k"] = 2
    v2 = read(probe)
    return read if v0 < v1 < v2 else None


_from_address = ctypes.c_uint64.from_address


def _read_at(address: int) -> int:
    """The version tag of the dict at `address` (CPython 3.11/3.12 layout, checked by `_version_reader`)."""
    return _from_address(address + _DICT_VERSION_OFFSET).value


def _vector_reader(addresses: list[int]):
    """`read_all() -> tuple` of the version tags of the dicts at `addresses`, in ONE C call (an itemgetter
    over a uint64 view spanning them; only those words are ever read), or None if that cannot be set up.
    A loop of ctypes reads costs ~0.2 us per dict; the tests call `restore` after every call into the
    program, so this is what keeps that cheap."""
    import operator

    try:
        words = [a + _DICT_VERSION_OFFSET for a in addresses]
        base = min(words)
        if any((w - base) % 8 for w in words):
            return None
        index = [(w - base) // 8 for w in words]
        view = memoryview((ctypes.c_uint64 * (max(index) + 1)).from_address(base)).cast("B").cast("Q")
        getter = operator.itemgetter(*index, *index[:1])  # >= 2 items: always a tuple
        n = len(index)

        def read_all() -> tuple:
            return getter(view)[:n]

        if read_all() != tuple(_read_at(a) for a in addresses):
            return None
        return read_all
    except (ValueError, TypeError, OverflowError, MemoryError):
        return None


def make_restorer(snapshot: Snapshot):
    """`restore(before)`: put back every guarded dict whose version changed since `before`.

    Everything it uses is bound here, as closure cells: a program that rebinds builtins or this
    module's globals does not change what `restore` calls.
    """
    entries, saved_modules, live_modules = snapshot.entries, snapshot.modules, sys.modules
    modules_address = id(live_modules)
    addresses = [id(live) for live, _, _ in entries]  # ints made together: iterating them touches few pages
    settrace, setprofile, callbacks = sys.settrace, sys.setprofile, gc.callbacks
    setattr_, delattr_, list_, enumerate_ = setattr, delattr, list, enumerate
    from_address, offset = ctypes.c_uint64.from_address, _DICT_VERSION_OFFSET

    def read_at(address: int) -> int:
        return from_address(address + offset).value

    def restore_dict(live, saved, cls) -> None:
        for key in list_(k for k in live if k not in saved):
            if cls is None:
                del live[key]
            else:
                delattr_(cls, key)
        for key, value in saved.items():
            if live.get(key) is not value:
                if cls is None:
                    live[key] = value
                else:
                    setattr_(cls, key, value)

    read_all = _vector_reader(addresses) if snapshot.read_version is not None else None
    tuple_ = tuple

    def restore(before) -> None:
        """Reading a version tag writes nothing, so an untouched dict costs the forked child no page copy."""
        settrace(None)
        setprofile(None)
        callbacks[:] = list_()
        if before is None:
            for live, saved, cls in entries:
                restore_dict(live, saved, cls)
        else:
            versions = before[0]
            if read_all is not None and read_all() == tuple_(versions):  # nothing guarded changed: one C call
                pass
            else:
                for i, address in enumerate_(addresses):
                    if read_at(address) != versions[i]:
                        restore_dict(*entries[i])
        if before is None or read_at(modules_address) != before[1]:
            for name, module in saved_modules.items():
                if live_modules.get(name) is not module:
                    live_modules[name] = module

    return restore
