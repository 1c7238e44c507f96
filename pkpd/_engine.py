"""Python side of the engine: options, the kernel call, status codes to messages."""

import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from ._errors import PkpdError, SimulationError
from ._options import DEFAULT, SolverOptions
from .engine import constants as c
from .engine import pointer, run_population
from .engine.constants import METHODS

MESSAGES = {
    c.STATUS_MAX_STEPS: "the integrator exceeded max_steps between two records; raise max_steps or loosen rtol/atol",
    c.STATUS_STEP_UNDERFLOW: "the step size fell below the time resolution (the system may be stiff: "
                             "try method='rosenbrock')",
    c.STATUS_NOT_FINITE: "a state became NaN or infinite (check parameter values and expressions)",
    c.STATUS_SS_NOT_CONVERGED: "the steady state (SS) did not converge in 60 Newton iterations",
    c.STATUS_QUEUE_OVERFLOW: "more pending events (lagged doses, running infusions) than the event queue holds",
    c.STATUS_BAD_MODELLED_RATE: "RATE=-1 but the model's rate R for this compartment is not positive",
    c.STATUS_BAD_MODELLED_DURATION: "RATE=-2 but the model's duration D for this compartment is not positive",
    c.STATUS_BAD_BIOAVAILABILITY: "the bioavailability F is negative or not finite",
    c.STATUS_BAD_LAG: "the lag time ALAG is negative or not finite",
    c.STATUS_SINGULAR: "the steady state is undefined (singular system: a compartment without elimination?)",
    c.STATUS_PROPAGATOR_NOT_FINITE: "the exact propagator is not finite (a parameter is zero or infinite, "
                                    "or a time is too large)",
}


# auto takes the stiff method when (spectral radius of the Jacobian) x (time span) exceeds this:
# Dormand-Prince is then held to steps of about 3/radius by stability alone. Measured on
# ketamine_mg_pain with ALPHA = 1 (radius 14.6/h): rk45 is faster up to about 600 h (8,800),
# RODAS4 beyond (840 h, 12,300: 1,115 against 1,386 us per subject at rtol 1e-8).
STIFF_SPAN = 10_000.0


def stiffness(model):
    """Spectral radius (1/time) of the Jacobian at zero amounts and the model's typical inputs."""
    kernels = model.kernels
    n = len(model.compartments)
    env = np.zeros(model.module.N_ENV)
    env[:len(model.input_defaults)] = model.input_defaults
    kernels.derive(pointer(env))
    jacobian = np.zeros((n, n))
    kernels.jacobian(pointer(np.zeros(n)), pointer(env), pointer(jacobian))
    if not np.all(np.isfinite(jacobian)):
        return 0.0
    return float(np.max(np.abs(np.linalg.eigvals(jacobian)))) if n else 0.0


def resolve_method(model, method, span=None):
    """'auto' -> 'exact' for linear models; for others 'rosenbrock' when the system is stiff over
    `span` (model time unit; see STIFF_SPAN), else 'rk45'. Checks the name."""
    if method == "auto":
        if model.is_linear:
            return "exact"
        if span is not None and stiffness(model) * span > STIFF_SPAN:
            return "rosenbrock"
        return "rk45"
    if method not in METHODS:
        raise PkpdError(f"method must be one of auto, {', '.join(METHODS)}; got {method!r}")
    if method == "exact" and not model.is_linear:
        raise PkpdError(f"method='exact' needs a model linear in its amounts; {model.name!r} is not")
    return method


def check_tolerances(rtol, atol, max_steps):
    """Refuse tolerances or a step limit :class:`SolverOptions` refuses (PkpdError naming the option)."""
    SolverOptions(rtol=rtol, atol=atol, max_steps=max_steps)


def run_stream(model, stream, *, method=DEFAULT.method, rtol=DEFAULT.rtol, atol=DEFAULT.atol,
               max_steps=DEFAULT.max_steps,
               h_max=np.inf, chunk_size=None, states=None, values=None):
    """Integrate every subject of an event stream.

    Parameters
    ----------
    states, values : ndarray, optional
        Where to write the results (C-contiguous float64 of the shapes below),
        e.g. views of a caller's larger arrays, which saves an allocation and a
        copy; by default new arrays.

    Returns
    -------
    states : ndarray, shape (n_outputs, n_states)
        Compartment amounts on each output record (model amount unit).
    values : ndarray, shape (n_outputs, n_model_outputs)
        Model outputs on each output record (units as the model declares).
    status : ndarray, shape (n_subjects,)
        0 for success, else a code of MESSAGES. The output rows of a failed
        subject are NaN.
    """
    method = resolve_method(model, method)
    check_tolerances(rtol, atol, max_steps)
    kernels = model.kernels
    options = np.zeros(c.OPT_SIZE)
    options[[c.OPT_RTOL, c.OPT_ATOL, c.OPT_MAX_STEPS, c.OPT_H_MAX, c.OPT_METHOD]] = (
        rtol, atol, max_steps, h_max, METHODS[method])
    ss_options = options.copy()
    ss_options[c.OPT_RTOL] = max(rtol * 1e-2, 1e-13)
    ss_options[c.OPT_ATOL] = atol * 1e-2
    n_states = len(model.compartments)
    n_values = len(model.outputs)
    states = _output_array(states, (stream.n_outputs, n_states), "states")
    values = _output_array(values, (stream.n_outputs, n_values), "values")
    kernel_values = values if n_values else np.empty((stream.n_outputs, 1))
    status = np.zeros(stream.n_subjects, np.int64)
    if chunk_size is None:
        threads = numba.get_num_threads()
        chunk_size = max(1, min(256, stream.n_subjects // (4 * threads) or 1))
    capacity = 2 * stream.max_records() + 256
    # records repeating the previous record's parameter values share its row: the kernel
    # then integrates through them instead of restarting at every record of a data set
    parameter_rows = stream.parameter_rows()
    inputs = [_read_only(array) for array in (
        stream.subject_start, stream.time, stream.kind, stream.amt, stream.cmt, stream.rate, stream.ii, stream.ss,
        parameter_rows, stream.drow, stream.out, stream.parent, stream.inputs)]
    inputs += [model.module.N_ENV, _read_only(options), _read_only(ss_options), capacity]
    chunk_size = int(chunk_size)
    n_chunks = (stream.n_subjects + chunk_size - 1) // chunk_size

    def run(first, last):
        run_population(kernels, *inputs, chunk_size, first, last, states, kernel_values, status)

    threads = min(numba.get_num_threads(), n_chunks)
    if threads <= 1:
        run(0, n_chunks)
    else:
        # dynamic scheduling: a thread that finishes its chunk of subjects takes the next one, so
        # subjects of unequal cost (or a busy core) do not leave a thread idle; the engine runs
        # without the GIL, and each chunk writes only its own subjects' rows
        for _ in _pool(threads).map(lambda chunk: run(chunk, chunk + 1), range(n_chunks)):
            pass
    failed = np.flatnonzero(status)
    if failed.size:
        for subject in failed:
            rows = stream.out[stream.subject_start[subject]:stream.subject_start[subject + 1]]
            rows = rows[rows >= 0]
            states[rows] = np.nan
            values[rows] = np.nan
    return states, values, status


_POOLS: dict[int, ThreadPoolExecutor] = {}


def _pool(threads):
    """A pool of `threads` threads for the engine's chunks, made once per size and reused."""
    if threads not in _POOLS:
        _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="pkpd-engine")
    return _POOLS[threads]


def _read_only(array):
    """A read-only, C-contiguous view of an input of the engine (a copy only if it is not contiguous).

    The engine reads its inputs, and Numba compiles one version of it per combination of array
    types: passing every input read-only, whatever the caller built, keeps that to one compiled
    engine (some callers pass views of read-only layouts, others fresh arrays)."""
    view = np.ascontiguousarray(array).view()
    view.flags.writeable = False
    return view


def _output_array(array, shape, name):
    """A caller's output array, checked, or a new one (every row is written by the kernel)."""
    if array is None:
        return np.empty(shape)
    if array.shape != shape or array.dtype != np.float64 or not array.flags.c_contiguous:
        raise PkpdError(f"must be a C-contiguous float64 array of shape {shape}", key=name,
                        got=f"{array.dtype} {array.shape}")
    return array


def raise_failures(status, subject_ids):
    """Raise SimulationError naming every subject whose status is not 0."""
    failed = np.flatnonzero(status)
    if failed.size:
        raise SimulationError({_format_id(subject_ids[i]): MESSAGES.get(int(status[i]), f"status {status[i]}")
                               for i in failed})


def _format_id(value):
    value = float(value)
    return int(value) if value.is_integer() else value


def default_threads():
    return int(os.environ.get("NUMBA_NUM_THREADS", numba.config.NUMBA_NUM_THREADS))
