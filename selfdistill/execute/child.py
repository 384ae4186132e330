"""Code that runs INSIDE the forked, untrusted child: confinement, then the program and its tests.

`Stage` is built once in the worker (whatever it builds costs a child nothing); `main` runs in the
child and never returns: it confines the process (confine.py), reports `ready` (from here on the
harness blames the program, never itself), runs the job, and ends in `os._exit`. Messages go to fd 3
(the private result pipe) as `\\n<nonce> <json>\\n`, encoded by a C JSON encoder built in the
worker. The worker reads nothing else to decide a verdict.

What the runners defend against (each has a test in tests/execute/):
- early exits (`os._exit(0)`, `sys.exit(0)` at import or in the entry point): no `passed` message;
- fake success text on stdout/stderr: never read for assert/call tests;
- patched builtins (`builtins.abs = ...`, `__builtins__['abs'] = ...`, `def abs` in the program):
  the program gets a COPY of the builtins dict; before the tests run, guard.py puts back the real
  builtins and the stdlib modules tests use, and the tests see a copy of the program's namespace in
  which every builtin name is reset to the pristine object;
- `__eq__` tricks: call tests JSON-encode the return value here and the POOL compares it (expected
  values are in no process that forks programs); assert tests get a plain copy of each result of a call
  into the program (`make_call_guard`), and the guarded modules are restored after each such call;
- `os.fork()` in the program: only the original pid may report.

What is NOT covered (documented, marked xfail in the tests): assert tests run in this process, so their
code (and expected values) is here, and a program that inspects its own process (frames via
`sys._getframe`, `gc.get_objects`, ctypes) can find the nonce and forge `passed` for ASSERT tests;
patching C-level types (ctypes, `gc.get_referents(int.__dict__)`); see guard.py for what is put back and
what is not; a thread the program leaves running during the tests (made unlikely, not impossible, by a
very long GIL switch interval while the tests run); a completion that redefines a prompt helper the tests
call (HumanEval/38's `encode_cyclic`) changes what the tests check.
"""

# ruff: noqa: BLE001, S102 - this module runs untrusted code: exec is its job, and the program may raise anything

from __future__ import annotations

import _json
import _signal
import atexit
import errno
import gc
import os
import random
import signal
import sys
import threading
import time
import types

from selfdistill.execute import confine, isolation
from selfdistill.execute.confine import RESULT_FD
from selfdistill.execute.guard import Snapshot

TESTS_SWITCH_INTERVAL = 1e6
SETUP_FAILED = 71  # exit status when confinement failed before the program ran (an INFRA fault)
DETAIL_CHARS = 300


def make_encoder():
    """The C JSON encoder. Built in the worker: later changes to the json module do not reach it."""

    def default(obj):
        raise TypeError(f"{type(obj).__name__} is not JSON serializable")

    return _json.make_encoder({}, default, _json.encode_basestring_ascii, None, ":", ",", False, False, True)


ENCODER = make_encoder()


class Stage:
    """What every child of this worker starts from, built ONCE in the worker: the program's module
    (registered in `sys.modules`, so dataclasses and pickle find it) with a private copy of the
    builtins, the builtins the tests get, and the version tags `guard` compares against.

    Sharing these objects across children is safe: the worker never runs program code, so each
    child gets its own copy-on-write copy of pristine objects, and touching nothing costs nothing.
    """

    def __init__(self, snapshot: Snapshot):
        self.namespaces = {}
        for kind, name in (("assert", "solution"), ("call", "solution"), ("io", "__main__")):
            if name not in self.namespaces:
                module = types.ModuleType(name)
                module.__dict__["__builtins__"] = dict(snapshot.builtins)  # the program's own copy
                sys.modules[name] = module
                self.namespaces[name] = module.__dict__
            self.namespaces[kind] = self.namespaces[name]
        self.tests_builtins = dict(snapshot.builtins)
        self.versions = snapshot.versions()  # last: after everything above changed what it changes
        self.guard = make_call_guard(snapshot, trusted_types(snapshot), self.versions)  # changes no guarded dict


def main(spec: dict, sandbox: isolation.Sandbox, fds: tuple[int, int, int, int], report,
         snapshot: Snapshot, stage: Stage) -> None:  # fmt: skip
    """The child's whole life. Never returns."""
    try:
        confine.wire_fds(*fds)
    except BaseException:
        os._exit(SETUP_FAILED)
    try:
        confine.confine(spec, sandbox)
    except BaseException as e:
        _quiet(report, {"event": "infra", "detail": f"sandbox setup failed: {type(e).__name__}: {e}"})
        os._exit(SETUP_FAILED)
    report({"event": "ready"})
    try:
        RUNNERS[spec["kind"]](spec, report, snapshot, stage)
    finally:
        os._exit(1)


def make_reporter(nonce: str):
    """A `report(msg)` that survives the program patching json, os or builtins."""
    encode, write, prefix = ENCODER, os.write, ("\n" + nonce + " ").encode()

    def report(msg: dict) -> None:
        data = prefix + "".join(encode(msg, 0)).encode() + b"\n"
        while data:
            data = data[write(RESULT_FD, data) :]

    return report


def _quiet(fn, *args) -> None:
    """Best effort, for calls whose failure changes nothing (a last message, a flush)."""
    # SIM105: a plain try keeps the child's import list minimal (no contextlib) on its last-gasp path
    try:  # noqa: SIM105
        fn(*args)
    except BaseException:  # noqa: S110
        pass


# --- runners: each ends in os._exit ------------------------------------------------------------


# --- what the tests get back from the program ---------------------------------------------------------

PLAIN_SCALARS = (int, float, complex, str, bytes, bool, type(None))
# C value types handed to the tests as they are: their comparisons read only their own C fields
KEPT_C_TYPES = frozenset({("builtins", "range"), ("builtins", "bytearray"), ("builtins", "ellipsis"),
                          ("builtins", "NotImplementedType"), ("decimal", "Decimal"), ("datetime", "date"),
                          ("datetime", "datetime"), ("datetime", "time"), ("datetime", "timedelta"),
                          ("datetime", "timezone")})


class NotPlain(AssertionError):
    """A value the tests would compare through the program's own methods: the check fails."""


def trusted_types(snapshot: Snapshot) -> frozenset:
    """Python classes of the guarded stdlib modules (Fraction, Counter...): restored, so their methods are real."""
    return frozenset(cls for _, _, cls in snapshot.entries if cls is not None)


def make_call_guard(snapshot: Snapshot, trusted: frozenset, before):
    """`guard(fn, tests_ns)`: `fn` for the tests. Each call puts back what the program patched while it ran
    (builtins, the guarded stdlib modules: `math.fabs = ...` inside the entry point; the tests' own globals
    and builtins, reachable through the caller's frame) and returns a PLAIN copy of the result: exact ints,
    floats, strs, lists, tuples, dicts, sets... rebuilt through the base types' own C methods. So
    `assert candidate(x) == y` compares plain values: an object whose `__eq__` always says True, a subclass
    of int or str with a lying `__eq__`, or a result that patches math when the test uses it, cannot pass.
    A program-defined class that is not such a subclass fails the check (NotPlain). Making the copy runs
    none of the program's code (no `isinstance`, which reads `__class__`; no `==` on its types), and the
    program's objects are kept alive, so no finalizer of theirs runs between the checks either.
    Everything is bound here, in the worker, before any program runs."""
    restore, gc_disable = snapshot.restore, gc.disable
    pristine_builtins, read = snapshot.builtins, snapshot.read_version
    type_, issubclass_, id_, list_ = type, issubclass, id, list
    tuple_, dict_, set_, frozenset_ = tuple, dict, set, frozenset
    int_, float_, str_, bytes_ = int, float, str, bytes
    int_int, float_float, str_str, bytes_bytes = int.__int__, float.__float__, str.__str__, bytes.__bytes__
    list_copy, dict_items, set_copy, frozenset_copy = list.copy, dict.items, set.copy, frozenset.copy
    tuple_getitem, whole = tuple.__getitem__, slice(None)
    type_flags, type_name = type.__dict__["__flags__"].__get__, type.__dict__["__name__"].__get__
    scalar_ids, trusted_ids = frozenset(id(t) for t in PLAIN_SCALARS), frozenset(id(t) for t in trusted)
    heaptype = 1 << 9
    type_module, type_mro = type.__dict__["__module__"].__get__, type.__dict__["__mro__"].__get__
    type_dict = type.__dict__["__dict__"].__get__
    member_type = types.MemberDescriptorType
    member_get, member_set = types.MemberDescriptorType.__get__, types.MemberDescriptorType.__set__
    object_new, object_getattribute, object_setattr = object.__new__, object.__getattribute__, object.__setattr__
    kept_c_types, iter_ = KEPT_C_TYPES, iter
    container_ids = frozenset(id(t) for t in (list, tuple, dict, set, frozenset))

    def has(t, name: str) -> bool:
        return any(name in type_dict(cls) for cls in type_mro(t))
    setswitchinterval, getsignal, set_handler = sys.setswitchinterval, _signal.getsignal, _signal.signal  # C, not enums
    current_frames, sleep, len_, range_ = sys._current_frames, time.sleep, len, range
    handlers = [(sig, h) for sig in signal.valid_signals() if (h := _handler(sig)) is not None]
    signals, pristine_handlers, map_ = [sig for sig, _ in handlers], [h for _, h in handlers], map
    kept: list = []  # the program's results and exceptions: never freed, so their __del__ never runs
    keep = kept.append

    def plain(v):
        t = type_(v)
        if id_(t) in scalar_ids:
            return v
        if t is list_:
            return [plain(x) for x in v]
        if t is tuple_:
            return tuple_(plain(x) for x in v)
        if t is dict_:
            return {plain(k): plain(x) for k, x in dict_items(v)}
        if t is set_:
            return {plain(x) for x in v}
        if t is frozenset_:
            return frozenset_(plain(x) for x in v)
        # subclasses: the base type's own value, read by the base type's C method (never the subclass's)
        if issubclass_(t, int_):
            return int_int(v)
        if issubclass_(t, float_):
            return float_float(v)
        if issubclass_(t, str_):
            return str_str(v)
        if issubclass_(t, bytes_):
            return bytes_bytes(v)
        if issubclass_(t, list_):
            return plain(list_copy(v))
        if issubclass_(t, tuple_):
            return plain(tuple_getitem(v, whole))
        if issubclass_(t, dict_):
            return {plain(k): plain(x) for k, x in dict_items(v)}  # the table itself, not the subclass's __iter__
        if issubclass_(t, set_):
            return plain(set_copy(v))
        if issubclass_(t, frozenset_):
            return plain(frozenset_copy(v))
        if type_flags(t) & heaptype:
            if id_(t) not in trusted_ids:
                raise NotPlain(f"the program returned a {type_name(t)} object; the tests compare plain values only")
            return plain_trusted(v, t)
        if (type_module(t), type_name(t)) in kept_c_types:
            return v
        if has(t, "__index__"):  # a C integer type (numpy's): its value, read by its own C method
            return int_int(v.__index__())
        # any other C type (a weakref proxy, a mappingproxy, an array...) could hand the comparison to an
        # object of the program's; iterators are materialized by the call guard before this, so: refused
        raise NotPlain(f"the program returned a {type_name(t)} object; the tests compare plain values only")

    def plain_trusted(v, t):
        """A stdlib Python class (Fraction, UserString...): a fresh instance whose slots and __dict__ hold
        plain copies, so its (restored, real) methods never reach an object of the program's."""
        try:
            new = object_new(t)
        except TypeError:
            raise NotPlain(f"the program returned a {type_name(t)} object that cannot be copied plainly") from None
        for cls in type_mro(t):
            for d in type_dict(cls).values():  # a mappingproxy of a trusted class: C methods
                if type_(d) is member_type:
                    try:
                        value = member_get(d, v, t)
                    except AttributeError:
                        continue
                    member_set(d, new, plain(value))
        try:
            state = object_getattribute(v, "__dict__")
        except AttributeError:
            return new
        if type_(state) is not dict_ and not issubclass_(type_(state), dict_):
            raise NotPlain(f"the program returned a {type_name(t)} object with a {type_name(type_(state))} state")
        object_setattr(new, "__dict__", {plain(k): plain(x) for k, x in dict_items(state)})
        return new

    def iterable_c(t) -> bool:
        """A C type the tests may iterate (a generator, map, filter, dict view, deque...): not plain."""
        return not type_flags(t) & heaptype and id_(t) not in scalar_ids and id_(t) not in container_ids and \
            (type_module(t), type_name(t)) not in kept_c_types and has(t, "__iter__")

    def put_back(live: dict, saved: dict) -> None:
        for key in list_(k for k in live if k not in saved):
            del live[key]
        for key, value in saved.items():
            if live.get(key) is not value:
                live[key] = value

    def guard(fn, tests_ns: dict):
        """`tests_ns`: the tests' globals; their `__builtins__` is the pristine copy the tests got. With
        dict version tags, a dict is copied and put back only when it changed (a call costs ~20 us)."""
        tests_builtins = tests_ns["__builtins__"]
        state = [None, None, read(tests_builtins) if read else None]  # ns version, ns copy, builtins version

        def call(*args, **kwargs):
            if read is None or read(tests_ns) != state[0]:  # the tests changed their globals: a new reference
                state[1] = dict_(tests_ns)
                state[0] = read(tests_ns) if read else None
            try:
                value = fn(*args, **kwargs)
            except BaseException as e:
                keep(e)
                raise
            finally:
                gc_disable()  # no cycle collection (and its finalizers) between the checks
                setswitchinterval(TESTS_SWITCH_INTERVAL)  # a thread the call started hardly ever runs now
                if list_(map_(getsignal, signals)) != pristine_handlers:  # one C loop when nothing changed
                    for sig, handler in handlers:  # no handler of the program's runs in the middle of a check
                        if getsignal(sig) is not handler:
                            set_handler(sig, handler)
                threads = len_(current_frames())
                for _ in range_(threads - 1):  # threads already waiting for the GIL wait under the old
                    sleep(0)  # interval: let each take its turn now, before we put things back
                put_all_back()
            keep(value)
            if iterable_c(type_(value)):  # a generator, map, view...: its items, drawn under the same guard
                try:
                    items = list_(value)
                finally:
                    gc_disable()
                    put_all_back()
                keep(items)
                return iter_(plain(items))  # still an iterator (`tuple(candidate(x))` works, `== [...]` does not)
            return plain(value)

        def put_all_back() -> None:
            restore(before)
            if read is None or read(tests_builtins) != state[2]:
                put_back(tests_builtins, pristine_builtins)
                state[2] = read(tests_builtins) if read else None
            if read is None or read(tests_ns) != state[0]:
                put_back(tests_ns, state[1])
                state[0] = read(tests_ns) if read else None

        return call

    return guard


def _handler(sig: int):
    """The worker's handler for `sig` (what every child starts with), or None where it cannot be set."""
    try:
        handler = _signal.getsignal(sig)
        if handler is None:
            return None
        _signal.signal(sig, handler)  # settable? (SIGKILL, SIGSTOP and a few reserved ones are not)
    except (OSError, ValueError, RuntimeError):
        return None
    return handler


def run_assert(spec: dict, report, snapshot: Snapshot, stage: Stage) -> None:
    """Program, then test code, then `check(<entry_point>)`, with pristine builtins for the tests."""
    _exit, getpid, me = os._exit, os.getpid, os.getpid()
    restore, before, run_tests, describe_ = snapshot.restore, stage.versions, _run_tests, describe
    ns, phase = stage.namespaces["assert"], "program"
    try:
        exec(compile(spec["program"], "<program>", "exec"), ns)
        restore(before)
        if getpid() != me:  # the program forked and this copy came back: only the original reports
            _exit(0)
        phase = "tests"
        run_tests(spec, ns, stage.tests_builtins, stage.guard)
    except BaseException as e:
        restore(before)
        if getpid() != me:
            _exit(0)
        report(describe_(e, phase, spec, assertion_fails=True))
        _exit(1)
    if getpid() != me:
        _exit(0)
    report({"event": "passed"})
    _exit(0)


def _run_tests(spec: dict, ns: dict, pristine: dict, guard) -> None:
    entry = spec.get("entry_point")
    target = ns[entry] if entry else None  # KeyError -> error: the entry point is not defined
    tests_ns = dict(ns)
    tests_ns["__builtins__"] = pristine
    for name, value in ns.items():
        if name in pristine:  # `def abs(x): ...` in the program: the tests still get the real abs
            tests_ns[name] = pristine[name]
        elif type(value) is types.FunctionType:  # MBPP-style tests call the program's functions by name
            tests_ns[name] = guard(value, tests_ns)
    candidate = guard(target, tests_ns) if entry else None
    gc.disable()
    random.seed(0)
    sys.setswitchinterval(TESTS_SWITCH_INTERVAL)  # a thread the program left running hardly ever gets the GIL now
    exec(spec.get("tests_code") or compile(spec["code"], "<tests>", "exec"), tests_ns)
    if entry and callable(tests_ns.get("check")):
        tests_ns["check"](candidate)


def compile_tests(code: str):
    """The tests' code object, compiled once in the WORKER (the test code is trusted, and compiling
    runs none of it), with this module's compiler flags, as the child's own `compile` would use; None
    when it does not compile: the child then compiles it and reports the error as before."""
    try:
        return compile(code, "<tests>", "exec")
    except Exception:
        return None


def run_call(spec: dict, report, snapshot: Snapshot, stage: Stage) -> None:
    """`Solution().<fn>(*args)` (or top-level `fn`) per case; each result JSON-encoded here, judged outside."""
    _exit, getpid, me, encode = os._exit, os.getpid, os.getpid(), ENCODER
    restore, before, describe_ = snapshot.restore, stage.versions, describe
    ns, where = stage.namespaces["call"], "program"
    try:
        exec(compile(spec["program"], "<program>", "exec"), ns)
        restore(before)
        target = _call_target(ns, spec["fn_name"])
        for i, args in enumerate(spec["args"]):
            where = f"case {i}"
            value = target(*args)
            if getpid() != me:
                _exit(0)
            report(_encoded_case(i, value, encode))
    except BaseException as e:
        restore(before)
        if getpid() != me:
            _exit(0)
        report(describe_(e, where, spec, assertion_fails=False))
        _exit(1)
    report({"event": "done"})
    _exit(0)


def _call_target(ns: dict, fn_name: str):
    solution = ns.get("Solution")
    if isinstance(solution, type):
        return getattr(solution(), fn_name)
    if fn_name in ns:
        return ns[fn_name]
    raise NameError(f"the program defines neither class Solution nor function {fn_name!r}")


def _encoded_case(index: int, value, encode) -> dict:
    try:
        return {"event": "case", "index": index, "json": "".join(encode(value, 0))}
    except BaseException as e:  # whatever the object does, it is not a JSON value
        return {"event": "case", "index": index, "json": None, "detail": f"return value is not JSON: {e}"[:200]}


def run_io(spec: dict, report, snapshot: Snapshot, stage: Stage) -> None:
    """One stdin/stdout case: the program as `__main__`, then the interpreter's exit sequence."""
    _exit, out, ns = os._exit, sys.stdout, stage.namespaces["io"]
    status = 0
    try:
        try:
            exec(compile(spec["program"], "<program>", "exec"), ns)
        except SystemExit as e:
            status = _exit_status(e)
        threading._shutdown()  # like interpreter exit: wait for non-daemon threads (CP stack-size trick)
        atexit._run_exitfuncs()
        _quiet(sys.stdout.flush)  # the program's own replacement, if any
        out.flush()
    except BaseException as e:
        report(describe(e, "program", spec, assertion_fails=False))
        _exit(1)
    if status:
        report({"event": "error", "detail": f"exited with SystemExit({status})"})
        _exit(1)
    report({"event": "done"})
    _exit(0)


def _exit_status(e: SystemExit) -> int:
    if e.code is None or e.code == 0:
        return 0
    return e.code if isinstance(e.code, int) else 1


RUNNERS = {"assert": run_assert, "call": run_call, "io": run_io}


# --- helpers ---------------------------------------------------------------------------------


def describe(e: BaseException, where: str, spec: dict, assertion_fails: bool) -> dict:
    """The message for an exception: its event (failed/memory/error) and a short detail."""
    if isinstance(e, MemoryError) or (isinstance(e, OSError) and e.errno == errno.ENOMEM):
        event = "memory"
    elif assertion_fails and isinstance(e, AssertionError):
        event = "failed"
    else:
        event = "error"
    if isinstance(e, SystemExit):
        text = f"SystemExit({e.code!r}) in {where}, before the tests finished"
    elif isinstance(e, SyntaxError):
        text = f"{type(e).__name__}: {e.msg} ({where}{_location(e, spec)})"
    else:
        text = f"{type(e).__name__}: {_safe_str(e)}".rstrip(": ") + f" ({where}{_location(e, spec)})"
    return {"event": event, "detail": text[:DETAIL_CHARS]}


def _safe_str(e: BaseException) -> str:
    try:
        return str(e)[:200]
    except BaseException:  # the program's own __str__
        return "<unprintable>"


def _location(e: BaseException, spec: dict) -> str:
    """`, <tests> line 7: assert f(1) == 2` for the deepest frame in the program or the tests."""
    if isinstance(e, SyntaxError) and e.filename in ("<program>", "<tests>"):
        filename, lineno = e.filename, e.lineno or 0
    else:
        filename, lineno, tb = None, 0, e.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename in ("<program>", "<tests>"):
                filename, lineno = tb.tb_frame.f_code.co_filename, tb.tb_lineno
            tb = tb.tb_next
    if filename is None:
        return ""
    source = spec["program"] if filename == "<program>" else spec.get("code", "")
    lines = source.splitlines()
    text = lines[lineno - 1].strip() if 0 < lineno <= len(lines) else ""
    return f", {filename} line {lineno}" + (f": {text}" if text else "")
