"""The engine's jit policy: the project's (:mod:`pkpd._jit`) without Numba's reference counting
and without a disk cache of its own for each function.

Reference counting. Numba's runtime (NRT) counts references to arrays with atomic operations:
a compiled function increments the count of each array argument on entry and decrements it
on exit, and every row view (``work[W_NEW]``) takes another pair. Numba's pruning pass removes
only some of them; on W1's exact path (one call of ``exact_integrate``, ``integrate``,
``constant_term``, ``propagator``... per interval, each with up to 16 arrays) the rest were
25 % of the engine's time (``perf``, 1 thread). The engine allocates nothing below
:func:`~pkpd.engine.subject.run_population`, which keeps the runtime to allocate each
chunk's workspace; every function it calls is compiled without it (Numba's ``_nrt``
flag), so no reference is ever counted in the per-subject code. A function compiled so
cannot allocate: Numba refuses to compile one that tries (``tests/test_engine_nrt.py``).

Disk cache. Only ``run_population`` is cached on disk, keyed by a digest of every engine
module (:func:`pkpd.engine.subject._engine_source_key`); its cached code contains every engine
function it calls. Numba keys each function's own cache by that function's file alone, and a
cached caller embeds its callees' code as they were when it was compiled: with every function
cached, an edit of ``integrate.py`` left ``run_subject`` (in an unchanged ``subject.py``) loading
its old copy of the integrator, so a checkout of another commit could run a mix of old and new
engine code (found when a worktree switched between commits gave results its own source, run
as Python, does not).
"""

from .._jit import jit as _project_jit


def jit(function=None, **overrides):
    """:func:`pkpd._jit.jit` without Numba's reference counting or disk cache (see the module's docstring)."""
    return _project_jit(function, _nrt=False, cache=False, **overrides)
