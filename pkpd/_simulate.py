"""``simulate``: a model, a regimen and a population in; a result with units out.

The one entry point for population simulation (after diffrax's
``diffeqsolve`` and mrgsolve's ``mrgsim``): the model, the regimen and the
population stay independent objects; this module joins them into the
engine's flat event records, subjects in chunks, and collects the outputs.
"""

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from typing import Any, Protocol

import numba
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from . import metrics
from ._engine import raise_failures, resolve_method, run_stream
from ._errors import ModelError, PkpdError, PopulationError, suggestion
from .events.records import KIND_DOSE, KIND_OBS, EventStream, first_repeated_row
from ._jit import jit
from .metrics import SummaryReducer, summarise_chunk
from .model import Model, is_compiled, linear_specialisation, load_model
from ._options import DEFAULT
from .population import (Population, add_residual_error, apply_random_effects, sample_covariates, sample_iiv,
                         sample_iov)
from .events.regimen import Dose, Regimen, expand
from ._resources import SECONDS_PER_SUBJECT_RECORD, check_memory

DEFAULT_QUANTILES = (5, 25, 50, 75, 95)


class MapExecutor(Protocol):
    """What ``executor=`` takes: an object with ``map(fn, *iterables)``, results in order
    (a :class:`concurrent.futures.Executor`, or :class:`pkpd._distributed.DaskExecutor`)."""

    def map(self, fn: Callable[..., Any], /, *iterables: Iterable[Any]) -> Iterator[Any]: ...


def individual_inputs(model, population, *, variability=True):
    """Per-subject engine inputs: parameters (with IIV) and covariates.

    Parameters
    ----------
    model : Model
    population : Population
    variability : bool
        False gives typical values (no random effects).

    Returns
    -------
    inputs : ndarray, shape (n_subjects, n_inputs)
        Columns in ``model.inputs`` order.
    etas : ndarray, shape (n_subjects, n_etas)
        NaN for the parameters a table of given individuals gives
        (:meth:`Population.from_table`): their values are taken as they are.
    """
    n = population.subject_ids.size
    inputs = np.tile(np.asarray(model.input_defaults, dtype=np.float64), (n, 1))
    columns = {name: i for i, name in enumerate(model.inputs)}
    table = population.covariates
    given = [name for name in population.given if name not in model.covariates]   # individual parameters
    for name in given:
        if name not in columns and name != "WT":    # WT may only scale doses per kg
            raise PopulationError(f"is not a parameter or covariate of model {model.name!r}"
                                  f"{suggestion(name, model.inputs, 'its inputs are')}", column=name)
    for name in model.covariates:
        if name in table.columns:
            inputs[:, columns[name]] = table[name].to_numpy(dtype=np.float64)
        elif name in model.covariate_distributions:
            try:
                drawn = sample_covariates({name: model.covariate_distributions[name]}, seed=population.seed,
                                          subject_ids=population.subject_ids, key="covariates")
            except PkpdError as error:
                raise ModelError(error.rule, file=model.path.name, key=error.key, **error.fields()) from None
            inputs[:, columns[name]] = drawn[name].to_numpy(dtype=np.float64)
    given = [name for name in given if name in columns]
    for name in given:
        inputs[:, columns[name]] = table[name].to_numpy(dtype=np.float64)
    iiv = model.variability.get("iiv")
    if not iiv:
        return inputs, np.zeros((n, 0))
    names = list(iiv.get("parameters", []))
    for name in names:
        if name not in model.parameters:
            raise ModelError(f"{name!r} is not a parameter", file=model.path.name, key="variability.iiv.parameters")
    try:
        etas = sample_iiv(iiv["omega"], seed=population.seed, subject_ids=population.subject_ids,
                          variability=variability, key="variability.iiv.omega")
    except PkpdError as error:
        raise ModelError(error.rule, file=model.path.name, key=error.key, **error.fields()) from None
    if etas.shape[1] != len(names):
        raise ModelError(f"is {etas.shape[1]}x{etas.shape[1]} but {len(names)} parameters are named",
                         file=model.path.name, key="variability.iiv.omega")
    forms = iiv.get("forms", "exp")
    index = [columns[name] for name in names]
    drawn = apply_random_effects(inputs[:, index], etas, forms)
    for k, name in enumerate(names):
        if name in given:                 # an individual value as given: no random effect on it
            drawn[:, k] = inputs[:, columns[name]]
            etas[:, k] = np.nan
    inputs[:, index] = drawn
    return inputs, etas


def occasion_inputs(model, population, inputs, occasions, *, variability=True):
    """Inputs per subject and occasion, shape (n_subjects * n_occasions, n_inputs), with IOV applied.

    Occasion j of subject i is row i * n_occasions + j. Without a ``[variability.iov]``
    block (or with ``variability=False``) every occasion repeats the subject's inputs.
    """
    n_occasions = len(occasions)
    repeated = np.repeat(inputs, n_occasions, axis=0)
    iov = model.variability.get("iov")
    if not iov or n_occasions == 0:
        return repeated
    names = list(iov.get("parameters", []))
    columns = [model.inputs.index(name) for name in names]
    try:
        kappas = sample_iov(iov["omega"], n_occasions=n_occasions, seed=population.seed,
                            subject_ids=population.subject_ids, variability=variability, key="variability.iov.omega")
    except PkpdError as error:
        raise ModelError(error.rule, file=model.path.name, key=error.key, **error.fields()) from None
    kappas = kappas.reshape(-1, len(names))
    repeated[:, columns] = apply_random_effects(repeated[:, columns], kappas, iov.get("forms", "exp"))
    return repeated


def _template(dose_times, dose_cmt, times):
    """Record layout shared by all subjects: doses before observations at equal times."""
    record_time = np.concatenate([dose_times, times])
    is_obs = np.concatenate([np.zeros(dose_times.size, bool), np.ones(times.size, bool)])
    order = np.lexsort((is_obs, record_time))
    cmt = np.concatenate([dose_cmt, np.zeros(times.size, np.int64)])[order]
    return record_time[order], is_obs[order], cmt, order


@dataclass(frozen=True)
class ChunkLayout:
    """The event records of a chunk of up to `capacity` subjects that are the same in every chunk.

    Every subject has the template's records, so times, kinds, compartments, output rows,
    parameter rows and record numbers depend only on a subject's position in its chunk:
    they are built once per simulation, read-only, and a chunk of m subjects takes the
    first m subjects' records of them (no copy). Only the doses' amounts and rates
    (per weight) differ between chunks; :func:`_chunk_stream` writes them.
    """
    capacity: int
    per_subject: int             # records per subject
    dose_slots: np.ndarray       # positions of the dose records among a subject's records
    dose_columns: np.ndarray     # the column of `amounts` / `rates` each dose slot takes
    subject_start: np.ndarray    # (capacity + 1,)
    time: np.ndarray             # (capacity * per_subject,), and so on
    kind: np.ndarray
    cmt: np.ndarray
    ii: np.ndarray
    ss: np.ndarray
    rows: np.ndarray             # parameter row of each record (prow and drow)
    out: np.ndarray
    parent: np.ndarray


def _chunk_layout(template, capacity, n_times, occasion_of_record=None, n_occasions=1):
    """The :class:`ChunkLayout` of chunks of up to `capacity` subjects (see :func:`_template`).

    Its nine arrays are rows of one allocation (large enough for the kernel to back it
    with huge pages: a few page faults instead of thousands), filled in one pass.
    """
    record_time, is_obs, cmt, order = template
    per_subject = record_time.size
    total = capacity * per_subject
    occasion = np.zeros(per_subject, np.int64) if occasion_of_record is None else occasion_of_record.astype(np.int64)
    block = np.empty((8, total), np.int64)
    time, ii = block[0].view(np.float64), block[1].view(np.float64)
    kind, cmt_all, ss, rows, out, parent = block[2], block[3], block[4], block[5], block[6], block[7]
    _fill_layout(record_time, is_obs, cmt.astype(np.int64), occasion, n_occasions if occasion_of_record is not None
                 else 1, n_times, time, ii, kind, cmt_all, ss, rows, out, parent)
    start = np.arange(capacity + 1, dtype=np.int64) * per_subject
    for array in (time, ii, kind, cmt_all, ss, rows, out, parent, start):
        array.flags.writeable = False   # shared by every chunk (and by chunks run elsewhere at once)
    dose_slots = np.flatnonzero(~is_obs)
    # order maps template position -> original index (doses first in the original concatenation)
    return ChunkLayout(capacity=capacity, per_subject=per_subject, dose_slots=dose_slots,
                       dose_columns=order[dose_slots], subject_start=start, time=time, kind=kind, cmt=cmt_all,
                       ii=ii, ss=ss, rows=rows, out=out, parent=parent)


@jit
def _fill_layout(record_time, is_obs, record_cmt, occasion, n_occasions, n_times, time, ii, kind, cmt, ss, rows,
                 out, parent):
    """Write the records of every subject position of a :class:`ChunkLayout` (one pass, no temporaries)."""
    per_subject = record_time.size
    for subject in range(time.size // per_subject):
        output = subject * n_times
        for slot in range(per_subject):
            record = subject * per_subject + slot
            time[record] = record_time[slot]
            ii[record] = 0.0
            kind[record] = KIND_OBS if is_obs[slot] else KIND_DOSE
            cmt[record] = record_cmt[slot]
            ss[record] = 0
            rows[record] = subject * n_occasions + occasion[slot]
            parent[record] = record
            if is_obs[slot]:
                out[record] = output
                output += 1
            else:
                out[record] = -1


def _chunk_stream(layout, inputs, subject_ids, amounts, rates, n_times, buffers=None, rows_shared=False):
    """The EventStream of a chunk of subjects: the layout's first records and the chunk's doses.

    Parameters
    ----------
    layout : ChunkLayout
    inputs : ndarray, shape (rows of the chunk, n_inputs)
    subject_ids : ndarray, shape (m,), m <= layout.capacity
    amounts, rates : ndarray, shape (m, n_doses)
        The chunk's dose amounts and rates (columns as :func:`pkpd.events.regimen.expand` gives them).
    buffers : (ndarray, ndarray), optional
        Amount and rate arrays of ``layout.capacity * layout.per_subject`` records, zero
        outside the dose slots (as this function leaves them), to write the doses into
        instead of new arrays: one run of chunks then allocates nothing per chunk. A
        stream that may outlive the next chunk (one sent to an executor) takes new ones.
    rows_shared : bool
        Whether no record repeats its predecessor's values under another row (:func:`_rows_shared`;
        ``EventStream.rows_shared_for``).
    """
    m = subject_ids.size
    total = m * layout.per_subject
    if buffers is None:
        amt, rate = np.zeros(total), np.zeros(total)
    else:
        amt, rate = buffers[0][:total], buffers[1][:total]
    amt.reshape(m, layout.per_subject)[:, layout.dose_slots] = amounts[:, layout.dose_columns]
    rate.reshape(m, layout.per_subject)[:, layout.dose_slots] = rates[:, layout.dose_columns]
    stream = EventStream(
        subject_start=layout.subject_start[:m + 1], subject_ids=subject_ids, time=layout.time[:total],
        kind=layout.kind[:total], amt=amt, cmt=layout.cmt[:total], rate=rate, ii=layout.ii[:total],
        ss=layout.ss[:total], prow=layout.rows[:total], drow=layout.rows[:total], out=layout.out[:total],
        parent=layout.parent[:total], inputs=np.ascontiguousarray(inputs), n_outputs=m * n_times)
    if rows_shared:
        stream.rows_shared_for = (stream.prow, stream.inputs)
    return stream


def _rows_shared(table, occasion_of_record, n_occasions):
    """Whether no record of any chunk repeats its predecessor's parameter values under another row: then
    :func:`pkpd.events.records.shared_parameter_rows` leaves every chunk's rows as they are, and the engine
    need not look (a pass over every record).

    Record by record, a subject's rows are its occasions' in the template's order, and the next
    subject's follow: this compares each such pair of rows of `table` (shape (n_subjects *
    n_occasions, n_inputs)) once, bit for bit, instead of every record of every chunk. (Pairs that
    straddle two chunks are compared too, so the answer may be a needless False, never a wrong True.)
    """
    if occasion_of_record is None:
        sequence = np.arange(table.shape[0])
    else:
        heads = np.flatnonzero(np.diff(occasion_of_record, prepend=-1))   # each run of one occasion
        runs = np.asarray(occasion_of_record)[heads]
        sequence = (np.arange(table.shape[0] // n_occasions)[:, None] * n_occasions + runs[None, :]).ravel()
    return first_repeated_row(sequence, np.ascontiguousarray(table, np.float64).view(np.uint64)) < 0


def estimate_memory(model, n_subjects, n_times, n_doses, *, keep_trajectories=True):
    """Bytes a simulation holds at its peak, from the sizes alone (nothing is allocated).

    Parameters
    ----------
    model : Model
    n_subjects, n_times, n_doses : int
        Subjects, output times and dose administrations per subject.
    keep_trajectories : bool
        True for :func:`simulate` (outputs and amounts of every subject at every
        time are kept), False for :func:`simulate_summary` (one chunk at a time).

    Returns
    -------
    bytes : float
    seconds : float
        A rough engine time (about 1 us per subject and record on the exact path).
    """
    records = n_doses + n_times
    columns = len(model.outputs) + len(model.compartments)
    chunk = min(_chunk_size(n_subjects, records, None if keep_trajectories else 1), n_subjects)
    kept = n_subjects if keep_trajectories else chunk
    trajectories = 8.0 * kept * n_times * columns
    doses = 32.0 * n_subjects * n_doses           # amounts and rates, as lists and as stacked arrays
    stream = 120.0 * chunk * records              # a chunk's event records (13 arrays) and temporaries
    subjects = 32.0 * n_subjects * (len(model.inputs) + 8)
    return trajectories + doses + stream + subjects, n_subjects * records * SECONDS_PER_SUBJECT_RECORD


CHUNK_BYTES_PER_THREAD = 1e7


def _chunk_size(n_subjects, records, threads=None):
    """Subjects per engine call: event records (13 arrays of 8 bytes each) of about 10 MB per thread
    (`threads` sharing a chunk: Numba's thread count by default; 1 for simulate_summary, which runs
    each chunk whole on one thread).

    The chunk's records are written by Python and read by the engine, and its outputs written by
    the engine; a chunk that stays in the processor's caches between the two is faster (W1, 10,000
    subjects, exact, 1 thread: 3.80 us per subject in chunks of 2,000 subjects, 40 MB of records;
    2.99 in chunks of 500; 2 threads, chunks of 1,000: 2.07 us wall against 3.89)."""
    budget = CHUNK_BYTES_PER_THREAD * max(1, numba.get_num_threads() if threads is None else threads)
    return int(max(64, min(n_subjects, 2_000, budget // max(records * 13 * 8, 1))))


def _check_times(times):
    times = np.asarray(times, dtype=np.float64)
    if times.ndim != 1 or times.size == 0:
        raise PkpdError("must be a non-empty 1-D array", key="times", got=f"shape {times.shape}")
    if not np.all(np.isfinite(times)):
        raise PkpdError("must be finite", key="times")
    if np.any(np.diff(times) <= 0):
        index = int(np.flatnonzero(np.diff(times) <= 0)[0]) + 1
        raise PkpdError("must be increasing", key="times",
                        got=f"{times[index]:g} after {times[index - 1]:g} at index {index}")
    return times


def simulate(model: Model | str, regimen: Regimen | Sequence[Dose], population: Population | int, times: ArrayLike,
             *, method: str = DEFAULT.method, rtol: float = DEFAULT.rtol, atol: float = DEFAULT.atol,
             variability: bool = True, chunk_subjects: int | None = None, progress: bool | None = None,
             max_steps: int = DEFAULT.max_steps, occasions: ArrayLike | None = None,
             max_memory: int | str | None = None, executor: MapExecutor | None = None,
             uncertainty: Any = None) -> "SimulationResult":
    """Simulate a regimen in a virtual population.

    Parameters
    ----------
    model : Model or str
        A model or a library model name.
    regimen : Regimen or list of Dose
        Doses in the model's units (see :class:`pkpd.Dose`).
    population : Population or int
        Virtual subjects (an int n gives ``Population(n, seed=0)`` with the default covariates).
    times : array_like, shape (n_times,)
        Output times (model time unit, h), increasing.
    method : {"auto", "exact", "rk45", "rosenbrock"}
        "auto": exact for linear models (after folding zero-valued switches), else RODAS4
        when stiff over the simulated span (see :func:`pkpd._engine.resolve_method`), else
        Dormand-Prince 5(4). ``result.method`` says which was used.
    rtol, atol : float
        Integration tolerances (not used by the exact path).
    variability : bool
        False simulates typical values (no inter-individual random effects).
    chunk_subjects : int, optional
        Subjects per engine call (memory bound); results do not depend on it.
    progress : bool, optional
        Show a progress bar; by default one appears when a run lasts over 2 s.
    occasions : array_like, optional
        Start times of occasions (e.g. trial periods), increasing; each gets its own
        inter-occasion random effects from the model's ``[variability.iov]``. A record
        belongs to the last occasion starting at or before its time.
    max_memory : int or str, optional
        Memory limit (bytes or text such as "8GB"; default ``PKPD_MAX_MEMORY`` or half
        the machine's memory): a simulation estimated to need more is refused before
        anything is allocated.
    executor : object with a ``map(fn, *iterables)`` method, optional
        Runs the chunks of subjects elsewhere (a :class:`concurrent.futures.Executor`,
        or :class:`pkpd._distributed.DaskExecutor` for a dask cluster); the results are
        those of the in-process run. By default the chunks run here, one after another.
        With `uncertainty`, it runs the parameter draws instead.
    uncertainty : int or pkpd.UncertaintyOptions, optional
        Parameter uncertainty (the model's, see :mod:`pkpd._uncertainty`): this many draws (or
        the options), each simulating the same virtual subjects; returns a
        :class:`pkpd.study.draws.UncertaintyResult` (percentiles and exposure statistics per draw,
        and their intervals over draws) instead of a SimulationResult.

    Returns
    -------
    SimulationResult

    Examples
    --------
    >>> import numpy as np, pkpd
    >>> result = pkpd.simulate("pk1cmt", [pkpd.Dose(100.0, "DEPOT")], pkpd.Population(10, seed=1),
    ...                        np.arange(0.0, 25.0, 1.0))
    >>> result.values.shape
    (10, 25, 1)
    """
    if uncertainty is not None:
        from .study.draws import simulate_with_uncertainty

        return simulate_with_uncertainty(simulate, model, regimen, population, times, uncertainty, method=method,
                                         rtol=rtol, atol=atol, variability=variability, progress=progress,
                                         executor=executor)
    run = SimulationPlan(model, regimen, population, times, method=method, rtol=rtol, atol=atol,
                         variability=variability, chunk_subjects=chunk_subjects, progress=progress,
                         max_steps=max_steps, occasions=occasions, max_memory=max_memory)
    n = run.n
    values = np.empty((n, run.times.size, len(run.model.outputs)))
    states = np.empty((n, run.times.size, len(run.model.compartments)))
    if executor is None:
        for _ in run.chunks(values_out=values, states_out=states):
            pass  # the engine writes each chunk straight into its rows of values and states
    else:
        for start, stop, (chunk_values, chunk_states) in run.map_chunks(executor, run_chunk):
            values[start:stop] = chunk_values.reshape(stop - start, run.times.size, -1)
            states[start:stop] = chunk_states.reshape(stop - start, run.times.size, -1)
    parameters = pd.DataFrame(run.inputs, columns=run.model.inputs,
                              index=pd.Index(run.population.subject_ids, name="ID"))
    return SimulationResult(model=run.model, times=run.times, values=values, states=states,
                            subject_ids=run.population.subject_ids, parameters=parameters, etas=run.etas,
                            seed=run.population.seed, regimen=run.regimen, method=run.options["method"])


def simulate_summary(model: Model | str, regimen: Regimen | Sequence[Dose], population: Population | int,
                     times: ArrayLike, *, outputs: Sequence[str] | None = None,
                     quantiles: Sequence[float] = DEFAULT_QUANTILES, relative_accuracy: float = 0.005,
                     interval: tuple[float, float] | None = None, thresholds: Any = None, windows: Any = None,
                     method: str = "auto", rtol: float = DEFAULT.rtol, atol: float = DEFAULT.atol,
                     variability: bool = True, chunk_subjects: int | None = None, progress: bool | None = None,
                     max_steps: int = DEFAULT.max_steps, max_memory: int | str | None = None,
                     executor: MapExecutor | None = None) -> "SummaryResult":
    """Simulate a large population keeping only percentiles and exposure metrics.

    Subjects are simulated chunk by chunk; each chunk updates a mergeable quantile
    sketch per output (:class:`pkpd.metrics.PercentileAccumulator`, relative error
    at most `relative_accuracy`) and its per-subject exposure metrics, then is
    dropped, so memory does not grow with the trajectories. Chunks run on as many
    threads as Numba's (``numba.set_num_threads``), each chunk whole on one of them
    (engine, then one compiled pass per output: :class:`pkpd.metrics.SummaryReducer`);
    each thread keeps one sketch per output, merged at the end, and writes its chunks'
    exposure rows in place: the numbers do not depend on the thread count or the
    chunking. With an `executor` (see :func:`simulate`) each chunk's sketch and metrics
    are computed where the chunk runs and merged here: no trajectory is gathered, the
    numbers are the same. `chunk_subjects`: subjects per chunk; by default as many as
    keep a chunk's event records near 10 MB (e.g. about 500 subjects of W1: 1,000,000 of them on
    2 threads in 4.65 s and 601 MB, against 5.10 s and 667 MB in chunks of 2,000).

    Returns
    -------
    SummaryResult
        ``percentiles``: DataFrame (output, TIME, P5, ...); ``exposure``: dict of
        output -> dict of metric -> ndarray (n_subjects,) (or (n_subjects, k) for
        thresholds and windows); ``n``. The AUC of an output with a ``baseline`` (magnesium) is
        taken above each subject's baseline, and that of a pain score in score x days, as
        :meth:`SimulationResult.exposure` gives them.
    """
    run = SimulationPlan(model, regimen, population, times, method=method, rtol=rtol, atol=atol,
                         variability=variability, chunk_subjects=chunk_subjects, progress=progress,
                         max_steps=max_steps, keep_trajectories=False, max_memory=max_memory)
    outputs = list(outputs or run.model.outputs)
    columns = {output: list(run.model.outputs).index(output) for output in outputs}
    options = dict(quantiles=tuple(quantiles), relative_accuracy=relative_accuracy, interval=interval,
                   thresholds=thresholds, windows=windows)
    from .model import baseline_values

    parameters = pd.DataFrame(run.inputs, columns=run.model.inputs)   # as SimulationResult.parameters
    baselines: dict[str, np.ndarray] = {}
    for output in outputs:
        values = baseline_values(run.model, output, parameters)
        if values is not None:
            baselines[output] = values
    reducer = SummaryReducer(run.n, run.times, columns, subject_ids=run.population.subject_ids,
                             time_unit=run.model.units.get("time", "h"), baselines=baselines, **options)
    if executor is None:
        for _ in run.summarise_in_threads(reducer.add):
            pass  # each chunk's metrics are in reducer.exposure, its sketch in its thread's
    else:
        task = partial(_engine_then, partial(summarise_chunk, times=run.times, columns=columns,
                                             time_unit=reducer.time_unit, **options))
        per_chunk = (lambda start, stop: {o: b[start:stop] for o, b in baselines.items()}) if baselines else None
        for start, stop, part in run.map_chunks(executor, task, per_chunk=per_chunk):
            reducer.merge(start, stop, part)
    time_unit = run.model.units.get("time", "h")
    for output in outputs:   # a pain score's AUC in score x days, as SimulationResult.exposure gives it
        if run.model.outputs[output].role == "pain_score" and time_unit != "d":
            from ._units import convert

            reducer.exposure[output]["auc"] = reducer.exposure[output]["auc"] * convert(1.0, time_unit, "d")
    return SummaryResult(percentiles=reducer.percentiles(), exposure=reducer.exposure, n=run.n,
                         units={o: run.model.outputs[o].unit for o in outputs})


def run_chunk(model, stream, options):
    """Run one chunk of subjects through the engine: (values, states), shape (m * n_times, k) each.

    A pure function of its inputs (:meth:`SimulationPlan.chunk_inputs` gives them), so an
    executor may run it in any process, and again after a lost worker.
    """
    states, values, status = run_stream(model, stream, **options)
    raise_failures(status, stream.subject_ids)
    return values, states


def _engine_then(task, model, stream, options, baselines=None):
    """`task` applied to the values of :func:`run_chunk` (where the chunk runs: only its result travels)."""
    return task(run_chunk(model, stream, options)[0], subject_ids=stream.subject_ids, baselines=baselines)


@dataclass
class SummaryResult:
    percentiles: pd.DataFrame
    exposure: dict
    n: int
    units: dict


class SimulationPlan:
    """A simulation prepared once (inputs, random effects, doses, method) and run chunk by chunk of subjects:
    here (:meth:`chunks`), by an executor (:meth:`map_chunks`), or by hand (:meth:`chunk_inputs`)."""

    def __init__(self, model, regimen, population, times, *, method, rtol, atol, variability, chunk_subjects,
                 progress, max_steps, occasions=None, keep_trajectories=True, max_memory=None):
        model = load_model(model)
        if not isinstance(regimen, Regimen):
            regimen = Regimen(list(regimen))
        times = _check_times(times)
        n = population if isinstance(population, int) else population.subject_ids.size
        n_doses = sum(dose.administrations() for dose in regimen.doses)
        size, seconds = estimate_memory(model, n, times.size, n_doses, keep_trajectories=keep_trajectories)
        check_memory(size, f"{n} subjects x {times.size + n_doses:.3g} records "
                           f"({times.size} output times, {n_doses:.3g} doses)", max_memory, seconds)
        if isinstance(population, int):
            population = Population(population, seed=0)
        self.regimen, self.population, self.times = regimen, population, times
        inputs, self.etas = individual_inputs(model, population, variability=variability)
        self.inputs = inputs
        weights = inputs[:, model.inputs.index("WT")] if "WT" in model.inputs else (
            population.covariates["WT"].to_numpy(float) if "WT" in population.covariates else None)
        if weights is None and any(d.per_weight for d in regimen.doses):
            raise PkpdError(f"a per-weight dose needs a WT covariate, and model {model.name!r} and the population "
                            f"have none")
        self.n = n = population.subject_ids.size
        dose_times, dose_cmt, self.amounts, self.rates = expand(model, regimen,
                                                                weights if weights is not None else np.ones(n))
        self.template = _template(dose_times, dose_cmt, times)
        self.occasion_of_record = None
        self.n_occasions = 1
        if occasions is not None:
            occasions = np.asarray(occasions, dtype=np.float64)
            if occasions.ndim != 1 or occasions.size == 0 or np.any(np.diff(occasions) <= 0):
                raise PkpdError("must be increasing start times", key="occasions", value=occasions, got=repr(occasions))
            self.n_occasions = occasions.size
            self.occasion_of_record = np.clip(np.searchsorted(occasions, self.template[0], side="right") - 1, 0,
                                              None)
            self.occasion_table = occasion_inputs(model, population, inputs, occasions, variability=variability)
        if method == "auto" and not model.is_linear:
            model = linear_specialisation(model)
        if method == "auto":  # decided once for the whole run: the same method for every chunk
            method = resolve_method(model, "auto", span=float(self.template[0][-1] - self.template[0][0]))
        self.model = model
        self.options = dict(method=method, rtol=rtol, atol=atol, max_steps=max_steps)
        if chunk_subjects is None:
            chunk_subjects = _chunk_size(n, self.template[0].size, None if keep_trajectories else 1)
        self.chunk_subjects = chunk_subjects
        self.progress = progress
        self._layout = None
        self._rows_shared = None

    @property
    def layout(self):
        """The records every chunk shares (:class:`ChunkLayout`), built at first use."""
        if self._layout is None:
            self._layout = _chunk_layout(self.template, max(1, min(self.chunk_subjects, self.n)), self.times.size,
                                         self.occasion_of_record, self.n_occasions)
        return self._layout

    @property
    def rows_shared(self):
        """Whether no chunk's record repeats its predecessor's values under another row (:func:`_rows_shared`),
        found at first use."""
        if self._rows_shared is None:
            table = self.inputs if self.occasion_of_record is None else self.occasion_table
            self._rows_shared = _rows_shared(table, self.occasion_of_record, self.n_occasions)
        return self._rows_shared

    def ranges(self):
        """(start, stop) of each chunk of subjects, in order."""
        return [(start, min(start + self.chunk_subjects, self.n)) for start in range(0, self.n, self.chunk_subjects)]

    def chunk_inputs(self, start, stop, buffers=None):
        """What the engine needs for subjects `start` to `stop` - 1: (model, EventStream, options).

        Everything random (parameters, random effects, doses per weight) is already
        drawn here, so a chunk's numbers do not depend on where, or with which others, it runs.
        With `buffers` (see :func:`_chunk_stream`) the stream's doses are written into them.
        """
        if self.occasion_of_record is None:
            chunk_inputs = self.inputs[start:stop]
        else:
            chunk_inputs = self.occasion_table[start * self.n_occasions:stop * self.n_occasions]
        stream = _chunk_stream(self.layout, chunk_inputs, self.population.subject_ids[start:stop],
                               self.amounts[start:stop], self.rates[start:stop], self.times.size, buffers,
                               self.rows_shared)
        return self.model, stream, self.options

    def _bar(self):
        from tqdm.auto import tqdm

        return tqdm(total=self.n, unit="subject", delay=2.0, disable=(self.progress is False), leave=False,
                    desc=f"simulating {self.model.name}")

    def chunks(self, keep_states=True, values_out=None, states_out=None):
        """Yield (start, stop, values (m, n_times, n_outputs), states (m, n_times, n_states) or None).

        With `values_out` / `states_out` (arrays (n, n_times, k), C-contiguous) the engine
        writes each chunk into their rows directly and the yielded arrays are views of them.
        """
        times = self.times
        # each chunk's doses, written over the last chunk's (one allocation: huge pages, few page faults)
        buffers = np.zeros((2, self.layout.capacity * self.layout.per_subject))
        bar = self._bar()
        try:
            for start, stop in self.ranges():
                model, stream, options = self.chunk_inputs(start, stop, buffers)
                m = stop - start
                views = {}
                if values_out is not None:
                    views["values"] = values_out[start:stop].reshape(m * times.size, values_out.shape[2])
                if states_out is not None:
                    views["states"] = states_out[start:stop].reshape(m * times.size, states_out.shape[2])
                chunk_states, chunk_values, status = run_stream(model, stream, **options, **views)
                raise_failures(status, stream.subject_ids)
                yield (start, stop, chunk_values.reshape(m, times.size, -1),
                       chunk_states.reshape(m, times.size, -1) if keep_states else None)
                bar.update(m)
        finally:
            bar.close()

    def summarise_in_threads(self, task, threads=None):
        """Yield (start, stop, task(start, stop, values)) per chunk, in order; the chunks run whole (engine
        on one Numba thread, then `task` on the chunk's values, shape (m * n_times, n_outputs)) on `threads`
        threads at once.

        Coarse-grained on purpose: the threads never wait for each other inside a chunk, so a
        core taken by another process delays one chunk, not every parallel region of every
        chunk. Each thread reuses its own dose and output arrays from chunk to chunk; at most
        two chunks per thread are in flight. With one thread, or a Numba threading layer that
        cannot run kernels from several threads at once (workqueue), the chunks run here.
        """
        threads = numba.get_num_threads() if threads is None else threads
        if threads <= 1 or len(self.ranges()) <= 1 or not _concurrent_kernels():
            for start, stop, values, _ in self.chunks(keep_states=False):
                yield start, stop, task(start, stop, values.reshape(-1, values.shape[-1]))
            return
        local = threading.local()
        layout = self.layout
        width = (len(self.model.outputs), len(self.model.compartments))

        def run(start, stop):
            if not hasattr(local, "buffers"):
                numba.set_num_threads(1)                  # per thread (Numba's setting is thread-local)
                records = layout.capacity * layout.per_subject
                local.buffers = np.zeros((2, records))
                outputs = layout.capacity * self.times.size
                local.values, local.states = np.empty((outputs, width[0])), np.empty((outputs, width[1]))
            model, stream, options = self.chunk_inputs(start, stop, local.buffers)
            rows = stream.n_outputs
            _, values, status = run_stream(model, stream, **options, values=local.values[:rows],
                                           states=local.states[:rows])
            raise_failures(status, stream.subject_ids)
            return task(start, stop, values)

        bar = self._bar()
        try:
            with ThreadPoolExecutor(threads, thread_name_prefix="pkpd-chunk") as pool:
                pending = deque()
                for start, stop in self.ranges():
                    pending.append((start, stop, pool.submit(run, start, stop)))
                    while len(pending) > 2 * threads or (pending and pending[0][2].done()):
                        first, last, future = pending.popleft()
                        yield first, last, future.result()
                        bar.update(last - first)
                while pending:
                    first, last, future = pending.popleft()
                    yield first, last, future.result()
                    bar.update(last - first)
        finally:
            bar.close()

    def map_chunks(self, executor, task, per_chunk=None):
        """Yield (start, stop, task(model, stream, options)) per chunk, in order, the tasks run by
        ``executor.map`` (a :class:`concurrent.futures.Executor` or any object with that method);
        with `per_chunk`, task(model, stream, options, per_chunk(start, stop))."""
        ranges = self.ranges()
        streams = (self.chunk_inputs(start, stop)[1] for start, stop in ranges)  # built as the executor takes them
        models, options = repeat(self.model, len(ranges)), repeat(self.options, len(ranges))
        extra = [] if per_chunk is None else [(per_chunk(start, stop) for start, stop in ranges)]
        bar = self._bar()
        try:
            for (start, stop), result in zip(ranges, executor.map(task, models, streams, options, *extra)):
                yield start, stop, result
                bar.update(stop - start)
        finally:
            bar.close()


def _concurrent_kernels():
    """Whether Numba's threading layer runs parallel kernels called from several threads at once."""
    from numba.np.ufunc import parallel

    parallel._launch_threads()   # chooses the layer, if no kernel has run yet
    return numba.threading_layer() in ("omp", "tbb")


def engine_variants(model):
    """The models whose engines :func:`simulate` may run for `model`: itself and, when folding its
    zero-valued switches makes it linear, that specialisation
    (see :func:`pkpd.model.linear_specialisation`)."""
    special = linear_specialisation(model)
    return [model] if special is model else [model, special]


def engines_compiled(model):
    """Whether the engine and the functions of every variant :func:`simulate` may run for `model` are in
    Numba's on-disk cache (no compilation)."""
    from .engine import is_cached

    return is_cached() and all(is_compiled(variant) for variant in engine_variants(model))


@dataclass
class SimulationResult:
    """Outputs of :func:`simulate`.

    Attributes
    ----------
    times : ndarray, shape (n_times,)
        Output times, in ``units["TIME"]``.
    values : ndarray, shape (n_subjects, n_times, n_outputs)
        Model outputs (individual predictions), units in ``units``.
    states : ndarray, shape (n_subjects, n_times, n_states)
        Compartment amounts.
    subject_ids : ndarray, shape (n_subjects,)
    parameters : pandas.DataFrame
        Each subject's parameter and covariate values (random effects applied).
    """
    model: Model
    times: np.ndarray
    values: np.ndarray
    states: np.ndarray
    subject_ids: np.ndarray
    parameters: pd.DataFrame
    etas: np.ndarray
    seed: int
    regimen: Regimen
    method: str = ""            # the integration method used ("exact", "rk45" or "rosenbrock")
    outputs: list = field(init=False)

    def __post_init__(self):
        self.outputs = list(self.model.outputs)

    @property
    def units(self) -> dict[str, str]:
        units = {"TIME": self.model.units.get("time", "h")}
        units.update({name: o.unit for name, o in self.model.outputs.items()})
        return units

    def _repr_html_(self) -> str:
        """Jupyter's view: model, subjects, times, and per output the median peak over subjects."""
        from .report._notebook import result_html

        return result_html(self)

    def output(self, name: str) -> NDArray[np.float64]:
        """Values of one output, shape (n_subjects, n_times)."""
        if name not in self.outputs:
            raise PkpdError(f"output {name!r}: model {self.model.name!r} has outputs {', '.join(self.outputs)}")
        return self.values[:, :, self.outputs.index(name)]

    def observed(self, name: str) -> NDArray[np.float64]:
        """Output with the model's residual error (seeded per subject and time), shape (n_subjects, n_times)."""
        spec = self.model.residual.get(name, {})
        return add_residual_error(self.output(name), spec.get("additive", 0.0), spec.get("proportional", 0.0),
                                  seed=self.seed, subject_ids=self.subject_ids, stream=f"residual/{name}")

    def to_frame(self, observed: bool = False) -> pd.DataFrame:
        """Long format, NONMEM-like: one row per subject and time, a column per output.

        With ``observed=True``, a ``NAME_OBS`` column with residual error is added for
        every output the model gives a ``[residual]`` entry.
        """
        n, t = self.values.shape[:2]
        frame = pd.DataFrame({"ID": np.repeat(self.subject_ids, t), "TIME": np.tile(self.times, n)})
        for name in self.outputs:
            frame[name] = self.output(name).ravel()
        if observed:
            for name in self.outputs:
                if name in self.model.residual:
                    frame[f"{name}_OBS"] = self.observed(name).ravel()
        frame.attrs["units"] = self.units
        return frame

    def percentiles(self, quantiles: Sequence[float] = DEFAULT_QUANTILES,
                    outputs: Sequence[str] | None = None) -> pd.DataFrame:
        """Percentiles over subjects at each time: columns output, TIME, P5, P25, ... (exact)."""
        frames = []
        for name in outputs or self.outputs:
            table = metrics.percentiles(self.output(name), quantiles)
            frame = pd.DataFrame({"output": name, "TIME": self.times})
            for q, row in zip(quantiles, table):
                frame[f"P{q:g}"] = row
            frames.append(frame)
        result = pd.concat(frames, ignore_index=True)
        result.attrs["units"] = self.units
        return result

    def baseline(self, output: str) -> NDArray[np.float64] | None:
        """Each subject's endogenous baseline of `output` (the model file's ``baseline``, e.g. MG0),
        shape (n_subjects,), in the output's unit; None when the output declares none."""
        from .model import baseline_values

        self.output(output)   # an unknown output: the one-line error
        return baseline_values(self.model, output, self.parameters)

    def exposure(self, output: str, *, interval: tuple[float, float] | None = None, thresholds: Any = (),
                 windows: Any = (), above_baseline: bool = True) -> pd.DataFrame:
        """Per-subject exposure metrics of one output (Cmax, Tmax, Cmin, AUC, Cavg, time above/within).

        For an output with a ``baseline`` (an endogenous substance such as magnesium) the AUC is
        taken above each subject's baseline unless `above_baseline` is False; ``attrs["auc_above"]``
        then names the baseline (``"baseline MG0"``), else it is None. The other metrics, Cavg
        included, are of the concentration itself. The AUC of a pain score is in score × days
        (``"NRS 0-10*d"``), the unit of a trial's AUC endpoint (the sum of daily scores).
        """
        table = metrics.exposure_table(self.times, self.output(output),
                                        concentration_unit=self.model.outputs[output].unit,
                                        time_unit=self.units["TIME"], interval=interval, thresholds=thresholds,
                                        windows=windows, subject_ids=self.subject_ids)
        baseline = self.baseline(output) if above_baseline else None
        table.attrs["auc_above"] = None
        if baseline is not None:
            excess = self.output(output) - baseline[:, None]
            table["auc"] = metrics.exposure_metrics(self.times, excess, interval=interval)["auc"]
            table.attrs["auc_above"] = f"baseline {self.model.outputs[output].baseline}"
        if self.model.outputs[output].role == "pain_score" and self.units["TIME"] != "d":
            from ._units import convert

            table["auc"] = table["auc"] * convert(1.0, self.units["TIME"], "d")
            table.attrs["units"]["auc"] = f"{self.model.outputs[output].unit}*d"
        return table
