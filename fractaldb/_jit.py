"""One compile helper for every CPU kernel.

Kernels are plain Python functions decorated with :func:`kernel`.  They are
compiled by numba with ``nogil=True`` so a thread pool can run them side by
side, and cached on disk so the command line does not pay the JIT cost on
every start.  Setting ``NUMBA_DISABLE_JIT=1`` (numba's own switch) turns every
kernel back into the plain Python function: the test-suite runs the kernel
parity tests that way too (``tests/test_kernels.py::test_kernels_without_jit``).

Importing a kernel module does not import numba (about half a second of a
command's start-up): :func:`kernel` returns a :class:`LazyKernel`, and the first
call of any kernel imports numba and swaps **every** kernel made so far for its
numba dispatcher, in the modules that define kernels (numba reads a kernel's
globals when it compiles it, so the kernels it calls must be dispatchers by
then; swapping all at once keeps ``module.k is other_module.k`` true for every
kernel, which :func:`fractaldb.kernels.cuda_common.device_twin` relies on).
Kernels defined after that are numba dispatchers from the start.  So
``fractaldb --help``, ``presets`` and ``verify`` never import numba
(tests/test_startup.py).
"""

from __future__ import annotations

import functools
import os
import sys
import threading

__all__ = ["kernel", "LazyKernel", "activate", "active", "skip_blas_probe", "announce_compiles"]

_LOCK = threading.RLock()
#: Kernels made before numba was imported, not yet swapped.
_PENDING: list = []
#: Modules that define kernels (where the swap looks).
_MODULES: set = set()
_ACTIVE = False
_SKIP_BLAS_PROBE = False
#: ``[say, pid, said]`` of :func:`announce_compiles`, or None.
_ANNOUNCE = None
_LISTENING = False
#: What is said before the first kernel without an on-disk cache is compiled.
COMPILE_LINE = ("compiling the kernels: a first run on this machine takes 20-100 s before any progress "
                "(cached afterwards)")


def announce_compiles(say) -> None:
    """For the command line: the first time numba compiles a kernel in this process (a
    kernel without an on-disk cache: a first run, a new numba), call ``say(COMPILE_LINE)``
    once, before the compile, so a first run's minute of compiling is not silent."""
    global _ANNOUNCE
    said = _ANNOUNCE is not None and _ANNOUNCE[1] == os.getpid() and _ANNOUNCE[2]
    _ANNOUNCE = [say, os.getpid(), said]  # said once a process, however many commands it runs
    if _ACTIVE:
        _listen()


def _listen() -> None:
    """Register the compile listener of :func:`announce_compiles` with numba (once)."""
    global _LISTENING
    if _LISTENING:
        return
    _LISTENING = True
    from numba.core import event

    class _FirstCompile(event.Listener):
        def on_start(self, ev):
            a = _ANNOUNCE
            if a is not None and not a[2] and a[1] == os.getpid():
                a[2] = True
                a[0](COMPILE_LINE)

        def on_end(self, ev):
            pass

    event.register("numba:compile", _FirstCompile())


def skip_blas_probe() -> None:
    """For the command line's own process only: numba's CPU target, when it starts,
    imports SciPy's BLAS (where SciPy is installed: 0.2 CPU-s, a third of a small
    command's start-up) only to choose how ``np.correlate`` / ``np.convolve`` run
    inside compiled code, which no fractaldb kernel uses.  After this call the
    swap (:func:`activate`) hides SciPy while numba starts, if SciPy is not
    imported yet; numba then uses its own loops there.  A library user's process
    is never changed (tests/test_startup.py)."""
    global _SKIP_BLAS_PROBE
    _SKIP_BLAS_PROBE = True


def _jit_disabled() -> bool:
    return os.environ.get("NUMBA_DISABLE_JIT", "0").strip() not in ("", "0")


class LazyKernel:
    """A kernel whose numba dispatcher is made on first use (see the module).

    Calling it calls the dispatcher; other attributes (``py_func``, numba's
    ``signatures``...) are the dispatcher's too.
    """

    def __init__(self, fn, options: dict):
        functools.update_wrapper(self, fn)
        self.py_func = fn
        self._options = options
        self._dispatcher = None

    def dispatcher(self):
        """numba's dispatcher of this kernel (imports numba, swaps every kernel: :func:`activate`)."""
        if self._dispatcher is None:
            activate()
        if self._dispatcher is None:  # made outside kernel() after the swap
            import numba

            self._dispatcher = numba.njit(**self._options)(self.py_func)
        return self._dispatcher

    def __call__(self, *args, **kwargs):
        d = self._dispatcher
        return (d if d is not None else self.dispatcher())(*args, **kwargs)

    def __getattr__(self, name):
        if name.startswith("__") or name in ("_dispatcher", "_options", "py_func"):
            raise AttributeError(name)
        return getattr(self.dispatcher(), name)

    def __repr__(self) -> str:
        return f"<kernel {self.__module__}.{self.__qualname__}{'' if self._dispatcher is None else ' (compiled)'}>"


def active() -> bool:
    """Whether numba has been imported for the kernels (the first kernel call does it)."""
    return _ACTIVE


def activate() -> None:
    """Import numba and swap every :class:`LazyKernel` made so far for its dispatcher."""
    global _ACTIVE
    with _LOCK:
        if _ACTIVE:
            return
        hide = _SKIP_BLAS_PROBE and "scipy" not in sys.modules
        if hide:
            sys.modules["scipy"] = None  # an import of it fails at once
        try:
            import numba

            if hide:
                import numba.np.arraymath  # noqa: F401 - numba's BLAS probe, now
        finally:
            if hide and "scipy" in sys.modules and sys.modules["scipy"] is None:
                del sys.modules["scipy"]
        made = {}
        for lazy in _PENDING:
            lazy._dispatcher = numba.njit(**lazy._options)(lazy.py_func)
            made[id(lazy)] = lazy._dispatcher
        _PENDING.clear()
        for name in list(_MODULES):
            _swap(name, made)
        _ACTIVE = True
        if _ANNOUNCE is not None:
            _listen()


def _swap(module: str, made: dict) -> None:
    """Replace, in ``module``'s globals, every lazy kernel of ``made`` by its dispatcher."""
    mod = sys.modules.get(module)
    namespace = getattr(mod, "__dict__", None)
    if not namespace:
        return
    for key, value in list(namespace.items()):
        if type(value) is LazyKernel:
            d = made.get(id(value)) or value._dispatcher
            if d is not None:
                namespace[key] = d


def _make(fn, options: dict):
    opts = {"nogil": True, "cache": True, "error_model": "numpy", **options}
    if _jit_disabled():  # numba hands back the plain function
        import numba

        return numba.njit(**opts)(fn)
    with _LOCK:
        _MODULES.add(fn.__module__)
        if _ACTIVE:
            import numba

            # A module imported after the swap may hold kernels it imported before it: swap them too.
            _swap(fn.__module__, {})
            return numba.njit(**opts)(fn)
        lazy = LazyKernel(fn, opts)
        _PENDING.append(lazy)
        return lazy


def kernel(fn=None, **options):
    """Compile ``fn`` with numba in no-Python mode, releasing the GIL (on its first call)."""
    if fn is None:
        return lambda f: _make(f, options)
    return _make(fn, options)
