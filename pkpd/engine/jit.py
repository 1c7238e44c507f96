"""The engine's jit policy: the project's (:mod:`pkpd._jit`) without Numba's reference counting.

Numba's runtime (NRT) counts references to arrays with atomic operations: a compiled
function increments the count of each array argument on entry and decrements it on exit,
and every row view (``work[W_NEW]``) takes another pair. Numba's pruning pass removes only
some of them; on W1's exact path (one call of ``exact_integrate``, ``integrate``,
``constant_term``, ``propagator``... per interval, each with up to 16 arrays) the rest were
25 % of the engine's time (``perf``, 1 thread). The engine allocates nothing below
:func:`~pkpd.engine.subject.run_population`, which keeps the runtime to allocate each
chunk's workspace; every function it calls is compiled without it (Numba's ``_nrt``
flag), so no reference is ever counted in the per-subject code. A function compiled so
cannot allocate: Numba refuses to compile one that tries (``tests/test_engine_nrt.py``).
"""

from .._jit import jit as _project_jit


def jit(function=None, **overrides):
    """:func:`pkpd._jit.jit` without Numba's reference counting (see the module's docstring)."""
    return _project_jit(function, _nrt=False, **overrides)
